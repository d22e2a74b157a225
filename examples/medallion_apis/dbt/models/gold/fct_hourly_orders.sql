{{ config(tags=['marketplace'], meta={'lagoa': {'publish': {'partition_by': ['day'], 'sort_by': ['hour']}}}) }}
select day, hour, status, count(*) as orders, round(sum(amount), 2) as revenue, count(distinct customer_id) as customers
from {{ ref('stg_orders') }}
group by all
