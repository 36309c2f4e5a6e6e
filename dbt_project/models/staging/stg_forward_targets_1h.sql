-- forward_targets_1h, one row per (symbol, ts).
{{ latest_rows('processed', 'forward_targets_1h', columns={
    'close': 'float', 'target_return_1h': 'float', 'target_return_24h': 'float'}) }}
