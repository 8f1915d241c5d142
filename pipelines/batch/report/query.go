package report

import (
	"fmt"
	"net/url"
	"strings"
)

// Tables says where a run's tables are, so that the page can show how to
// query them with the engines people use on a lake: DuckDB on a laptop,
// Trino, and Athena on AWS.
type Tables struct {
	// Format is the run's table format: parquet, jsonl or iceberg.
	Format string
	// Dir holds the parquet or jsonl tables, one folder each
	// (<output>/tables).
	Dir string
	// Warehouse, Catalog, CatalogURI and Namespace say where the iceberg
	// tables are and which catalog registers them (io/icebergio.Options).
	Warehouse, Catalog, CatalogURI, Namespace string
	// Names are the tables, the clean ones first.
	Names []string
}

// Query is one engine's way in: what to set up, and a query.
type Query struct {
	Engine, Note, Code string
}

// queries are the page's examples for t; none when t is unknown.
func queries(t Tables) []Query {
	if len(t.Names) == 0 {
		return nil
	}
	first := t.Names[0]
	dir := strings.TrimRight(t.Dir, "/")
	switch t.Format {
	case "parquet":
		return []Query{
			{"DuckDB", "Each table is a folder of Parquet files, one per bucket of ind, sorted by ind.",
				fmt.Sprintf("SELECT * FROM read_parquet('%s/%s/*.parquet') LIMIT 10;", dir, first)},
			{"Trino, Athena", "Run with --table-format=iceberg to have the tables registered in a catalog these engines read, with their schema and history.", ""},
		}
	case "jsonl":
		return []Query{{"DuckDB", "Each table is a folder of JSON-lines files, one per bucket of ind.",
			fmt.Sprintf("SELECT * FROM read_json_auto('%s/%s/*.jsonl') LIMIT 10;", dir, first)}}
	case "iceberg":
	default:
		return nil
	}
	loc := strings.TrimRight(t.Warehouse, "/") + "/" + t.Namespace + "/" + first
	qs := []Query{{"DuckDB",
		"The iceberg extension reads a table from its folder; with the SQL catalog there is no version-hint.text, so let DuckDB take the newest metadata file.",
		fmt.Sprintf("INSTALL iceberg; LOAD iceberg;\nSET unsafe_enable_version_guessing = true;\nSELECT * FROM iceberg_scan('%s') LIMIT 10;", loc)}}
	trino := "connector.name=iceberg\n"
	switch t.Catalog {
	case "postgres", "sql":
		uri := t.CatalogURI
		if t.Catalog == "sql" {
			uri = "<a PostgreSQL database: run with --catalog=postgres, Trino's JDBC catalog does not read SQLite>"
		}
		if t.Catalog == "postgres" {
			uri = jdbcURL(uri)
		}
		trino += "iceberg.catalog.type=jdbc\niceberg.jdbc-catalog.driver-class=org.postgresql.Driver\n" +
			"iceberg.jdbc-catalog.connection-url=" + uri + "\n" +
			"iceberg.jdbc-catalog.connection-user=<user>\niceberg.jdbc-catalog.connection-password=<password>\n" +
			"iceberg.jdbc-catalog.catalog-name=pinpipe\n" +
			"iceberg.jdbc-catalog.default-warehouse-dir=" + t.Warehouse + "\n"
	case "rest":
		trino += "iceberg.catalog.type=rest\niceberg.rest-catalog.uri=" + t.CatalogURI + "\n"
	case "glue":
		trino += "iceberg.catalog.type=glue\n"
	case "hadoop":
		trino = ""
	}
	if trino != "" {
		qs = append(qs, Query{"Trino", "A catalog file etc/catalog/pinpipe.properties, then query the namespace's tables.",
			trino + fmt.Sprintf("-- then: SELECT * FROM pinpipe.%s.%s LIMIT 10;", t.Namespace, first)})
	}
	athena := fmt.Sprintf("SELECT * FROM \"%s\".\"%s\" LIMIT 10;", t.Namespace, first)
	note := "Athena reads Iceberg tables registered in AWS Glue: run with --catalog=glue and an s3:// warehouse."
	if t.Catalog == "glue" {
		note = "The tables are registered in AWS Glue: pick the AwsDataCatalog and query them by namespace."
	}
	return append(qs, Query{"Athena", note, athena})
}

// jdbcURL is a PostgreSQL URL's JDBC form, without its credentials (the
// page may be shared; Trino takes them as properties of their own).
func jdbcURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return "jdbc:postgresql://<host>:<port>/<database>"
	}
	return "jdbc:postgresql://" + u.Host + u.EscapedPath()
}
