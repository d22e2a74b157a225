{{ config(tags=['marketplace']) }}
select id, customer_id, cast(amount as double) as amount, status, updated_at,
       date_trunc('hour', updated_at) as hour, cast(updated_at as date) as day
from {{ source('silver', 'orders') }}
