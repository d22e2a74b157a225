-- "Toy Story (1995)" → title "Toy Story", release_year 1995; "Adventure|Animation" → a list.
select
    movie_id,
    trim(regexp_replace(trim(title), '\s*\(\d{4}\)$', '')) as title,
    try_cast(regexp_extract(trim(title), '\((\d{4})\)$', 1) as integer) as release_year,
    case when genres = '(no genres listed)' then []::varchar[] else string_split(genres, '|') end as genres
from {{ source('silver', 'movies') }}
