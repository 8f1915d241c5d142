package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" database/sql driver

	"github.com/pinpipe/pinpipe/transforms"
)

// DuckDB doing the contract in SQL: read_json over the same S3-sink objects,
// every field read as text (numbers arrive as numbers or numeric strings),
// cleaned with the contract's rules, deduplicated, written, and the eight
// insights queried. An in-memory database, as many threads as cores, default
// memory limit.

// duckSetup are the session settings and the macros the cleaning uses.
var duckSetup = []string{
	// Timestamps are UTC; the ICU extension is built in and honours this.
	`SET TimeZone = 'UTC'`,
	// Like the Beam job, no engine keeps the input order.
	`SET preserve_insertion_order = false`,
	// An integer from a JSON number or a numeric string; "12.5" is not one
	// (a bare cast would round it).
	`CREATE MACRO to_int(x) AS CASE WHEN TRY_CAST(x AS DOUBLE) = TRY_CAST(x AS BIGINT) THEN TRY_CAST(x AS BIGINT) END`,
	// "YYYY-MM-DD HH:MM:SS" (UTC) or RFC 3339, as a UTC timestamp.
	`CREATE MACRO to_ts(x) AS TRY_CAST(x AS TIMESTAMPTZ)::TIMESTAMP`,
	// follower_count: digits as is; a number with a k, M or B suffix times
	// 1e3, 1e6, 1e9 (decimals allowed, rounded half up); anything else null.
	`CREATE MACRO followers(s) AS CASE
		WHEN regexp_full_match(trim(s), '[0-9]+') THEN TRY_CAST(trim(s) AS BIGINT)
		WHEN regexp_full_match(trim(s), '[0-9]+(\.[0-9]+)?[kMB]') THEN TRY_CAST(round(
			TRY_CAST(left(trim(s), -1) AS DECIMAL(38, 10)) *
			CASE right(trim(s), 1) WHEN 'k' THEN 1000 WHEN 'M' THEN 1000000 ELSE 1000000000 END) AS BIGINT)
		END`,
	`CREATE MACRO age_group(a) AS CASE
		WHEN a BETWEEN 18 AND 24 THEN '18-24'
		WHEN a BETWEEN 25 AND 35 THEN '25-35'
		WHEN a BETWEEN 36 AND 50 THEN '36-50'
		WHEN a > 50 THEN '50+' END`,
}

// duckSource is the read_json table function over a table's input files.
func duckSource(in, table string, columns []string) (string, error) {
	var globs []string
	for _, ext := range []string{"*.json", "*.json.gz"} {
		g := filepath.Join(in, "topics", "pinpipe."+table, "partition=*", ext)
		if m, err := filepath.Glob(g); err != nil {
			return "", err
		} else if len(m) > 0 {
			globs = append(globs, sqlString(g))
		}
	}
	if len(globs) == 0 {
		return "", fmt.Errorf("no %s input files under %s", table, in)
	}
	var cols []string
	for _, c := range columns {
		cols = append(cols, sqlString(c)+": 'VARCHAR'")
	}
	return fmt.Sprintf("read_json([%s], format = 'newline_delimited', hive_partitioning = false, ignore_errors = true, columns = {%s})",
		strings.Join(globs, ", "), strings.Join(cols, ", ")), nil
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// duckCleanSQL are the SELECTs that clean each table, columns in the
// contract's order. Records whose key is missing, null or not an integer
// are left out (rejected).
func duckCleanSQL(in string) (map[string]string, error) {
	pin, err := duckSource(in, transforms.TablePin, transforms.PinFields)
	if err != nil {
		return nil, err
	}
	geo, err := duckSource(in, transforms.TableGeo, transforms.GeoFields)
	if err != nil {
		return nil, err
	}
	user, err := duckSource(in, transforms.TableUser, transforms.UserFields)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		transforms.TablePin: `SELECT * FROM (SELECT
			to_int("index") AS ind,
			nullif(unique_id, '') AS unique_id,
			CASE WHEN title IN ('', 'No Title Data Available') THEN NULL ELSE title END AS title,
			CASE WHEN description = '' OR contains(description, 'No description available') THEN NULL ELSE description END AS description,
			CASE WHEN follower_count = 'User Info Error' THEN NULL ELSE followers(follower_count) END AS follower_count,
			CASE WHEN poster_name IN ('', 'User Info Error') THEN NULL ELSE poster_name END AS poster_name,
			CASE WHEN tag_list IN ('', 'N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e') THEN NULL ELSE tag_list END AS tag_list,
			nullif(is_image_or_video, '') AS is_image_or_video,
			CASE WHEN image_src IN ('', 'Image src error.') THEN NULL ELSE image_src END AS image_src,
			nullif(CASE WHEN starts_with(save_location, 'Local save in ') THEN substr(save_location, 15) ELSE save_location END, '') AS save_location,
			nullif(category, '') AS category
			FROM ` + pin + `) WHERE ind IS NOT NULL`,
		transforms.TableGeo: `SELECT ind, country, CASE WHEN isfinite(lat) AND isfinite(lon) THEN [lat, lon] END AS coordinates, "timestamp"
			FROM (SELECT
			to_int(ind) AS ind,
			nullif(country, '') AS country,
			TRY_CAST(latitude AS DOUBLE) AS lat,
			TRY_CAST(longitude AS DOUBLE) AS lon,
			to_ts("timestamp") AS "timestamp"
			FROM ` + geo + `) WHERE ind IS NOT NULL`,
		transforms.TableUser: `SELECT * FROM (SELECT
			to_int(ind) AS ind,
			nullif(concat_ws(' ', nullif(trim(first_name), ''), nullif(trim(last_name), '')), '') AS user_name,
			to_int(age) AS age,
			to_ts(date_joined) AS date_joined
			FROM ` + user + `) WHERE ind IS NOT NULL`,
	}, nil
}

// duckInsights are the eight insights over the deduplicated tables pin, geo
// and "user", in the contract's order, fields and sort order.
var duckInsights = []struct{ name, sql string }{
	{"top_category_by_country", `SELECT country, category, category_count FROM (
		SELECT g.country, p.category, count(*) AS category_count
		FROM pin p JOIN geo g ON p.ind = g.ind
		WHERE g.country IS NOT NULL AND p.category IS NOT NULL GROUP BY ALL)
		QUALIFY category_count = max(category_count) OVER (PARTITION BY country)
		ORDER BY country, category`},
	{"top_category_by_year", `SELECT post_year, category, category_count FROM (
		SELECT year(g."timestamp") AS post_year, p.category, count(*) AS category_count
		FROM pin p JOIN geo g ON p.ind = g.ind
		WHERE year(g."timestamp") BETWEEN 2018 AND 2022 AND p.category IS NOT NULL GROUP BY ALL)
		QUALIFY category_count = max(category_count) OVER (PARTITION BY post_year)
		ORDER BY post_year, category`},
	{"top_user_by_country", `SELECT DISTINCT country, user_name, follower_count FROM (
		SELECT g.country, u.user_name, p.follower_count
		FROM pin p JOIN geo g ON p.ind = g.ind JOIN "user" u ON p.ind = u.ind
		WHERE g.country IS NOT NULL AND p.follower_count IS NOT NULL AND u.user_name IS NOT NULL)
		QUALIFY follower_count = max(follower_count) OVER (PARTITION BY country)
		ORDER BY country, user_name`},
	{"top_category_by_age_group", `SELECT age_group, category, category_count FROM (
		SELECT age_group(u.age) AS age_group, p.category, count(*) AS category_count
		FROM pin p JOIN "user" u ON p.ind = u.ind
		WHERE age_group(u.age) IS NOT NULL AND p.category IS NOT NULL GROUP BY ALL)
		QUALIFY category_count = max(category_count) OVER (PARTITION BY age_group)
		ORDER BY age_group, category`},
	{"median_followers_by_age_group", `SELECT age_group, quantile_cont(follower_count, 0.5) AS median_follower_count FROM (
		SELECT DISTINCT u.user_name, age_group(u.age) AS age_group, p.follower_count
		FROM pin p JOIN "user" u ON p.ind = u.ind
		WHERE p.follower_count IS NOT NULL AND age_group(u.age) IS NOT NULL)
		GROUP BY age_group ORDER BY age_group`},
	{"users_joined_by_year", `SELECT year(date_joined) AS join_year, count(DISTINCT user_name) AS users_joined
		FROM "user" WHERE date_joined IS NOT NULL AND user_name IS NOT NULL
		GROUP BY join_year ORDER BY join_year`},
	{"median_followers_by_join_year", `SELECT join_year, quantile_cont(follower_count, 0.5) AS median_follower_count FROM (
		SELECT DISTINCT u.user_name, year(u.date_joined) AS join_year, p.follower_count
		FROM pin p JOIN "user" u ON p.ind = u.ind
		WHERE p.follower_count IS NOT NULL AND u.date_joined IS NOT NULL)
		GROUP BY join_year ORDER BY join_year`},
	{"median_followers_by_join_year_and_age_group", `SELECT join_year, age_group, quantile_cont(follower_count, 0.5) AS median_follower_count FROM (
		SELECT DISTINCT u.user_name, year(u.date_joined) AS join_year, age_group(u.age) AS age_group, p.follower_count
		FROM pin p JOIN "user" u ON p.ind = u.ind
		WHERE p.follower_count IS NOT NULL AND u.date_joined IS NOT NULL AND age_group(u.age) IS NOT NULL)
		GROUP BY join_year, age_group ORDER BY join_year, age_group`},
}

func duckOpen(ctx context.Context) (*sql.DB, *sql.Conn, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, nil, err
	}
	// One connection: an in-memory database is per connector, and session
	// settings and macros are per connection.
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	for _, q := range duckSetup {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			conn.Close()
			db.Close()
			return nil, nil, fmt.Errorf("%s: %w", firstLine(q), err)
		}
	}
	return db, conn, nil
}

func firstLine(q string) string {
	q, _, _ = strings.Cut(strings.TrimSpace(q), "\n")
	return q
}

func duckCount(ctx context.Context, conn *sql.Conn, table string) (int64, error) {
	var n int64
	err := conn.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n)
	return n, err
}

// duckCleanTables materialises the clean tables as <table>_clean.
func duckCleanTables(ctx context.Context, conn *sql.Conn, in string) (map[string]tableCounts, error) {
	queries, err := duckCleanSQL(in)
	if err != nil {
		return nil, err
	}
	counts := map[string]tableCounts{}
	for _, t := range transforms.Tables {
		if _, err := conn.ExecContext(ctx, `CREATE TABLE `+t+`_clean AS `+queries[t]); err != nil {
			return nil, fmt.Errorf("cleaning %s: %w", t, err)
		}
		n, err := duckCount(ctx, conn, t+"_clean")
		if err != nil {
			return nil, err
		}
		counts[t] = tableCounts{Read: unknown, Clean: n, Rows: unknown}
	}
	return counts, nil
}

// duckClean is the clean-only step: the three clean tables materialised in
// memory (every column computed; a bare count would let DuckDB skip them).
func duckClean(ctx context.Context, in string) (childResult, error) {
	db, conn, err := duckOpen(ctx)
	if err != nil {
		return childResult{}, err
	}
	defer db.Close()
	defer conn.Close()
	tm := newPhaseTimer()
	counts, err := duckCleanTables(ctx, conn, in)
	if err != nil {
		return childResult{}, err
	}
	tm.done("clean")
	return childResult{Tables: counts, Phases: tm.phases}, nil
}

// duckFull is the whole job: clean, deduplicate (one row per ind), write the
// tables, and write the eight insights as JSON arrays.
func duckFull(ctx context.Context, in, out string) (childResult, error) {
	db, conn, err := duckOpen(ctx)
	if err != nil {
		return childResult{}, err
	}
	defer db.Close()
	defer conn.Close()
	tm := newPhaseTimer()
	counts, err := duckCleanTables(ctx, conn, in)
	if err != nil {
		return childResult{}, err
	}
	tm.done("clean")
	for _, t := range transforms.Tables {
		// Duplicates are re-sent copies of one record; DISTINCT ON keeps one.
		// (The Go dedup picks the row with the smallest encoding when copies
		// differ; the generated copies never do.)
		if _, err := conn.ExecContext(ctx, `CREATE TABLE "`+t+`" AS SELECT DISTINCT ON (ind) * FROM `+t+`_clean`); err != nil {
			return childResult{}, fmt.Errorf("deduplicating %s: %w", t, err)
		}
		if _, err := conn.ExecContext(ctx, `DROP TABLE `+t+`_clean`); err != nil {
			return childResult{}, err
		}
		n, err := duckCount(ctx, conn, `"`+t+`"`)
		if err != nil {
			return childResult{}, err
		}
		c := counts[t]
		c.Rows = n
		counts[t] = c
	}
	tm.done("dedup")
	for _, t := range transforms.Tables {
		dir := filepath.Join(out, "tables", t)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return childResult{}, err
		}
		var opts string
		switch *format {
		case "parquet":
			opts = "FORMAT parquet, COMPRESSION snappy"
		case "jsonl":
			opts = "FORMAT json"
		default:
			return childResult{}, fmt.Errorf("unknown format %q", *format)
		}
		name := filepath.Join(dir, "part-00000."+*format)
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`COPY "%s" TO %s (%s)`, t, sqlString(name), opts)); err != nil {
			return childResult{}, fmt.Errorf("writing %s: %w", t, err)
		}
	}
	tm.done("write tables")
	dir := filepath.Join(out, "insights")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return childResult{}, err
	}
	for _, q := range duckInsights {
		name := filepath.Join(dir, q.name+".json")
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`COPY (%s) TO %s (FORMAT json, ARRAY true)`, q.sql, sqlString(name))); err != nil {
			return childResult{}, fmt.Errorf("insight %s: %w", q.name, err)
		}
	}
	tm.done("insights")
	return childResult{Tables: counts, Phases: tm.phases}, nil
}
