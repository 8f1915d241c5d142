package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/io/icebergio"
	"github.com/pinpipe/pinpipe/pipelines/batch"
	"github.com/pinpipe/pinpipe/transforms"
)

func init() {
	addCommand("batch", "run the bounded batch pipeline over S3-sink objects", batchCmd)
}

func batchCmd(fs *flag.FlagSet) func(context.Context) error {
	var o batch.Options
	fs.StringVar(&o.Input, "input", "", "directory or s3://bucket/prefix holding topics/<prefix>.<table>/partition=*/ (required)")
	fs.StringVar(&o.TopicPrefix, "topic-prefix", "pinpipe", "topic prefix: the topics are <prefix>.pin, <prefix>.geo, <prefix>.user")
	fs.StringVar(&o.Output, "output", "", "directory or s3://bucket/prefix for tables/, insights/, deadletter/ and summary.json (required)")
	formatFlags(fs, &o)
	fs.IntVar(&o.Shards, "shards", 0, "buckets of ind the tables are written in, one file per table and bucket (default: about one per 64 MiB of input, at least 16, on an output's first run; incremental runs keep the output's)")
	fs.BoolVar(&o.Incremental, "incremental", false, "process only input objects not yet in the output's commit (_commit.json), merging them into the existing clean tables")
	fs.StringVar(&o.Warehouse, "warehouse", "", "PostgreSQL DSN (postgres://user@host:5432/db) to load the clean tables into after the run, replacing what was there; "+
		"give the password in PGPASSWORD or ~/.pgpass, not here (default: no load)")
	fs.Func("max-reject-rate", "data-quality gate: the largest `fraction` of a table's records this run may reject (0.01, or per table: pin=0.01,user=0.05); "+
		"over it the run commits, dead letters and all, then fails (exit 1) naming the table, and the warehouse is not loaded (default: no gate)",
		func(v string) (err error) { o.MaxRejectRate, err = parseRejectRates(v); return err })
	fs.DurationVar(&o.ProgressInterval, "progress-interval", batch.DefaultProgressInterval, "how often a line says how far the run has read (objects, MiB, records/s); a last one when the pipeline ends")
	return func(ctx context.Context) error {
		if err := checkFormat(o.Format); err != nil {
			return err
		}
		if o.ProgressInterval <= 0 {
			return usageErrorf("--progress-interval must be positive, not %v", o.ProgressInterval)
		}
		o.Progress = noteProgress
		start := time.Now()
		sum, err := batch.Run(ctx, o)
		if err != nil {
			if sum != nil { // committed, then failed the data-quality gate
				printSummary(os.Stdout, sum)
			}
			return err
		}
		if sum == nil {
			fmt.Printf("dry run: the job was translated and not run; %s is unchanged\n", o.Output)
			return nil
		}
		if printRunSummary(o, sum) {
			return nil
		}
		if o.Format == batch.FormatIceberg {
			wh := o.Iceberg.Warehouse
			if wh == "" {
				wh = files.Join(o.Output, icebergio.WarehouseDir)
			}
			fmt.Printf("\nbatch finished in %s; Iceberg tables in namespace %s of %s (catalog %s); insights/, summary.json, report.html in %s\n",
				time.Since(start).Round(time.Millisecond), o.TopicPrefix, wh, o.Iceberg.Catalog, o.Output)
			return nil
		}
		fmt.Printf("\nbatch finished in %s; outputs in %s (tables/, insights/, deadletter/, summary.json, report.html)\n",
			time.Since(start).Round(time.Millisecond), o.Output)
		return nil
	}
}

// parseRejectRates parses --max-reject-rate: one fraction for every table,
// or table=fraction pairs separated by commas.
func parseRejectRates(v string) (map[string]float64, error) {
	rates := map[string]float64{}
	for _, part := range strings.Split(v, ",") {
		table, frac, named := strings.Cut(strings.TrimSpace(part), "=")
		if !named {
			table, frac = "", table
		} else if !slices.Contains(transforms.Tables, table) {
			return nil, fmt.Errorf("unknown table %q (the tables are %s)", table, strings.Join(transforms.Tables, ", "))
		}
		f, err := strconv.ParseFloat(frac, 64)
		if err != nil || f < 0 || f > 1 {
			return nil, fmt.Errorf("%q is not a fraction between 0 and 1", frac)
		}
		if !named {
			for _, t := range transforms.Tables {
				rates[t] = f
			}
			continue
		}
		rates[table] = f
	}
	return rates, nil
}

// checkFormat refuses a --table-format the batch job does not write.
func checkFormat(format string) error {
	if !slices.Contains(batch.Formats, format) {
		return usageErrorf("--table-format must be one of %s, not %q", strings.Join(batch.Formats, ", "), format)
	}
	return nil
}

// formatFlags are the flags that say how the batch job's tables are
// written (batch and schedule): --table-format, and where iceberg tables go.
func formatFlags(fs *flag.FlagSet, o *batch.Options) {
	fs.StringVar(&o.Format, "table-format", batch.FormatParquet, "format of the clean tables: parquet, jsonl, or iceberg (Parquet files published as Apache Iceberg tables, "+
		"with the insights and dead letters, in --iceberg-warehouse)")
	icebergFlags(fs, &o.Iceberg, "<output>/"+icebergio.WarehouseDir, "<warehouse>/<topic prefix>/<table>")
}

// icebergFlags are the Iceberg flags of batch, schedule and stream:
// where the tables live (defaultWarehouse and layout say how, per
// command) and which catalog registers them. Each command's help shows
// them under a heading that says they apply with --table-format=iceberg.
func icebergFlags(fs *flag.FlagSet, o *icebergio.Options, defaultWarehouse, layout string) {
	fs.StringVar(&o.Warehouse, "iceberg-warehouse", "", "directory or s3://bucket/prefix the tables live in, as "+layout+" (default: "+defaultWarehouse+")")
	fs.StringVar(&o.Catalog, "catalog", icebergio.DefaultCatalog, "the catalog registering the tables: "+strings.Join(icebergio.Catalogs, ", ")+
		" (sql: embedded SQLite; hadoop: local only; rest, glue: untested here)")
	fs.StringVar(&o.CatalogURI, "catalog-uri", "", "sql: the SQLite file (default <warehouse>/"+icebergio.SQLiteFile+"); "+
		"postgres: a DSN (password from PGPASSWORD or ~/.pgpass); rest: its URL")
}

// printRunSummary prints a finished run's summary, or for an incremental
// run that found no new input object (a quiet day is normal: exit 0) one
// line saying so, and reports which (batch and schedule).
func printRunSummary(o batch.Options, sum transforms.Summary) (nothingNew bool) {
	if o.Incremental && readNothing(sum) {
		fmt.Printf("nothing new: no input objects in %s since the last run; %s is unchanged\n", o.Input, o.Output)
		return true
	}
	printSummary(os.Stdout, sum)
	return false
}

// readNothing reports a run that read no record: an incremental run that
// found no new input object.
func readNothing(sum transforms.Summary) bool {
	for _, st := range sum {
		if st.Read > 0 {
			return false
		}
	}
	return true
}

func printSummary(w *os.File, sum transforms.Summary) {
	fmt.Fprintf(w, "%-6s %10s %10s %10s %11s %10s %12s\n", "table", "read", "clean", "rejected", "duplicates", "rows", "nulled")
	for _, t := range sum.TableNames() {
		st := sum[t]
		var nulled int64
		for _, n := range st.Unparsable {
			nulled += n
		}
		fmt.Fprintf(w, "%-6s %10d %10d %10d %11d %10d %12d\n", t, st.Read, st.Clean, st.Rejected, st.Duplicates, st.Rows, nulled)
	}
}

// noteProgress tells the user how far a batch run has read: a line of
// text, or an info log with --log-format=json.
func noteProgress(p batch.Progress) {
	rate := 0.0
	if secs := p.Elapsed.Seconds(); secs > 0 {
		rate = float64(p.Records) / secs
	}
	what := "reading"
	if p.Final {
		what = "read"
	}
	note("pinpipe batch: %s: %d of %d objects, %.1f MiB, %d records, %.0f records/s, in %s",
		what, p.Objects, p.ObjectsTotal, float64(p.Bytes)/(1<<20), p.Records, rate, p.Elapsed.Round(time.Millisecond))
}
