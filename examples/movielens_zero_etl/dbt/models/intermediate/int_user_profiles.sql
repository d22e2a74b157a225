-- One row per user who rated or tagged anything. The favourite genre is the one the user rated
-- most often (ties: the better rated, then alphabetical); active days are UTC days with a rating
-- or a tag.
with ratings as (
    select * from {{ ref('stg_ratings') }}
),
tags as (
    select * from {{ ref('stg_tags') }}
),
rating_stats as (
    select user_id, count(*) as ratings_count, avg(rating) as avg_rating
    from ratings
    group by user_id
),
tag_stats as (
    select user_id, count(*) as tags_count
    from tags
    group by user_id
),
rated_genres as (
    select r.user_id, r.rating, unnest(m.genres) as genre
    from ratings r
    join {{ ref('stg_movies') }} m using (movie_id)
),
favourite_genres as (
    select user_id, genre as favourite_genre
    from rated_genres
    group by user_id, genre
    qualify row_number() over (partition by user_id order by count(*) desc, avg(rating) desc, genre) = 1
),
activity as (
    select user_id, rated_at as happened_at, rated_on as happened_on from ratings
    union all
    select user_id, tagged_at, tagged_on from tags
),
activity_stats as (
    select
        user_id,
        count(distinct happened_on) as active_days,
        min(happened_at) as first_seen_at,
        max(happened_at) as last_seen_at,
        min(happened_on) as first_active_on,
        max(happened_on) as last_active_on
    from activity
    group by user_id
)
select
    a.user_id,
    coalesce(r.ratings_count, 0) as ratings_count,
    r.avg_rating,
    coalesce(t.tags_count, 0) as tags_count,
    f.favourite_genre,
    a.active_days,
    a.first_seen_at,
    a.last_seen_at,
    a.first_active_on,
    a.last_active_on
from activity_stats a
left join rating_stats r using (user_id)
left join tag_stats t using (user_id)
left join favourite_genres f using (user_id)
