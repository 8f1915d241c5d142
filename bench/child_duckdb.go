package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" database/sql driver

	"github.com/pinpipe/pinpipe/transforms"
)

// DuckDB doing the contract in SQL over the same S3-sink objects: every
// line read as text (read_csv with \x01 as delimiter and no quoting, so that DuckDB
// splits the files and reads them on every core), each line parsed once with
// try(json_transform(...)), rejected by the contract's rules with the
// contract's reasons (counted per table and reason, and written as dead
// letters by the full job), the rest cleaned, deduplicated, written, and the
// eight insights queried. An in-memory database, as many threads as cores,
// default memory limit.
//
// What it does differently from transforms (see README.md): DuckDB's JSON
// reader accepts trailing commas, NaN and Infinity, which transforms rejects
// as invalid JSON; a line that is not UTF-8, or longer than read_csv's
// max_line_size (2 MB), is rejected by the CSV reader (as invalid JSON, with
// the line as DuckDB shows it as payload), where transforms accepts invalid
// UTF-8 inside strings; read_csv also ends a line at a lone \r, so a
// malformed line with a raw \r inside becomes two lines; a repeated key
// keeps its first value, not the last;
// a non-key field that is a boolean, object or array becomes text, not null.
// The generator writes none of these.

// duckSetup are the session settings and the macros the cleaning uses.
var duckSetup = []string{
	// Timestamps are UTC; the ICU extension is built in and honours this.
	`SET TimeZone = 'UTC'`,
	// Like the Beam job, no engine keeps the input order.
	`SET preserve_insertion_order = false`,
	// An integer from a JSON number or a numeric string; "12.5" is not one
	// (a bare cast would round it).
	`CREATE MACRO to_int(x) AS CASE WHEN TRY_CAST(x AS DOUBLE) = TRY_CAST(x AS BIGINT) THEN TRY_CAST(x AS BIGINT) END`,
	// A record's key as the contract reads it, from its value as text k (a
	// JSON number's literal, a string's contents, true, an object's JSON):
	// JSON's number syntax, surrounding spaces allowed, whose value is a
	// whole number in BIGINT's range ("7528", 7528.0, 7.528e3); null for
	// anything else (7528.5, "abc", "007", true, objects, arrays). A JSON
	// number always has the syntax, so the one check serves both.
	`CREATE MACRO key_int(k) AS to_int(regexp_extract(k, '^\s*(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\s*$', 1))`,
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

// duckSource is a subquery over a table's input files with one row per
// non-blank line: reject, the contract's reason when the line is rejected
// (else null); payload, the line when rejected; key, the record's key as
// BIGINT; and every raw field but the key as text, named as in the raw
// record.
//
// The lines come from read_csv with \x01 as the delimiter and no quotes: a
// line holding a \x01 (a raw control character, never valid JSON) spills
// into the column rest and is rejected as invalid JSON. Lines the CSV reader
// cannot read at all (not UTF-8) land in the rejects table <table>_csv_rejects
// (store_rejects) instead of failing the job, and duckCleanTables counts them
// as invalid JSON: nothing is dropped unseen.
func duckSource(in, table string, fields []string) (string, error) {
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
	key := fields[0]
	// The struct json_transform reads each line into: every field as text
	// (a string's contents, a number's digits, other values their JSON).
	types := []string{sqlQuoteJSON(key) + `: "VARCHAR"`}
	cols := []string{}
	for _, f := range fields[1:] {
		types = append(types, sqlQuoteJSON(f)+`: "VARCHAR"`)
		cols = append(cols, fmt.Sprintf(`r[%s] AS "%s"`, sqlString(f), f))
	}
	read := fmt.Sprintf(`read_csv([%s], columns = {'line': 'VARCHAR', 'rest': 'VARCHAR'}, header = false, auto_detect = false,
		delim = chr(1), quote = '', escape = '', nullstr = chr(2), strict_mode = false, null_padding = true,
		hive_partitioning = false, store_rejects = true, rejects_table = '%s_csv_rejects', rejects_scan = '%s_csv_scans')`,
		strings.Join(globs, ", "), table, table)
	// Each step is its own SELECT (DuckDB copies an expression where a
	// lateral alias names it), and the common line, that starts with "{",
	// takes no copy of its text (trim would make one).
	//
	// A blank line is not a record; a line that is only \x02 (nullstr) reads
	// as null and is rejected below.
	lines := `SELECT line, rest FROM ` + read + ` WHERE rest IS NOT NULL OR line IS NULL OR starts_with(line, '{')
		OR trim(line, ' ' || chr(9) || chr(11) || chr(12) || chr(13)) <> ''`
	parsed := fmt.Sprintf(`SELECT line, rest, CASE WHEN rest IS NULL AND line IS NOT NULL THEN try(json_transform(line, '{%s}')) END AS r FROM (%s)`,
		strings.Join(types, ", "), lines)
	// The key: a plain integer literal (the common case) cast once, anything
	// else by key_int.
	keyed := fmt.Sprintf(`SELECT line, rest, r, k, CASE WHEN kb::VARCHAR = k THEN kb ELSE key_int(k) END AS ikey
		FROM (SELECT line, rest, r, k, TRY_CAST(k AS BIGINT) AS kb FROM (SELECT line, rest, r, r[%s] AS k FROM (%s)))`, sqlString(key), parsed)
	// A valid JSON document is an object when it starts with "{"; json
	// null transforms to a null struct like invalid JSON does.
	reject := fmt.Sprintf(`CASE
		WHEN r IS NULL AND trim(line, ' ' || chr(9) || chr(13)) = 'null' THEN '%s'
		WHEN r IS NULL THEN '%s'
		WHEN NOT (starts_with(line, '{') OR starts_with(ltrim(line, ' ' || chr(9) || chr(13)), '{')) THEN '%s'
		WHEN k IS NULL THEN CASE WHEN json_exists(line, '$.%s') THEN '%s' ELSE '%s' END
		WHEN ikey IS NULL THEN '%s' END`,
		transforms.ReasonNotObject, transforms.ReasonInvalidJSON, transforms.ReasonNotObject, key, transforms.ReasonNullKey, transforms.ReasonMissingKey,
		transforms.ReasonKeyNotInteger)
	classified := fmt.Sprintf(`SELECT %s AS reject, line, rest, r, ikey FROM (%s)`, reject, keyed)
	return fmt.Sprintf(`(SELECT reject,
		CASE WHEN reject IS NOT NULL THEN coalesce(line, chr(2)) || coalesce(chr(1) || rest, '') END AS payload,
		CASE WHEN reject IS NULL THEN ikey END AS rkey,
		%s FROM (%s))`, strings.Join(cols, ", "), classified), nil
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// sqlQuoteJSON is a field name as a JSON string inside a SQL string literal.
func sqlQuoteJSON(s string) string { return strings.ReplaceAll(strconv.Quote(s), "'", "''") }

// duckCleanSQL are the SELECTs that clean each table: reject and payload
// (non-null for a rejected line, whose other columns are null), then the
// contract's columns in its order.
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
		transforms.TablePin: `SELECT reject, payload,
			rkey AS ind,
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
			FROM ` + pin,
		transforms.TableGeo: `SELECT reject, payload, ind, country, CASE WHEN isfinite(lat) AND isfinite(lon) THEN [lat, lon] END AS coordinates, "timestamp"
			FROM (SELECT reject, payload,
			rkey AS ind,
			nullif(country, '') AS country,
			TRY_CAST(latitude AS DOUBLE) AS lat,
			TRY_CAST(longitude AS DOUBLE) AS lon,
			to_ts("timestamp") AS "timestamp"
			FROM ` + geo + `)`,
		transforms.TableUser: `SELECT reject, payload,
			rkey AS ind,
			nullif(concat_ws(' ', nullif(trim(first_name), ''), nullif(trim(last_name), '')), '') AS user_name,
			to_int(age) AS age,
			to_ts(date_joined) AS date_joined
			FROM ` + user,
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

// duckCleanTables materialises each table's lines as <table>_clean (the
// rejected ones included, with reject and payload set) and counts them: read
// (every non-blank line), clean, and rejected by reason, the lines the CSV
// reader could not read counted as invalid JSON.
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
		c := tableCounts{Rows: unknown, RejectedBy: map[string]int64{}}
		rows, err := conn.QueryContext(ctx, `SELECT reject, count(*) FROM `+t+`_clean GROUP BY reject
			UNION ALL SELECT '`+transforms.ReasonInvalidJSON+`', count(*) FROM `+duckCSVRejects(t))
		if err != nil {
			return nil, fmt.Errorf("counting %s: %w", t, err)
		}
		for rows.Next() {
			var reason sql.NullString
			var n int64
			if err := rows.Scan(&reason, &n); err != nil {
				rows.Close()
				return nil, err
			}
			c.Read += n
			switch {
			case !reason.Valid:
				c.Clean += n
			case n > 0:
				c.Rejected += n
				c.RejectedBy[reason.String] += n
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		counts[t] = c
	}
	return counts, nil
}

// duckCSVRejects is a subquery of the lines of a table that read_csv could
// not read, one row each, with the line as payload.
func duckCSVRejects(table string) string {
	return `(SELECT DISTINCT ON (scan_id, file_id, line) csv_line AS payload FROM ` + table + `_csv_rejects)`
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

// duckDedupSQL keeps one row per ind of a clean table. The rule: the row
// that is smallest compared column by column in the contract's column order
// (DuckDB's order of the row as a STRUCT; null after any value). It depends
// only on the rows, so the result is deterministic. The Go and Beam engines
// keep the row with the smallest binary encoding (transforms' dedup), a rule
// SQL cannot express; both pick the same row whenever the copies of an ind
// are identical, and the generator re-sends a post as identical records, so
// the tables and insights agree. They could differ only for records of one
// ind that differ.
func duckDedupSQL(table string) string {
	return `SELECT unnest(min(t)) FROM (SELECT * EXCLUDE (reject, payload) FROM ` + table + `_clean WHERE reject IS NULL) t GROUP BY t.ind`
}

// duckFull is the whole job: clean, write the dead letters, deduplicate (one
// row per ind), write the tables, and write the eight insights as JSON
// arrays.
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
	// The dead letters as the batch job writes them: table, reason, payload.
	var dead []string
	for _, t := range transforms.Tables {
		dead = append(dead, fmt.Sprintf(`SELECT '%s' AS "table", reject AS reason, payload FROM %s_clean WHERE reject IS NOT NULL`, t, t),
			fmt.Sprintf(`SELECT '%s', '%s', payload FROM %s`, t, transforms.ReasonInvalidJSON, duckCSVRejects(t)))
	}
	deadDir := filepath.Join(out, "deadletter")
	if err := os.MkdirAll(deadDir, 0o755); err != nil {
		return childResult{}, err
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`COPY (%s) TO %s (FORMAT json)`, strings.Join(dead, " UNION ALL "),
		sqlString(filepath.Join(deadDir, "deadletter.jsonl")))); err != nil {
		return childResult{}, fmt.Errorf("writing the dead letters: %w", err)
	}
	tm.done("dead letters")
	for _, t := range transforms.Tables {
		if _, err := conn.ExecContext(ctx, `CREATE TABLE "`+t+`" AS `+duckDedupSQL(t)); err != nil {
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
