-- The daily weather fact: one row per day at the station, what was observed (temperature
-- extremes, precipitation, wind, weather type) and what follows from it (the day's temperature
-- range, whether it rained, whether it froze).
select
    day_id,
    station,
    observed_on,
    condition,
    precipitation_mm,
    temp_max_c,
    temp_min_c,
    temp_max_c - temp_min_c as temp_range_c,
    wind_speed_ms,
    precipitation_mm > 0 as is_wet_day,
    temp_min_c <= 0 as is_frost_day
from {{ ref('stg_seattle_observations') }}
