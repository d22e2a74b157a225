{{ config(tags=['fx']) }}
select id, currency, day, rate, updated_at from {{ source('silver', 'rates') }}
