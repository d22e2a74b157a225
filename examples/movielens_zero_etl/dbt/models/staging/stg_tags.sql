select
    tag_id,
    user_id,
    movie_id,
    tag,
    tagged_at,
    cast(timezone('UTC', tagged_at) as date) as tagged_on
from {{ source('silver', 'tags') }}
