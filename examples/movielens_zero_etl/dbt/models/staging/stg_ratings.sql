select
    user_id,
    movie_id,
    cast(rating as double) as rating,
    rated_at,
    cast(timezone('UTC', rated_at) as date) as rated_on
from {{ source('silver', 'ratings') }}
