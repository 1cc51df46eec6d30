-- Airports with the three NYC departure airports flagged.
select
    airport_code,
    airport_name,
    latitude,
    longitude,
    altitude_ft,
    timezone,
    airport_code in ('EWR', 'JFK', 'LGA') as is_nyc_origin
from {{ ref('stg_airports') }}
