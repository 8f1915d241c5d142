package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pinpipe/pinpipe/transforms"
)

func TestQueries(t *testing.T) {
	names := []string{"pin", "geo", "user"}
	for _, tc := range []struct {
		name    string
		tables  Tables
		engines []string
		want    []string // in the code or notes, in any query
		not     []string
	}{
		{name: "unknown", tables: Tables{Format: "parquet"}},
		{name: "parquet", tables: Tables{Format: "parquet", Dir: "out/batch/tables/", Names: names},
			engines: []string{"DuckDB", "Trino, Athena"}, want: []string{"read_parquet('out/batch/tables/pin/*.parquet')"}},
		{name: "jsonl", tables: Tables{Format: "jsonl", Dir: "s3://b/out/tables", Names: names},
			engines: []string{"DuckDB"}, want: []string{"read_json_auto('s3://b/out/tables/pin/*.jsonl')"}},
		{name: "iceberg, SQLite", tables: Tables{Format: "iceberg", Warehouse: "out/batch/iceberg", Catalog: "sql", Namespace: "p", Names: names},
			engines: []string{"DuckDB", "Trino", "Athena"},
			want:    []string{"iceberg_scan('out/batch/iceberg/p/pin')", "--catalog=postgres", "SELECT * FROM pinpipe.p.pin", `"p"."pin"`, "--catalog=glue"}},
		{name: "iceberg, PostgreSQL", tables: Tables{Format: "iceberg", Warehouse: "s3://lake/wh", Catalog: "postgres",
			CatalogURI: "postgres://ann:secret@db.example:5432/lake?sslmode=require", Namespace: "p", Names: names},
			engines: []string{"DuckDB", "Trino", "Athena"},
			want:    []string{"connection-url=jdbc:postgresql://db.example:5432/lake\n", "catalog-name=pinpipe", "default-warehouse-dir=s3://lake/wh"},
			not:     []string{"secret", "ann"}},
		{name: "iceberg, Glue", tables: Tables{Format: "iceberg", Warehouse: "s3://lake/wh", Catalog: "glue", Namespace: "p", Names: names},
			engines: []string{"DuckDB", "Trino", "Athena"}, want: []string{"iceberg.catalog.type=glue", "registered in AWS Glue"}},
		{name: "iceberg, Hadoop", tables: Tables{Format: "iceberg", Warehouse: "wh", Catalog: "hadoop", Namespace: "p", Names: names},
			engines: []string{"DuckDB", "Athena"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			qs := queries(tc.tables)
			var engines []string
			var all strings.Builder
			for _, q := range qs {
				engines = append(engines, q.Engine)
				all.WriteString(q.Note + "\n" + q.Code + "\n")
			}
			if strings.Join(engines, ",") != strings.Join(tc.engines, ",") {
				t.Errorf("engines %q, want %q", engines, tc.engines)
			}
			for _, w := range tc.want {
				if !strings.Contains(all.String(), w) {
					t.Errorf("no %q in:\n%s", w, all.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(all.String(), n) {
					t.Errorf("%q shown in:\n%s", n, all.String())
				}
			}
		})
	}
}

// TestRenderQueries: the page shows the query section for a run whose
// tables are known, escaped, and none otherwise.
func TestRenderQueries(t *testing.T) {
	meta := Meta{Started: time.Now(), Tables: Tables{Format: "iceberg", Warehouse: "wh<&>", Catalog: "sql", Namespace: "p", Names: []string{"pin"}}}
	var buf bytes.Buffer
	if err := Render(&buf, transforms.Insights{}, transforms.Summary{}, meta); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, w := range []string{`<section id="query">`, `data-engine="DuckDB"`, "iceberg_scan(&#39;wh&lt;&amp;&gt;/p/pin&#39;)"} {
		if !strings.Contains(page, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
	buf.Reset()
	if err := Render(&buf, transforms.Insights{}, transforms.Summary{}, Meta{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), `id="query"`) {
		t.Error("a query section without tables")
	}
}
