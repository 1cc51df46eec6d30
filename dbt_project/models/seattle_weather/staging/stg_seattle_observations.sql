-- One row per observed day at the Seattle station, renamed with units. The source's date is text
-- (YYYY/MM/DD); it becomes an ISO date. The dataset has one station: `station` is that constant,
-- the key per-station history features group by.
with source as (

    select * from {{ source('raw', 'seattle_observations') }}

),

renamed as (

    select
        {{ dbt.replace(adapter.quote('date'), "'/'", "'-'") }} as observed_on_text,
        precipitation as precipitation_mm,
        temp_max as temp_max_c,
        temp_min as temp_min_c,
        wind as wind_speed_ms,
        weather as condition
    from source

)

select
    {{ dbt.concat(["'seattle-'", "observed_on_text"]) }} as day_id,
    cast('seattle' as {{ dbt.type_string() }}) as station,
    cast(observed_on_text as date) as observed_on,
    precipitation_mm,
    temp_max_c,
    temp_min_c,
    wind_speed_ms,
    condition
from renamed
