{#
  Per movie: a Bayesian-weighted rating, which pulls the average of a movie with few ratings
  towards the global mean (IMDb's top-250 formula):

      weighted_rating = (v × R + m × C) / (v + m)

  with v the movie's rating count, R its average, C the mean of every rating and m the minimum
  votes, `var('min_votes')` (10). A movie nobody rated gets C. Popularity rank 1 is the most rated.
#}
{{ config(meta={'lagoa': {'publish': {'sort_by': ['popularity_rank']}}}) }}

{% set min_votes = var('min_votes', 10) %}

with movies as (
    select * from {{ ref('int_movie_ratings') }}
),
prior as (
    select avg(rating) as global_mean from {{ ref('stg_ratings') }}
)
select
    movies.movie_id,
    movies.title,
    movies.release_year,
    array_to_string(movies.genres, ', ') as genres,
    movies.rating_count,
    round(movies.avg_rating, 3) as avg_rating,
    round(movies.rating_stddev, 3) as rating_stddev,
    round(
        (movies.rating_count * coalesce(movies.avg_rating, 0) + {{ min_votes }} * prior.global_mean)
        / (movies.rating_count + {{ min_votes }}),
        4
    ) as weighted_rating,
    rank() over (order by movies.rating_count desc) as popularity_rank,
    movies.first_rated_at,
    movies.last_rated_at,
    movies.imdb_id,
    'https://www.imdb.com/title/tt' || movies.imdb_id || '/' as imdb_url,
    movies.tmdb_id
from movies
cross join prior
