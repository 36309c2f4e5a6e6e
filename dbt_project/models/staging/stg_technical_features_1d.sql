-- technical_features_1d, one row per (symbol, ts).
{{ latest_rows('processed', 'technical_features_1d', columns={'close': 'float'}) }}
