select
    faa as airport_code,
    name as airport_name,
    lat as latitude,
    lon as longitude,
    alt as altitude_ft,
    tz as utc_offset_hours,
    dst as dst_rule,
    tzone as timezone
from {{ source('raw', 'airports') }}
