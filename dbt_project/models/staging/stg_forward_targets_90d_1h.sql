-- 90-day targets, one row per (symbol, ts); empty until 90 days after the first loaded day.
{{ latest_rows('processed', 'forward_targets_90d_1h', columns={
    'target_return_90d': 'float', 'target_return_pct_90d': 'float', 'target_price_90d': 'float',
    'target_label_90d': 'string'}) }}
