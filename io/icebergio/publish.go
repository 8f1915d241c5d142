package icebergio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"golang.org/x/sync/errgroup"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/transforms"
)

// Snapshot summary properties each publish records.
const (
	// SummaryRunID is the id of the batch run whose output the snapshot is:
	// a reader picks one run's snapshots of all tables by it.
	SummaryRunID = "pinpipe.run-id"
	// SummaryCommittedAt is when that run committed (RFC 3339, UTC).
	SummaryCommittedAt = "pinpipe.committed-at"
)

// File is one bucket file of a clean table.
type File struct {
	Path   string
	Bucket int
}

// Run is what one batch run committed, to publish.
type Run struct {
	ID          string
	CommittedAt time.Time
	// Buckets is the number of buckets of the clean tables' layout.
	Buckets int
	// Tables are the clean tables' bucket files, by table.
	Tables   map[string][]File
	Insights transforms.Insights
	// DeadLetters are the JSON-lines files of dead letters
	// (transforms.DeadLetter) the output holds.
	DeadLetters []string
	// Published, when set, is called after each table this call moved to
	// the run's snapshot (the batch job's crash tests stop there).
	Published func(table string)
}

// Publish makes every table's current snapshot the run's: one transaction
// per table. A table already at the run's snapshot is left as it is, so
// publishing a run again (after a crash half way) finishes what is left.
func Publish(ctx context.Context, o Options, r Run) error {
	cat, err := Open(ctx, o)
	if err != nil {
		return err
	}
	defer Close(cat)
	props := iceberg.Properties{SummaryRunID: r.ID, SummaryCommittedAt: r.CommittedAt.UTC().Format(time.RFC3339)}
	// The tables commit independently (see the package doc), so they
	// publish at once: their footer reads and metadata writes overlap, and
	// the catalog serialises only the commits themselves.
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range transforms.Schemas {
		g.Go(func() error {
			done, err := publishClean(gctx, cat, o, s, r, props)
			if err != nil {
				return fmt.Errorf("iceberg: publishing %s: %w", s.Table, err)
			}
			if done {
				r.published(s.Table)
			}
			return nil
		})
	}
	for _, rt := range rowTables() {
		g.Go(func() error {
			rows, err := rowsJSON(gctx, rt, r)
			if err != nil {
				return fmt.Errorf("iceberg: publishing %s: %w", rt.name, err)
			}
			done, err := publishRows(gctx, cat, o, rt, rows, r.ID, props)
			if err != nil {
				return fmt.Errorf("iceberg: publishing %s: %w", rt.name, err)
			}
			if done {
				r.published(rt.name)
			}
			return nil
		})
	}
	return g.Wait()
}

func (r *Run) published(table string) {
	if r.Published != nil {
		r.Published(table)
	}
}

// loadOrCreate loads a table, creating it when the catalog has none.
func loadOrCreate(ctx context.Context, cat catalog.Catalog, o Options, name string, sc *iceberg.Schema, opts ...catalog.CreateTableOpt) (*table.Table, error) {
	tbl, err := cat.LoadTable(ctx, o.ident(name))
	if errors.Is(err, catalog.ErrNoSuchTable) {
		opts = append(opts, catalog.WithProperties(iceberg.Properties{table.PropertyFormatVersion: "2"}))
		if o.Catalog != CatalogHadoop { // whose tables live where it says
			opts = append(opts, catalog.WithLocation(o.TableLocation(name)))
		}
		tbl, err = cat.CreateTable(ctx, o.ident(name), sc, opts...)
		if errors.Is(err, catalog.ErrTableAlreadyExists) { // created meanwhile
			tbl, err = cat.LoadTable(ctx, o.ident(name))
		}
	}
	if err != nil {
		return nil, err
	}
	if !tbl.Schema().Equals(sc) {
		return nil, fmt.Errorf("the table %s has the schema\n%s\nnot pinpipe's\n%s\n(drop it, or use another namespace)", name, tbl.Schema(), sc)
	}
	return tbl, nil
}

// publishedBy is the run id in a table's current snapshot, "" for none.
func publishedBy(tbl *table.Table) string {
	if s := tbl.CurrentSnapshot(); s != nil && s.Summary != nil {
		return s.Summary.Properties[SummaryRunID]
	}
	return ""
}

// publishClean makes a clean table's current files the run's bucket files:
// the files of buckets the run did not rewrite stay, those it replaced go,
// in one snapshot.
func publishClean(ctx context.Context, cat catalog.Catalog, o Options, s transforms.Schema, r Run, props iceberg.Properties) (bool, error) {
	sc := Schema(s)
	spec := PartitionSpec(s, r.Buckets)
	tbl, err := loadOrCreate(ctx, cat, o, s.Table, sc, catalog.WithPartitionSpec(&spec), catalog.WithSortOrder(SortOrder(s)))
	if err != nil {
		return false, err
	}
	if publishedBy(tbl) == r.ID {
		return false, nil
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return false, err
	}
	current, err := currentFiles(ctx, tbl, fs)
	if err != nil {
		return false, err
	}
	want := map[string]bool{}
	var add []File
	for _, f := range r.Tables[s.Table] {
		want[f.Path] = true
		if _, ok := current[f.Path]; !ok {
			add = append(add, f)
		}
	}
	var remove []iceberg.DataFile
	for path, df := range current {
		if !want[path] {
			remove = append(remove, df)
		}
	}
	tx := tbl.NewTransaction()
	if err := useBuckets(tx, tbl, s, r.Buckets); err != nil {
		return false, err
	}
	// The spec the files are added under: the table's current one, which
	// useBuckets may just have changed.
	staged, err := tx.StagedTable()
	if err != nil {
		return false, err
	}
	added, err := dataFiles(ctx, fs, sc, staged.Spec(), add)
	if err != nil {
		return false, err
	}
	if err := tx.ReplaceDataFilesWithDataFiles(ctx, remove, added, props); err != nil {
		return false, err
	}
	if len(remove) == 0 && len(added) == 0 && current != nil {
		// Nothing to change (an empty table stays empty): record no snapshot.
		return false, nil
	}
	_, err = tx.Commit(ctx)
	return err == nil, err
}

// useBuckets changes the table's partition spec to bucket[buckets](ind)
// when a full run re-bucketed the output, in the run's transaction, so the
// files of the old and the new layout are each read with their own spec.
func useBuckets(tx *table.Transaction, tbl *table.Table, s transforms.Schema, buckets int) error {
	cur := tbl.Spec()
	for _, f := range cur.Fields() {
		if bt, ok := f.Transform.(iceberg.BucketTransform); ok && bt.NumBuckets == buckets {
			return nil
		}
	}
	u := tx.UpdateSpec(false)
	for _, f := range cur.Fields() {
		u = u.RemoveField(f.Name)
	}
	u = u.AddField("ind", iceberg.BucketTransform{NumBuckets: buckets}, PartitionField+"_"+strconv.Itoa(buckets))
	return u.Commit()
}

// currentFiles are the data files of a table's current snapshot, by path.
func currentFiles(ctx context.Context, tbl *table.Table, fs iceio.IO) (map[string]iceberg.DataFile, error) {
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		return nil, nil
	}
	manifests, err := snap.Manifests(fs)
	if err != nil {
		return nil, err
	}
	out := map[string]iceberg.DataFile{}
	for _, m := range manifests {
		if m.ManifestContent() != iceberg.ManifestContentData {
			continue
		}
		for e, err := range m.Entries(fs, true) {
			if err != nil {
				return nil, err
			}
			out[e.DataFile().FilePath()] = e.DataFile()
		}
	}
	return out, nil
}

// dataFiles describes bucket files for the manifest: the counts, sizes and
// bounds from each file's Parquet footer (only the footer is read), the
// partition from the bucket the batch job wrote it as, and the sort order.
func dataFiles(ctx context.Context, fs iceio.IO, sc *iceberg.Schema, spec iceberg.PartitionSpec, fs_ []File) ([]iceberg.DataFile, error) {
	out := make([]iceberg.DataFile, len(fs_))
	var partField int
	for _, f := range spec.Fields() {
		partField = f.FieldID
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, f := range fs_ {
		g.Go(func() error {
			// The footer's statistics, read as an unpartitioned file: the
			// bucket transform does not preserve order, so iceberg-go will
			// not infer a bucket from bounds; the batch job knows it.
			st, err := table.FileToDataFile(gctx, fs, f.Path, sc, *iceberg.UnpartitionedSpec, sortOrderID, nil)
			if err != nil {
				return fmt.Errorf("reading the footer of %s: %w", f.Path, err)
			}
			b, err := iceberg.NewDataFileBuilder(spec, iceberg.EntryContentData, f.Path, iceberg.ParquetFile,
				map[int]any{partField: int32(f.Bucket)}, nil, nil, st.Count(), st.FileSizeBytes())
			if err != nil {
				return err
			}
			b.ColumnSizes(st.ColumnSizes()).ValueCounts(st.ValueCounts()).NullValueCounts(st.NullValueCounts()).
				NaNValueCounts(st.NaNValueCounts()).LowerBoundValues(st.LowerBoundValues()).
				UpperBoundValues(st.UpperBoundValues()).SplitOffsets(st.SplitOffsets()).SortOrderID(sortOrderID)
			out[i] = b.Build()
			return nil
		})
	}
	return out, g.Wait()
}

// rowsJSON is a row table's rows of the run as JSON lines.
func rowsJSON(ctx context.Context, rt rowTable, r Run) ([]byte, error) {
	if rt.name == DeadLetterTable {
		var buf bytes.Buffer
		for _, name := range slices.Sorted(slices.Values(r.DeadLetters)) {
			b, err := files.ReadFile(ctx, name)
			if err != nil {
				return nil, err
			}
			buf.Write(b)
			if len(b) > 0 && b[len(b)-1] != '\n' {
				buf.WriteByte('\n')
			}
		}
		return buf.Bytes(), nil
	}
	for _, n := range r.Insights.Named() {
		if n.Name != rt.name {
			continue
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		rows := reflect.ValueOf(n.Rows)
		for i := range rows.Len() {
			if err := enc.Encode(rows.Index(i).Interface()); err != nil {
				return nil, err
			}
		}
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("no insight %s", rt.name)
}

// publishRows replaces a row table's content with rows (JSON lines of its
// struct), in one snapshot; iceberg-go writes the Parquet file.
func publishRows(ctx context.Context, cat catalog.Catalog, o Options, rt rowTable, rows []byte, runID string, props iceberg.Properties) (bool, error) {
	sc := RowSchema(rt.row)
	tbl, err := loadOrCreate(ctx, cat, o, rt.name, sc)
	if err != nil {
		return false, err
	}
	if publishedBy(tbl) == runID {
		return false, nil
	}
	as, err := table.SchemaToArrowSchema(sc, nil, true, false)
	if err != nil {
		return false, err
	}
	rdr := array.NewJSONReader(bytes.NewReader(rows), as, array.WithChunk(64<<10))
	defer rdr.Release()
	tx := tbl.NewTransaction()
	if err := tx.Overwrite(ctx, rdr, props); err != nil {
		return false, err
	}
	if err := rdr.Err(); err != nil {
		return false, fmt.Errorf("reading the rows: %w", err)
	}
	_, err = tx.Commit(ctx)
	return err == nil, err
}
