-- One row per movie, rated or not, with its ratings' statistics and its IMDb and TMDB ids.
with ratings as (
    select
        movie_id,
        count(*) as rating_count,
        avg(rating) as avg_rating,
        stddev_samp(rating) as rating_stddev,
        min(rated_at) as first_rated_at,
        max(rated_at) as last_rated_at
    from {{ ref('stg_ratings') }}
    group by movie_id
)
select
    m.movie_id,
    m.title,
    m.release_year,
    m.genres,
    l.imdb_id,
    l.tmdb_id,
    coalesce(r.rating_count, 0) as rating_count,
    r.avg_rating,
    r.rating_stddev,
    r.first_rated_at,
    r.last_rated_at
from {{ ref('stg_movies') }} m
left join ratings r using (movie_id)
left join {{ ref('stg_links') }} l using (movie_id)
