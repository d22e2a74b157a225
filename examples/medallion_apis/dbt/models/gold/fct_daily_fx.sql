{{ config(tags=['fx'], meta={'lagoa': {'publish': {'partition_by': ['day'], 'sort_by': ['currency']}}}) }}
select day, currency, count(*) as quotes, round(avg(rate), 4) as avg_rate, min(rate) as low, max(rate) as high
from {{ ref('stg_rates') }}
group by all
