package icebergio

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/pinpipe/pinpipe/transforms"
)

// DeadLetterTable is the dead letters' table.
const DeadLetterTable = "deadletter"

// PartitionField is the clean tables' partition field: bucket[N](ind).
const PartitionField = "ind_bucket"

// partitionFieldID is its id (Iceberg numbers partition fields from 1000).
const partitionFieldID = 1000

// Schema is the Iceberg schema of a clean table, from its one description
// (transforms.Schema): the columns' names, types and nullability in the
// contract's order, with the field ids io/parquetio writes into the files.
func Schema(s transforms.Schema) *iceberg.Schema {
	fields := make([]iceberg.NestedField, len(s.Columns))
	for i, c := range s.Columns {
		var t iceberg.Type
		switch c.Type {
		case transforms.Int64:
			t = iceberg.PrimitiveTypes.Int64
		case transforms.Text:
			t = iceberg.PrimitiveTypes.String
		case transforms.Timestamp:
			// Parquet TIMESTAMP(MICROS, adjusted to UTC).
			t = iceberg.PrimitiveTypes.TimestampTz
		case transforms.Float64List:
			t = &iceberg.ListType{ElementID: s.ElementID(i), Element: iceberg.PrimitiveTypes.Float64, ElementRequired: true}
		default:
			panic(fmt.Sprintf("icebergio: column %s has no Iceberg type", c.Name))
		}
		fields[i] = iceberg.NestedField{ID: s.FieldID(i), Name: c.Name, Type: t, Required: !c.Nullable}
	}
	return iceberg.NewSchemaWithIdentifiers(0, []int{keyID(s)}, fields...)
}

// keyID is the id of a clean table's key column, ind.
func keyID(s transforms.Schema) int {
	for i, c := range s.Columns {
		if c.Name == "ind" {
			return s.FieldID(i)
		}
	}
	panic("icebergio: table " + s.Table + " has no ind column")
}

// PartitionSpec is a clean table's partitioning: bucket[buckets](ind), the
// batch job's sort-merge buckets.
func PartitionSpec(s transforms.Schema, buckets int) iceberg.PartitionSpec {
	return iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{keyID(s)}, FieldID: partitionFieldID,
		Name: PartitionField, Transform: iceberg.BucketTransform{NumBuckets: buckets}})
}

// sortOrderID is the id of the clean tables' sort order, ind ascending.
const sortOrderID = 1

// SortOrder is a clean table's sort order: ind ascending (every bucket file
// is sorted by it).
func SortOrder(s transforms.Schema) table.SortOrder {
	o, err := table.NewSortOrder(sortOrderID, []table.SortField{{SourceIDs: []int{keyID(s)},
		Transform: iceberg.IdentityTransform{}, Direction: table.SortASC, NullOrder: table.NullsFirst}})
	if err != nil {
		panic(err)
	}
	return o
}

// RowSchema is the Iceberg schema of a table of Go structs (an insight's
// rows, the dead letters): the struct's fields named by their json tags, in
// their order, with ids from 1; a field tagged omitempty is optional, the
// others required. The struct is the one definition of such a table.
func RowSchema(row reflect.Type) *iceberg.Schema {
	var fields []iceberg.NestedField
	for i := range row.NumField() {
		f := row.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		var t iceberg.Type
		switch f.Type.Kind() {
		case reflect.Int, reflect.Int64:
			t = iceberg.PrimitiveTypes.Int64
		case reflect.String:
			t = iceberg.PrimitiveTypes.String
		case reflect.Float64:
			t = iceberg.PrimitiveTypes.Float64
		default:
			panic(fmt.Sprintf("icebergio: %s.%s has no Iceberg type", row.Name(), f.Name))
		}
		fields = append(fields, iceberg.NestedField{ID: len(fields) + 1, Name: name, Type: t, Required: !strings.Contains(opts, "omitempty")})
	}
	return iceberg.NewSchema(0, fields...)
}

// rowTable is a table of Go structs that each run rewrites whole.
type rowTable struct {
	name string
	row  reflect.Type
}

// rowTables are the eight insights' tables, by their output names, and the
// dead letters'.
func rowTables() []rowTable {
	var in transforms.Insights
	var ts []rowTable
	for _, n := range in.Named() {
		ts = append(ts, rowTable{name: n.Name, row: reflect.TypeOf(n.Rows).Elem()})
	}
	return append(ts, rowTable{name: DeadLetterTable, row: reflect.TypeFor[transforms.DeadLetter]()})
}

// TableNames are every table the batch job publishes: the clean tables,
// the eight insights and the dead letters.
func TableNames() []string {
	names := append([]string{}, transforms.Tables...)
	for _, t := range rowTables() {
		names = append(names, t.name)
	}
	return names
}
