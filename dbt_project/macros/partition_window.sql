{#-
  The Dagster partition window of this run (`--vars '{min_date: ..., max_date: ...}'`, set by the dbt
  asset): an incremental run rebuilds only the rows of those days; a full build takes everything.
-#}
{% macro partition_window(column='partition_date') -%}
{%- if is_incremental() and var('min_date', none) and var('max_date', none) -%}
{{ column }} between cast('{{ var("min_date") }}' as date) and cast('{{ var("max_date") }}' as date)
{%- else -%}
true
{%- endif -%}
{%- endmacro %}

{#- Incremental config shared by the marts: merge on BigQuery, delete+insert on DuckDB, by day. -#}
{% macro incremental_by_day() -%}
{{ return({
    'materialized': 'incremental',
    'unique_key': ['symbol', 'ts'],
    'incremental_strategy': 'merge' if target.type == 'bigquery' else 'delete+insert',
    'on_schema_change': 'append_new_columns',
    'partition_by': ({'field': 'partition_date', 'data_type': 'date'} if target.type == 'bigquery' else none),
    'cluster_by': (['symbol'] if target.type == 'bigquery' else none),
}) }}
{%- endmacro %}
