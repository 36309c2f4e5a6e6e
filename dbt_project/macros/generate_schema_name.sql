{#- Use a model's custom schema as its zone (marts, staging, monitoring) rather than dbt's
    <target>_<custom> default, so consumers read marts.training_table_1h whatever the target; on BigQuery
    the zone maps to its configured dataset (macros/warehouse_schemas.sql). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ warehouse_schema(custom_schema_name | trim) }}{%- endif -%}
{%- endmacro %}
