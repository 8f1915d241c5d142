// Package icebergtest reads Iceberg tables back in tests, with iceberg-go's
// own scan (to Arrow): one home for the scan loop the Iceberg tests of the
// batch job, the stream, the tables commands and io/icebergio share.
package icebergtest

import (
	"context"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
)

// Batches scans tbl (its current snapshot, unless opts pick another or
// filter rows) and calls each with every record batch, failing t on an
// error.
func Batches(t testing.TB, tbl *table.Table, each func(rec arrow.RecordBatch), opts ...table.ScanOption) {
	t.Helper()
	at, err := tbl.Scan(opts...).ToArrowTable(context.Background())
	if err != nil {
		t.Fatalf("scanning %v: %v", tbl.Identifier(), err)
	}
	defer at.Release()
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	for tr.Next() {
		each(tr.RecordBatch())
	}
}

// Column is the named column of rec, failing t when it has none.
func Column(t testing.TB, rec arrow.RecordBatch, name string) arrow.Array {
	t.Helper()
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		t.Fatalf("no column %q in %v", name, rec.Schema())
	}
	return rec.Column(idx[0])
}

// Inds are the ind column's values of the scan, sorted, duplicates kept.
func Inds(t testing.TB, tbl *table.Table, opts ...table.ScanOption) []int64 {
	t.Helper()
	var inds []int64
	Batches(t, tbl, func(rec arrow.RecordBatch) {
		inds = append(inds, Column(t, rec, "ind").(*array.Int64).Int64Values()...)
	}, opts...)
	slices.Sort(inds)
	return inds
}
