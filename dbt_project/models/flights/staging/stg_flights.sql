{{ config(tags=["flights_daily"]) }}
-- One row per flight, renamed and typed; the scheduled departure becomes a local timestamp.
select
    strftime(make_date(year, month, day), '%Y-%m-%d')
        || '-' || carrier || cast(flight as varchar) || '-' || origin as flight_id,
    make_date(year, month, day) as flight_date,
    make_timestamp(year, month, day, hour, minute, 0.0) as scheduled_departure,
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
