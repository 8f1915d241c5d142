package icebergio

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pinpipe/pinpipe/io/parquetio"
	"github.com/pinpipe/pinpipe/transforms"
)

// TestParquetFieldIDsAreIcebergs: every column (and list element) of a
// clean table's Parquet files carries the field id of the same column in
// its Iceberg schema, so readers resolve columns by id.
func TestParquetFieldIDsAreIcebergs(t *testing.T) {
	for _, s := range transforms.Schemas {
		sc := Schema(s)
		pq := parquetio.Schema(s)
		for i, c := range s.Columns {
			f, ok := sc.FindFieldByName(c.Name)
			if !ok {
				t.Fatalf("%s: no Iceberg field %s", s.Table, c.Name)
			}
			col := pq.Fields()[i]
			if col.Name() != c.Name || col.ID() != f.ID || f.Required == c.Nullable {
				t.Errorf("%s.%s: Parquet %s id %d, Iceberg id %d required %v", s.Table, c.Name, col.Name(), col.ID(), f.ID, f.Required)
			}
			if c.Type == transforms.Float64List {
				elem := col.Fields()[0].Fields()[0] // list > repeated group > element
				if id := s.ElementID(i); elem.ID() != id {
					t.Errorf("%s.%s: element id %d in Parquet, want %d", s.Table, c.Name, elem.ID(), id)
				}
				if _, ok := sc.FindFieldByID(s.ElementID(i)); !ok {
					t.Errorf("%s.%s: the Iceberg schema has no element id %d", s.Table, c.Name, s.ElementID(i))
				}
			}
		}
	}
}

// TestOptionsCheck: the defaults, and what cannot work is refused before a
// run starts.
func TestOptionsCheck(t *testing.T) {
	dir := t.TempDir()
	o := Options{Warehouse: dir, Namespace: "pinpipe"}
	if err := o.Check(); err != nil || o.Catalog != CatalogSQL || o.CatalogURI != filepath.Join(dir, SQLiteFile) {
		t.Errorf("defaults: %+v, %v", o, err)
	}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Warehouse: "s3://lake/wh", Namespace: "p"}, "--catalog-uri=/path/catalog.sqlite"},
		{Options{Warehouse: "s3://lake/wh", Namespace: "p", Catalog: CatalogHadoop}, "only on a local filesystem"},
		{Options{Warehouse: dir, Namespace: "p", Catalog: CatalogPostgres}, "needs --catalog-uri"},
		{Options{Warehouse: dir, Namespace: "p", Catalog: "hive"}, "--catalog must be one of"},
		{Options{Namespace: "p"}, "--iceberg-warehouse is required"},
	} {
		if err := c.o.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error saying %q", c.o, err, c.want)
		}
	}
}
