{{ config(tags=["flights_daily"]) }}
{%- set flight_date = date_from_parts('year', 'month', 'day') %}
-- One row per flight, renamed and typed; the scheduled departure becomes a local timestamp.
select
    cast({{ flight_date }} as {{ dbt.type_string() }})
        || '-' || carrier || cast(flight as {{ dbt.type_string() }}) || '-' || origin as flight_id,
    {{ flight_date }} as flight_date,
    {{ dbt.dateadd('minute', '60 * hour + minute', 'cast(' ~ flight_date ~ ' as ' ~ dbt.type_timestamp() ~ ')') }}
        as scheduled_departure,
    time_hour as scheduled_hour_utc,
    year,
    month,
    day,
    carrier,
    flight as flight_number,
    tailnum,
    origin,
    dest,
    sched_dep_time,
    dep_time,
    dep_delay,
    sched_arr_time,
    arr_time,
    arr_delay,
    air_time,
    distance,
    dep_time is null as is_cancelled
from {{ source('raw', 'flights') }}
