-- The eight insights of the data contract, in PostgreSQL, over the clean
-- tables the batch job loads with --warehouse (pin_clean, geo_clean,
-- user_clean; see io/postgres). Each query follows a "-- name:" line with the
-- insight's output name and returns exactly the fields, in the order, of
-- <output>/insights/<name>.json; the tests hold each one to the Beam job's
-- answer on the same data.
--
-- As in the Go implementation (transforms.Partials): the joins are inner
-- joins on ind; a row whose grouping value (country, year, age group,
-- category) is null is left out of that insight, as are null follower counts;
-- ties are all kept; medians are percentile_cont(0.5) over DISTINCT tuples,
-- where a null user_name is a value like any other.
--
-- Years are taken in UTC whatever the session's TimeZone, and text is sorted
-- by code point (COLLATE "C"), as Go sorts strings, whatever the database's
-- collation.

-- name: top_category_by_country
SELECT country, category, category_count
FROM (
  SELECT g.country, p.category, count(*) AS category_count,
         max(count(*)) OVER (PARTITION BY g.country) AS best
  FROM pin_clean p
  JOIN geo_clean g ON g.ind = p.ind
  WHERE g.country IS NOT NULL AND p.category IS NOT NULL
  GROUP BY g.country, p.category
) c
WHERE category_count = best
ORDER BY country COLLATE "C", category COLLATE "C";

-- name: top_category_by_year
SELECT post_year, category, category_count
FROM (
  SELECT y.post_year, p.category, count(*) AS category_count,
         max(count(*)) OVER (PARTITION BY y.post_year) AS best
  FROM pin_clean p
  JOIN geo_clean g ON g.ind = p.ind
  CROSS JOIN LATERAL (SELECT extract(year FROM g."timestamp" AT TIME ZONE 'UTC')::int AS post_year) y
  WHERE p.category IS NOT NULL AND y.post_year BETWEEN 2018 AND 2022
  GROUP BY y.post_year, p.category
) c
WHERE category_count = best
ORDER BY post_year, category COLLATE "C";

-- name: top_user_by_country
WITH posts AS (
  SELECT g.country, u.user_name, p.follower_count
  FROM pin_clean p
  JOIN geo_clean g ON g.ind = p.ind
  JOIN user_clean u ON u.ind = p.ind
  WHERE g.country IS NOT NULL AND p.follower_count IS NOT NULL AND u.user_name IS NOT NULL
)
SELECT country, user_name, follower_count
FROM (
  SELECT DISTINCT country, user_name, follower_count
  FROM (SELECT *, max(follower_count) OVER (PARTITION BY country) AS best FROM posts) m
  WHERE follower_count = best
) t
ORDER BY country COLLATE "C", user_name COLLATE "C";

-- name: top_category_by_age_group
SELECT age_group, category, category_count
FROM (
  SELECT a.age_group, p.category, count(*) AS category_count,
         max(count(*)) OVER (PARTITION BY a.age_group) AS best
  FROM pin_clean p
  JOIN user_clean u ON u.ind = p.ind
  CROSS JOIN LATERAL (SELECT CASE
      WHEN u.age BETWEEN 18 AND 24 THEN '18-24'
      WHEN u.age BETWEEN 25 AND 35 THEN '25-35'
      WHEN u.age BETWEEN 36 AND 50 THEN '36-50'
      WHEN u.age > 50 THEN '50+'
    END AS age_group) a
  WHERE a.age_group IS NOT NULL AND p.category IS NOT NULL
  GROUP BY a.age_group, p.category
) c
WHERE category_count = best
ORDER BY age_group COLLATE "C", category COLLATE "C";

-- name: median_followers_by_age_group
SELECT age_group, percentile_cont(0.5) WITHIN GROUP (ORDER BY follower_count) AS median_follower_count
FROM (
  SELECT DISTINCT u.user_name, a.age_group, p.follower_count
  FROM pin_clean p
  JOIN user_clean u ON u.ind = p.ind
  CROSS JOIN LATERAL (SELECT CASE
      WHEN u.age BETWEEN 18 AND 24 THEN '18-24'
      WHEN u.age BETWEEN 25 AND 35 THEN '25-35'
      WHEN u.age BETWEEN 36 AND 50 THEN '36-50'
      WHEN u.age > 50 THEN '50+'
    END AS age_group) a
  WHERE a.age_group IS NOT NULL AND p.follower_count IS NOT NULL
) d
GROUP BY age_group
ORDER BY age_group COLLATE "C";

-- name: users_joined_by_year
SELECT extract(year FROM date_joined AT TIME ZONE 'UTC')::int AS join_year, count(DISTINCT user_name) AS users_joined
FROM user_clean
WHERE date_joined IS NOT NULL AND user_name IS NOT NULL
GROUP BY 1
ORDER BY 1;

-- name: median_followers_by_join_year
SELECT join_year, percentile_cont(0.5) WITHIN GROUP (ORDER BY follower_count) AS median_follower_count
FROM (
  SELECT DISTINCT u.user_name, extract(year FROM u.date_joined AT TIME ZONE 'UTC')::int AS join_year, p.follower_count
  FROM pin_clean p
  JOIN user_clean u ON u.ind = p.ind
  WHERE u.date_joined IS NOT NULL AND p.follower_count IS NOT NULL
) d
GROUP BY join_year
ORDER BY join_year;

-- name: median_followers_by_join_year_and_age_group
SELECT join_year, age_group, percentile_cont(0.5) WITHIN GROUP (ORDER BY follower_count) AS median_follower_count
FROM (
  SELECT DISTINCT u.user_name, extract(year FROM u.date_joined AT TIME ZONE 'UTC')::int AS join_year, a.age_group, p.follower_count
  FROM pin_clean p
  JOIN user_clean u ON u.ind = p.ind
  CROSS JOIN LATERAL (SELECT CASE
      WHEN u.age BETWEEN 18 AND 24 THEN '18-24'
      WHEN u.age BETWEEN 25 AND 35 THEN '25-35'
      WHEN u.age BETWEEN 36 AND 50 THEN '36-50'
      WHEN u.age > 50 THEN '50+'
    END AS age_group) a
  WHERE a.age_group IS NOT NULL AND u.date_joined IS NOT NULL AND p.follower_count IS NOT NULL
) d
GROUP BY join_year, age_group
ORDER BY join_year, age_group COLLATE "C";
