{#-
  Every row of a source table, once per (symbol, ts): a bar loaded under two partitions keeps the latest.
  A table not loaded yet (its asset has not run here: e.g. 90-day targets in a window shorter than 90
  days) reads as empty with the key columns and `columns`, so the marts still build and gain the
  columns once it lands (incremental models append new columns).
-#}
{% macro latest_rows(source_name, table_name, columns={}, keys=['symbol', 'ts']) -%}
{%- set relation = source(source_name, table_name) -%}
{%- set exists = (adapter.get_relation(relation.database, relation.schema, relation.identifier) is not none) if execute else true -%}
{%- if exists %}
select *
from {{ relation }}
where true  -- BigQuery accepts QUALIFY only next to WHERE, GROUP BY or HAVING
qualify row_number() over (partition by {{ keys | join(', ') }} order by partition_date desc) = 1
{%- else %}
select
    cast(null as {{ column_type('timestamp') }}) as ts,
    cast(null as {{ column_type('string') }}) as symbol,
    {%- for name, type in columns.items() %}
    cast(null as {{ column_type(type) }}) as {{ name }},
    {%- endfor %}
    cast(null as date) as partition_date
from (select 1 as one) as nothing
where false
{%- endif %}
{%- endmacro %}

{% macro column_type(kind) -%}
{%- set types = {
    'bigquery': {'timestamp': 'timestamp', 'string': 'string', 'float': 'float64', 'int': 'int64', 'bool': 'bool'},
    'default': {'timestamp': 'timestamptz', 'string': 'varchar', 'float': 'double', 'int': 'bigint', 'bool': 'boolean'},
} -%}
{{ types.get(target.type, types['default'])[kind] }}
{%- endmacro %}

{% macro candle_columns() -%}
{{ return({'open': 'float', 'high': 'float', 'low': 'float', 'close': 'float', 'volume': 'float',
           'n_source_bars': 'int', 'bar_coverage': 'float', 'is_filled': 'bool', 'source': 'string'}) }}
{%- endmacro %}

{#- The 90-day targets, read in the marts directly rather than through a staging view: the table is
    absent for the newest 90 days, and a view over it would hold every day's build back. -#}
{% macro targets_90d() -%}
{{ latest_rows('processed', 'forward_targets_90d_1h', columns={
    'target_return_90d': 'float', 'target_return_pct_90d': 'float', 'target_price_90d': 'float',
    'target_label_90d': 'string'}) }}
{%- endmacro %}
