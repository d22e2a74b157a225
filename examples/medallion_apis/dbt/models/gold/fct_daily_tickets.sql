{{ config(tags=['support'], meta={'lagoa': {'publish': {'partition_by': ['day']}}}) }}
select day, priority, count(*) as tickets, count(distinct customer_id) as customers
from {{ ref('stg_tickets') }}
group by all
