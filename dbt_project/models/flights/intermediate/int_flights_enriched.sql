-- Each flight with the weather at its origin in its scheduled hour and the plane that flew it.
{{ config(
    materialized='incremental',
    unique_key='flight_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    pre_hook="{{ clear_partition_window('flight_date') }}",
    tags=['flights_daily'],
) }}

select
    flights.flight_id,
    flights.flight_date,
    flights.scheduled_departure,
    flights.year,
    flights.carrier,
    flights.flight_number,
    flights.tailnum,
    flights.origin,
    flights.dest,
    flights.distance,
    flights.dep_delay,
    flights.arr_delay,
    flights.is_cancelled,
    weather.weather_id,
    weather.temp_f,
    weather.humidity_pct,
    weather.wind_speed_mph,
    weather.precip_in,
    weather.pressure_mb,
    weather.visibility_mi,
    planes.year_built as plane_year_built,
    planes.seats as plane_seats
from {{ ref('stg_flights') }} as flights
left join {{ ref('stg_weather') }} as weather
    on weather.origin = flights.origin
    and weather.observed_hour_utc = flights.scheduled_hour_utc
left join {{ ref('stg_planes') }} as planes
    on planes.tailnum = flights.tailnum
where {{ partition_window('flights.flight_date') }}
