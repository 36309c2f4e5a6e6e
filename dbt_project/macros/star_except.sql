{#- `alias.* EXCLUDE (...)` on DuckDB, `alias.* EXCEPT (...)` on BigQuery: one wide select for both. -#}
{% macro star_except(alias, columns) -%}
{{ alias }}.* {{ 'except' if target.type == 'bigquery' else 'exclude' }} ({{ columns | join(', ') }})
{%- endmacro %}
