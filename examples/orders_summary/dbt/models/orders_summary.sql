-- One row per day and status: the summary the orders pipeline publishes as partitioned Parquet.
select
    cast(order_ts as date) as order_date,
    status,
    count(*) as orders,
    sum(quantity) as units,
    round(sum(quantity * cast(unit_price as double)), 2) as revenue,
    round(avg(quantity * cast(unit_price as double)), 2) as avg_order_value
from {{ source('silver', 'orders') }}
group by all
