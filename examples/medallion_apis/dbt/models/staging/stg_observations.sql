{{ config(tags=['weather']) }}
select id, station_id, observed_at, cast(observed_at as date) as day, temperature_c, humidity, updated_at
from {{ source('silver', 'observations') }}
