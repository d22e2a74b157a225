select movie_id, imdb_id, tmdb_id
from {{ source('silver', 'links') }}
