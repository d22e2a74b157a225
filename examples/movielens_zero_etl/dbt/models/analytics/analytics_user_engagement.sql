{#
  Per user: an engagement segment by ratings count (casual under 50, regular under 200, power
  from 200), tags per rating, and tenure: days from the first to the last activity (UTC).
#}
{{ config(meta={'lagoa': {'publish': {'sort_by': ['user_id']}}}) }}

select
    user_id,
    case
        when ratings_count >= 200 then 'power'
        when ratings_count >= 50 then 'regular'
        else 'casual'
    end as segment,
    ratings_count,
    tags_count,
    round(tags_count / nullif(ratings_count, 0), 4) as tags_per_rating,
    round(avg_rating, 3) as avg_rating,
    favourite_genre,
    active_days,
    date_diff('day', first_active_on, last_active_on) as tenure_days,
    first_seen_at,
    last_seen_at
from {{ ref('int_user_profiles') }}
