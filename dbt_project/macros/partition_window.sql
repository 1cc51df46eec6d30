{#- A predicate selecting the partition window passed as --vars min_date/max_date (inclusive).
    Without vars it selects everything, so a plain `dbt build` rebuilds the whole table. -#}
{% macro partition_window(column) -%}
  {%- set min_date = var('min_date', none) -%}
  {%- set max_date = var('max_date', none) -%}
  {%- if min_date and max_date -%}
    {{ column }} between cast('{{ min_date }}' as date) and cast('{{ max_date }}' as date)
  {%- elif min_date or max_date -%}
    {{ exceptions.raise_compiler_error("min_date and max_date must be passed together") }}
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}

{#- Pre-hook of the partitioned incremental models: clear the window before it is re-inserted, so
    re-running a day replaces it exactly (rows that left the source leave the table too). -#}
{% macro clear_partition_window(column) -%}
  {%- if is_incremental() -%}
    delete from {{ this }} where {{ partition_window(column) }}
  {%- endif -%}
{%- endmacro %}
