{#
  Daily metrics per store. Incremental: each run rebuilds 7 days back (late orders, leads and
  events land within a week) and merges them on (dt, store_id).

  Runs of a pipeline pass their data interval (`var('interval_start')`, `var('interval_end')`):
  the model then builds the days before the interval's end, from 7 days before its start. Without
  an interval (`lagoa transform`) it rebuilds the 7 days before the latest day it holds.
#}
{{ config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key=['dt', 'store_id'],
    tags=['orders'],
    meta={'lagoa': {'publish': {'partition_by': ['dt'], 'zorder': ['store_id'], 'rows_per_file': 1000000}}},
) }}

{% set interval_start = var('interval_start', none) %}
{% set interval_end = var('interval_end', none) %}
{% set lookback %}
    where true
    {% if interval_end %}
    and dt < cast('{{ interval_end }}' as timestamp)
    {% endif %}
    {% if is_incremental() and interval_start %}
    and dt >= cast('{{ interval_start }}' as timestamp) - interval 7 day
    {% elif is_incremental() %}
    and dt >= (select coalesce(max(dt), date '1970-01-01') - interval 7 day from {{ this }})
    {% endif %}
{% endset %}

with orders as (
    select * from {{ ref('stg_erp_orders') }} {{ lookback }}
),
order_metrics as (
    select
        dt,
        store_id,
        count(*) as orders,
        sum(revenue) as revenue,
        sum(quantity) as units,
        count(distinct customer_id) as distinct_customers
    from orders
    group by all
),
category_revenue as (
    select o.dt, o.store_id, p.category, sum(o.revenue) as revenue
    from orders o join {{ ref('stg_products') }} p using (product_id)
    group by all
),
top_category as (
    select dt, store_id, arg_max(category, revenue) as top_category
    from category_revenue
    group by all
),
leads as (
    select dt, store_id, count(*) as leads
    from {{ ref('stg_crm_leads') }} {{ lookback }}
    group by all
),
sessions as (
    select
        dt,
        store_id,
        count(distinct session_id) as sessions,
        count(distinct case when event_type = 'purchase' then session_id end) as purchase_sessions
    from {{ ref('stg_web_events') }} {{ lookback }}
    group by all
)
select
    m.dt,
    m.store_id,
    m.orders,
    round(m.revenue, 2) as revenue,
    m.units,
    m.distinct_customers,
    coalesce(l.leads, 0) as leads,
    coalesce(s.sessions, 0) as sessions,
    case when coalesce(s.sessions, 0) = 0 then 0
         else round(s.purchase_sessions / s.sessions, 4) end as conversion_rate,
    t.top_category
from order_metrics m
left join leads l using (dt, store_id)
left join sessions s using (dt, store_id)
left join top_category t using (dt, store_id)
