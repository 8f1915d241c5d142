package transforms

import (
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestSchemasMatchRows holds the row structs to the schemas: the same
// columns, in the same order, under their JSON and Parquet names, nullable
// exactly where the struct field can be nil.
func TestSchemasMatchRows(t *testing.T) {
	for _, c := range []struct {
		s   Schema
		row any
	}{{PinSchema, Pin{}}, {GeoSchema, Geo{}}, {UserSchema, User{}}} {
		typ := reflect.TypeOf(c.row)
		if typ.NumField() != len(c.s.Columns) {
			t.Fatalf("%s: %d fields, %d columns", c.s.Table, typ.NumField(), len(c.s.Columns))
		}
		pq := parquet.SchemaOf(c.row).Fields()
		for i, col := range c.s.Columns {
			f := typ.Field(i)
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != col.Name {
				t.Errorf("%s column %d: JSON name %q, schema %q", c.s.Table, i, name, col.Name)
			}
			if pq[i].Name() != col.Name || pq[i].Optional() != col.Nullable {
				t.Errorf("%s column %d: Parquet %q optional=%v, schema %q nullable=%v", c.s.Table, i, pq[i].Name(), pq[i].Optional(), col.Name, col.Nullable)
			}
			nilable := f.Type.Kind() == reflect.Pointer || f.Type.Kind() == reflect.Slice
			if nilable != col.Nullable {
				t.Errorf("%s column %s: field nilable=%v, schema nullable=%v", c.s.Table, col.Name, nilable, col.Nullable)
			}
		}
	}
	if SchemaOf(TableGeo).Key != "ind" || SchemaOf(TablePin).Key != PinFields[0] {
		t.Error("keys")
	}
}
