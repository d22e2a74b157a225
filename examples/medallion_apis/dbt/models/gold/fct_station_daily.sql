{{ config(tags=['weather'], meta={'lagoa': {'publish': {'partition_by': ['day'], 'sort_by': ['station_id']}}}) }}
select day, station_id, count(*) as observations, round(avg(temperature_c), 2) as avg_temperature_c,
       min(temperature_c) as min_temperature_c, max(temperature_c) as max_temperature_c
from {{ ref('stg_observations') }}
group by all
