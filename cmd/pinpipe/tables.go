package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/io/icebergio"
	"github.com/pinpipe/pinpipe/pipelines/streaming"
)

func init() {
	addCommand("tables list", "list the Iceberg tables a batch run with --table-format=iceberg published, with their current snapshot", tablesListCmd)
	addCommand("tables history", "list an Iceberg table's snapshots, with the batch run each holds", tablesHistoryCmd)
	addCommand("tables expire-snapshots", "remove old snapshots of the Iceberg tables, and the files only they named", tablesExpireCmd)
	addCommand("tables rewrite-files", "merge the small files the streaming job leaves in its Iceberg tables (only spans its positions have settled), one replace snapshot per table", tablesRewriteCmd)
	addCommand("tables clean-orphans", "list or remove files under the Iceberg tables' locations that no snapshot names (left by killed runs)", tablesCleanOrphansCmd)
}

// tableFlags are the flags naming the warehouse and catalog of the tables:
// the batch job's, so the same values find them.
func tableFlags(fs *flag.FlagSet) func() (icebergio.Options, error) {
	var o icebergio.Options
	output := fs.String("output", "", "the batch output (or the stream's --files) whose warehouse to use (<output>/"+icebergio.WarehouseDir+") when --iceberg-warehouse is not given")
	fs.StringVar(&o.Namespace, "topic-prefix", "pinpipe", "the job's topic prefix, the tables' namespace")
	stream := fs.Bool("stream", false, "the streaming job's tables (namespace <topic-prefix>_stream, pinpipe stream --table-format=iceberg) rather than the batch job's")
	fs.StringVar(&o.Warehouse, "iceberg-warehouse", "", "directory or s3://bucket/prefix of the tables, as given to pinpipe batch")
	fs.StringVar(&o.Catalog, "catalog", icebergio.DefaultCatalog, "the catalog: "+strings.Join(icebergio.Catalogs, ", ")+", as given to pinpipe batch")
	fs.StringVar(&o.CatalogURI, "catalog-uri", "", "the catalog's URI, as given to pinpipe batch")
	return func() (icebergio.Options, error) {
		if o.Warehouse == "" {
			if *output == "" {
				return o, usageErrorf("--iceberg-warehouse or --output is required")
			}
			o.Warehouse = files.Join(*output, icebergio.WarehouseDir)
		}
		if *stream {
			o.Namespace = icebergio.StreamNamespace(o.Namespace)
		}
		if err := o.Check(); err != nil {
			return o, usageErrorf("%v", err)
		}
		return o, nil
	}
}

func tablesListCmd(fs *flag.FlagSet) func(context.Context) error {
	opts := tableFlags(fs)
	return func(ctx context.Context) error {
		o, err := opts()
		if err != nil {
			return err
		}
		tables, err := icebergio.List(ctx, o)
		if err != nil {
			return err
		}
		if len(tables) == 0 {
			fmt.Printf("no tables in namespace %s of %s\n", o.Namespace, o.Warehouse)
			return nil
		}
		fmt.Printf("%-50s %9s %10s  %-26s %-20s %s\n", "table", "snapshots", "records", "run", "committed", "location")
		for _, t := range tables {
			fmt.Printf("%-50s %9d %10s  %-26s %-20s %s\n", o.Namespace+"."+t.Name, t.Snapshots, t.Current.Records, t.Current.RunID,
				t.Current.Time.Format(time.RFC3339), t.Location)
		}
		return nil
	}
}

func tablesHistoryCmd(fs *flag.FlagSet) func(context.Context) error {
	opts := tableFlags(fs)
	name := fs.String("table", "", "the table (pin, geo, user, deadletter, or an insight's name) (required)")
	return func(ctx context.Context) error {
		o, err := opts()
		if err != nil {
			return err
		}
		if *name == "" {
			return usageErrorf("--table is required (one of %s)", strings.Join(icebergio.TableNames(), ", "))
		}
		hist, err := icebergio.History(ctx, o, *name)
		if err != nil {
			return err
		}
		fmt.Printf("%-20s %-20s %-20s %-10s %10s  %s\n", "snapshot", "parent", "committed", "operation", "records", "run")
		for _, s := range hist {
			mark := ""
			if s.Current {
				mark = "  (current)"
			}
			fmt.Printf("%-20d %-20d %-20s %-10s %10s  %s%s\n", s.ID, s.ParentID, s.Time.Format(time.RFC3339), s.Operation, s.Records, s.RunID, mark)
		}
		return nil
	}
}

func tablesExpireCmd(fs *flag.FlagSet) func(context.Context) error {
	opts := tableFlags(fs)
	// Iceberg's own defaults (history.expire.max-snapshot-age-ms, 5 days;
	// history.expire.min-snapshots-to-keep, 1).
	olderThan := fs.Duration("older-than", 5*24*time.Hour, "expire snapshots older than this")
	retain := fs.Int("retain-last", 1, "keep at least this many of each table's latest snapshots, however old")
	return func(ctx context.Context) error {
		o, err := opts()
		if err != nil {
			return err
		}
		if *olderThan < 0 || *retain < 1 {
			return usageErrorf("--older-than must not be negative and --retain-last must be at least 1")
		}
		n, err := icebergio.ExpireSnapshots(ctx, o, *olderThan, *retain)
		if err != nil {
			return err
		}
		for _, t := range icebergio.TableNames() {
			if k, ok := n[t]; ok {
				fmt.Printf("%-50s %d snapshots expired\n", o.Namespace+"."+t, k)
			}
		}
		return nil
	}
}

func tablesCleanOrphansCmd(fs *flag.FlagSet) func(context.Context) error {
	opts := tableFlags(fs)
	// A younger file may be one a running batch job has written and not
	// yet published; 3 days is Iceberg's own default (remove_orphan_files).
	olderThan := fs.Duration("older-than", 72*time.Hour, "only files older than this (a younger one may belong to a run still writing; the next batch run removes its output's orphans itself)")
	dryRun := fs.Bool("dry-run", false, "list the orphan files, remove nothing")
	return func(ctx context.Context) error {
		o, err := opts()
		if err != nil {
			return err
		}
		if *olderThan < 0 {
			return usageErrorf("--older-than must not be negative")
		}
		orphans, err := icebergio.RemoveOrphans(ctx, o, *olderThan, *dryRun)
		if err != nil {
			return err
		}
		verb := "removed"
		if *dryRun {
			verb = "orphan (not removed: --dry-run)"
		}
		var n int
		for _, t := range orphans {
			for _, f := range t.Files {
				fmt.Fprintf(os.Stdout, "%s %s\n", verb, f)
				n++
			}
		}
		fmt.Printf("%d orphan files in namespace %s of %s\n", n, o.Namespace, o.Warehouse)
		return nil
	}
}

// tablesRewriteCmd merges the settled small files of the streaming job's
// tables (see icebergio's Compaction): which spans are settled comes from
// the job's position store, named as pinpipe stream names it.
func tablesRewriteCmd(fs *flag.FlagSet) func(context.Context) error {
	opts := tableFlags(fs)
	var ro icebergio.RewriteOptions
	fs.Int64Var(&ro.TargetFileSize, "target-file-size", icebergio.DefaultTargetFileSize, "merge files up to about this many bytes")
	fs.BoolVar(&ro.DryRun, "dry-run", false, "list what would be merged, write and commit nothing")
	source := fs.String("source", "kafka", "the streaming job's source, kafka or kinesis, as given to pinpipe stream (its position store)")
	checkpointDSN := fs.String("checkpoint-dsn", "", "PostgreSQL DSN of the streaming job's checkpoint tables, as given to pinpipe stream; default: --sink")
	sink := fs.String("sink", "", "the streaming job's --sink, the default of --checkpoint-dsn")
	return func(ctx context.Context) error {
		o, err := opts()
		if err != nil {
			return err
		}
		if ro.TargetFileSize <= 0 {
			return usageErrorf("--target-file-size must be positive")
		}
		var store streaming.PositionStore
		switch *source {
		case "kafka":
			store = streaming.KafkaPositions
		case "kinesis":
			store = streaming.KinesisPositions
		default:
			return usageErrorf("--source must be kafka or kinesis, not %q", *source)
		}
		dsn := cmp.Or(*checkpointDSN, *sink)
		if dsn != "" {
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return fmt.Errorf("connecting to the position store: %w", err)
			}
			defer conn.Close(context.WithoutCancel(ctx))
			ro.Resume = func(ctx context.Context, job, stream, part string) (string, bool, error) {
				return store.Resume(ctx, conn, job, stream, part)
			}
		} else if strings.HasSuffix(o.Namespace, icebergio.StreamNamespace("")) {
			return usageErrorf("the streaming job's tables are compacted only where its positions are settled: give --checkpoint-dsn or --sink, as given to pinpipe stream")
		}
		rewrites, err := icebergio.RewriteFiles(ctx, o, ro)
		if err != nil {
			return err
		}
		verb := "merged"
		if ro.DryRun {
			verb = "would merge (--dry-run)"
		}
		for _, rw := range rewrites {
			name := o.Namespace + "." + rw.Table
			for _, m := range rw.Merged {
				into := m.Path
				if into == "" {
					into = "one file"
				}
				fmt.Printf("%s: %s %d files (%d records, %d bytes) into %s\n", name, verb, len(m.Inputs), m.Records, m.Bytes, into)
				for _, in := range m.Inputs {
					fmt.Printf("  %s\n", in)
				}
			}
			left := map[string]int{}
			for _, l := range rw.Left {
				left[l.Reason]++
			}
			for _, reason := range slices.Sorted(maps.Keys(left)) {
				fmt.Printf("%s: left %d files: %s\n", name, left[reason], reason)
			}
			if rw.SnapshotID != 0 {
				fmt.Printf("%s: committed snapshot %d\n", name, rw.SnapshotID)
			}
		}
		if len(rewrites) == 0 {
			fmt.Printf("no tables in namespace %s of %s\n", o.Namespace, o.Warehouse)
		}
		return nil
	}
}
