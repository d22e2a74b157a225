{{ config(tags=['web']) }}
select event_id, session_id, customer_id, store_id, event_type, product_id, ts, cast(ts as date) as dt
from {{ source('silver', 'web_events') }}
