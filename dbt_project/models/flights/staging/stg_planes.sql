select
    tailnum,
    year as year_built,
    type as aircraft_type,
    manufacturer,
    model as aircraft_model,
    engines,
    seats,
    speed as cruise_speed_mph,
    engine as engine_type
from {{ source('raw', 'planes') }}
