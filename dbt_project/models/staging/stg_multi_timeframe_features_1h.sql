-- multi_timeframe_features_1h, one row per (symbol, ts).
{{ latest_rows('processed', 'multi_timeframe_features_1h') }}
