{#-
  The columns of a training table, shared by the 1h and 1d marts: keys and decision time, the bar
  with its minute coverage (c), its features (f, with their `partial_bar` and `lookback_gap` flags),
  the multi-timeframe features (m, hourly table only), the context (x) and every target (t, l).
  The marts differ in their bar and their joins, which stay in each model.
-#}
{% macro training_columns(bar_unit, with_multi_timeframe) -%}
    f.symbol,
    f.ts,
    {{ dbt.dateadd(bar_unit, 1, 'f.ts') }} as decision_at,
    {{ dbt.split_part('f.symbol', "'-'", 1) }} as asset_symbol,
    'crypto' as asset_class,
    c.open,
    c.high,
    c.low,
    c.volume,
    c.n_source_bars,
    c.bar_coverage,
    c.is_filled,
    c.source,
    {{ star_except('f', ['symbol', 'ts', 'partition_date']) }},
    {%- if with_multi_timeframe %}
    {{ star_except('m', ['symbol', 'ts', 'partition_date']) }},
    {%- endif %}
    {{ star_except('x', ['symbol', 'ts', 'partition_date']) }},
    {{ star_except('t', ['symbol', 'ts', 'close', 'partition_date']) }},
    l.target_return_90d,
    l.target_return_pct_90d,
    l.target_price_90d,
    l.target_label_90d,
    f.partition_date
{%- endmacro %}
