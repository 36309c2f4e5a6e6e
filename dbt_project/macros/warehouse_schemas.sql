{#-
  dbt's schemas are the warehouse's zones (raw, processed, staging, marts, monitoring). On BigQuery each
  zone is the dataset named by BTC_PLATFORM_BQ_DATASET_<ZONE> (the warehouse resource sets them, so dbt
  and the load assets agree); on DuckDB the zone is the schema name as-is.
-#}
{% macro warehouse_schema(zone) -%}
{%- if target.type == 'bigquery' -%}
{{ env_var('BTC_PLATFORM_BQ_DATASET_' ~ (zone | upper), zone) }}
{%- else -%}
{{ zone }}
{%- endif -%}
{%- endmacro %}

{#- Sources name their zone as `schema` (models/sources.yml): read them from that zone's dataset. -#}
{% macro source(source_name, table_name) -%}
{%- set relation = builtins.source(source_name, table_name) -%}
{{ return(relation.incorporate(path={"schema": warehouse_schema(relation.schema) | trim})) }}
{%- endmacro %}
