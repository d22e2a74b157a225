{{ config(tags=['support']) }}
select id, customer_id, priority, subject, updated_at, cast(updated_at as date) as day
from {{ source('silver', 'tickets') }}
