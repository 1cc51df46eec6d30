{#- What the models need beyond dbt's own cross-database macros (dbt.dateadd, dbt.concat, dbt.type_*):
    each dispatches through adapter.dispatch, so a warehouse whose SQL differs overrides it with its
    own `<adapter>__<name>` macro (e.g. `snowflake__date_from_parts`) and no model changes. The
    default implementations are SQL that DuckDB and PostgreSQL both run, and give the same values. -#}

{#- The date of integer year, month and day columns. -#}
{% macro date_from_parts(year, month, day) -%}
  {{ return(adapter.dispatch('date_from_parts', 'factory')(year, month, day)) }}
{%- endmacro %}

{% macro default__date_from_parts(year, month, day) -%}
  make_date(cast({{ year }} as integer), cast({{ month }} as integer), cast({{ day }} as integer))
{%- endmacro %}

{#- A time-zone-aware timestamp as the wall-clock timestamp (no time zone) it shows in UTC, whatever
    the session's time zone is. -#}
{% macro to_utc_timestamp(timestamp_tz) -%}
  {{ return(adapter.dispatch('to_utc_timestamp', 'factory')(timestamp_tz)) }}
{%- endmacro %}

{% macro default__to_utc_timestamp(timestamp_tz) -%}
  ({{ timestamp_tz }} at time zone 'UTC')
{%- endmacro %}

{#- A time-zone-aware timestamp's hour in UTC as text, 'YYYY-MM-DDTHH' (e.g. 2013-01-01T06): standard
    casts and lpad, the same text on every warehouse. -#}
{% macro utc_hour_text(timestamp_tz) -%}
  {%- set utc = to_utc_timestamp(timestamp_tz) -%}
  {{ dbt.concat([
      "cast(cast(" ~ utc ~ " as date) as " ~ dbt.type_string() ~ ")",
      "'T'",
      "lpad(cast(cast(extract(hour from " ~ utc ~ ") as integer) as " ~ dbt.type_string() ~ "), 2, '0')",
  ]) }}
{%- endmacro %}
