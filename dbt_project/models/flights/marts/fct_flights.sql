-- The flights fact: one row per scheduled departure, with what was known at departure time
-- (weather, aircraft) and what happened (delays, cancellation).
{{ config(
    materialized='incremental',
    unique_key='flight_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    pre_hook="{{ clear_partition_window('flight_date') }}",
    tags=['flights_daily'],
) }}

select
    flight_id,
    flight_date,
    scheduled_departure,
    carrier,
    flight_number,
    tailnum,
    origin,
    dest,
    distance,
    year,
    dep_delay,
    arr_delay,
    is_cancelled,
    weather_id is not null as has_weather,
    temp_f,
    humidity_pct,
    wind_speed_mph,
    precip_in,
    pressure_mb,
    visibility_mi,
    plane_year_built,
    plane_seats
from {{ ref('int_flights_enriched') }}
where {{ partition_window('flight_date') }}
