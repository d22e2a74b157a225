{{ config(tags=['marketing']) }}
select lead_id, store_id, email, channel, status, score, created_at, cast(created_at as date) as dt
from {{ source('silver', 'crm_leads') }}
