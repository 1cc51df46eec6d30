-- Aircraft with a size class derived from seats.
select
    tailnum,
    year_built,
    manufacturer,
    aircraft_model,
    aircraft_type,
    engines,
    seats,
    engine_type,
    case
        when seats is null then 'unknown'
        when seats < 50 then 'small'
        when seats < 150 then 'medium'
        else 'large'
    end as size_class
from {{ ref('stg_planes') }}
