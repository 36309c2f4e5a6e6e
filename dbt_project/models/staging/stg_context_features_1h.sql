-- context_features_1h, one row per (symbol, ts).
{{ latest_rows('processed', 'context_features_1h') }}
