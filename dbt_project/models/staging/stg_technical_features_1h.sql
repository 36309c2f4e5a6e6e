-- technical_features_1h, one row per (symbol, ts).
{{ latest_rows('processed', 'technical_features_1h') }}
