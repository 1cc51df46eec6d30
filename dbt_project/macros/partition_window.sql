{#- A predicate selecting the partition window (inclusive): --vars min_date/max_date, else the
    environment's FACTORY_MIN_DATE/FACTORY_MAX_DATE, which the factory sets (dbt re-parses only
    the files that read a changed env var, where new --vars make it parse the whole project).
    Without either it selects everything, so a plain `dbt build` rebuilds the whole table. -#}
{% macro partition_window(column) -%}
  {%- set min_date = var('min_date', none) or env_var('FACTORY_MIN_DATE', '') -%}
  {%- set max_date = var('max_date', none) or env_var('FACTORY_MAX_DATE', '') -%}
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
