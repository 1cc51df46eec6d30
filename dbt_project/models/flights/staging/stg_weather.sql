-- One row per origin and hour. A wind speed above 250 mph is a sensor error in the source
-- (one reading of 1,048 mph at EWR): it becomes unknown rather than a fact.
select
    origin || '-' || {{ utc_hour_text('time_hour') }} as weather_id,
    origin,
    time_hour as observed_hour_utc,
    temp as temp_f,
    dewp as dewpoint_f,
    humid as humidity_pct,
    wind_dir as wind_dir_deg,
    case when wind_speed <= 250 then wind_speed end as wind_speed_mph,
    case when wind_gust <= 250 then wind_gust end as wind_gust_mph,
    precip as precip_in,
    pressure as pressure_mb,
    visib as visibility_mi
from {{ source('raw', 'weather') }}
