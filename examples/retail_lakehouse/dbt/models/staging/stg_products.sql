{{ config(tags=['orders']) }}
select product_id, name, category, cast(price as double) as price, updated_at
from {{ source('silver', 'products') }}
