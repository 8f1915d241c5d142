package icebergio

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// Orphans are files under a table's location that no snapshot and no
// metadata names: what a run killed before it published left behind.
type Orphans struct {
	Table string
	Files []string
	Bytes int64
}

// eachTable calls fn with every table of the namespace that exists, in
// TableNames' order, through one catalog connection.
func eachTable(ctx context.Context, o Options, fn func(name string, tbl *table.Table) error) error {
	cat, err := Open(ctx, o)
	if err != nil {
		return err
	}
	defer Close(cat)
	for _, name := range TableNames() {
		tbl, err := cat.LoadTable(ctx, o.ident(name))
		if errors.Is(err, catalog.ErrNoSuchTable) {
			continue
		}
		if err != nil {
			return err
		}
		if err := fn(name, tbl); err != nil {
			return err
		}
	}
	return nil
}

// RemoveOrphans lists, and unless dryRun removes, the orphan files of every
// table older than olderThan. A file younger than that may belong to a run
// still writing; the batch job calls it with 0 only while it holds the
// output's lease, after publishing, when no other run writes.
func RemoveOrphans(ctx context.Context, o Options, olderThan time.Duration, dryRun bool) ([]Orphans, error) {
	var out []Orphans
	err := eachTable(ctx, o, func(name string, tbl *table.Table) error {
		res, err := tbl.DeleteOrphanFiles(ctx, table.WithFilesOlderThan(olderThan), table.WithDryRun(dryRun))
		if err != nil {
			return fmt.Errorf("iceberg: orphan files of %s: %w", name, err)
		}
		if len(res.OrphanFileLocations) > 0 {
			out = append(out, Orphans{Table: name, Files: slices.Sorted(slices.Values(res.OrphanFileLocations)), Bytes: res.TotalSizeBytes})
		}
		return nil
	})
	return out, err
}

// TableInfo describes one table for `pinpipe tables list`.
type TableInfo struct {
	Name      string
	Location  string
	Snapshots int
	// Current is the current snapshot's id, run and time; zero when the
	// table has none.
	Current SnapshotInfo
}

// SnapshotInfo is one snapshot of a table's history.
type SnapshotInfo struct {
	ID        int64
	ParentID  int64
	Time      time.Time
	Operation string
	RunID     string
	Records   string // total-records, as the summary has it
	Current   bool
}

func snapshotInfo(s *table.Snapshot, current int64) SnapshotInfo {
	si := SnapshotInfo{ID: s.SnapshotID, Time: time.UnixMilli(s.TimestampMs).UTC(), Current: s.SnapshotID == current}
	if s.ParentSnapshotID != nil {
		si.ParentID = *s.ParentSnapshotID
	}
	if s.Summary != nil {
		si.Operation = string(s.Summary.Operation)
		si.RunID = s.Summary.Properties[SummaryRunID]
		si.Records = s.Summary.Properties["total-records"]
	}
	return si
}

// List describes the namespace's tables that exist, in TableNames' order.
func List(ctx context.Context, o Options) ([]TableInfo, error) {
	var out []TableInfo
	err := eachTable(ctx, o, func(name string, tbl *table.Table) error {
		ti := TableInfo{Name: name, Location: tbl.Location(), Snapshots: len(tbl.Metadata().Snapshots())}
		if s := tbl.CurrentSnapshot(); s != nil {
			ti.Current = snapshotInfo(s, s.SnapshotID)
		}
		out = append(out, ti)
		return nil
	})
	return out, err
}

// History lists a table's snapshots, oldest first.
func History(ctx context.Context, o Options, name string) ([]SnapshotInfo, error) {
	cat, err := Open(ctx, o)
	if err != nil {
		return nil, err
	}
	defer Close(cat)
	tbl, err := cat.LoadTable(ctx, o.ident(name))
	if err != nil {
		return nil, fmt.Errorf("iceberg: table %s: %w", name, err)
	}
	var current int64
	if s := tbl.CurrentSnapshot(); s != nil {
		current = s.SnapshotID
	}
	var out []SnapshotInfo
	for _, s := range tbl.Metadata().Snapshots() {
		out = append(out, snapshotInfo(&s, current))
	}
	slices.SortFunc(out, func(a, b SnapshotInfo) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// ExpireSnapshots removes, in every table, the snapshots older than
// olderThan beyond the retainLast most recent, and the files only they
// named. It returns how many snapshots each table lost.
func ExpireSnapshots(ctx context.Context, o Options, olderThan time.Duration, retainLast int) (map[string]int, error) {
	out := map[string]int{}
	err := eachTable(ctx, o, func(name string, tbl *table.Table) error {
		before := len(tbl.Metadata().Snapshots())
		tx := tbl.NewTransaction()
		if err := tx.ExpireSnapshots(table.WithOlderThan(olderThan), table.WithRetainLast(retainLast)); err != nil {
			return fmt.Errorf("iceberg: expiring snapshots of %s: %w", name, err)
		}
		after, err := tx.Commit(ctx)
		if err != nil {
			return fmt.Errorf("iceberg: expiring snapshots of %s: %w", name, err)
		}
		out[name] = before - len(after.Metadata().Snapshots())
		return nil
	})
	return out, err
}
