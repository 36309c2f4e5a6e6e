{#- Use a model's custom schema as-is (marts, staging) rather than dbt's <target>_<custom> default,
    so consumers read marts.training_table_1h whatever the target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
