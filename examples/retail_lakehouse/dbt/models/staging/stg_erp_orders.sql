{{ config(tags=['orders']) }}
select
    order_id,
    store_id,
    customer_id,
    product_id,
    quantity,
    cast(unit_price as double) as unit_price,
    quantity * cast(unit_price as double) as revenue,
    status,
    order_ts,
    cast(order_ts as date) as dt,
    updated_at
from {{ source('silver', 'erp_orders') }}
