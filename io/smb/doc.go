// Package smb is the sort-merge-bucket layer of the batch job, after the
// technique Spotify's Scio ships for Beam (SortedBucketSink and
// SortedBucketSource) and that Hive and Spark call bucketed sort-merge joins.
//
// Rows are keyed by an int64 (the post's ind) and travel as opaque byte
// strings. A writer sorts what fits in memory and writes it as a run file
// (Run); a reader streams a run back (OpenRun); Merge joins any number of
// sorted streams into one, so a bucket of any size is merged with memory for
// the merge buffers only, never for the bucket. Bucket places a key with
// Apache Iceberg's bucket[N] transform, so the layout is one other engines
// recognise. Layout is the small metadata that names the hash, the bucket
// count and the sort key of a bucketed output.
//
// # Rows, not column batches, between clean and merge
//
// Rows in memory and in run files are row-major: each row one encoded byte
// string (transforms' row encoding: the key, then the columns of the
// table's schema), held back to back in byte chunks with a pointer-free
// index (Buffer). Apache Arrow record batches were the other candidate the
// design named; they were not taken, because every step between the clean
// and the table files moves whole rows: the clean step appends one row at a
// time to one of N buckets, the sort permutes rows, the k-way merge picks
// the next row from one of k runs, dedup keeps or drops a row, the join
// pairs rows of three tables. On columns each of those is a gather over
// every column of the row (a pin row has 11), and an Arrow IPC reader
// allocates buffers per batch and column, where RunReader allocates nothing
// per row. What the columnar form is for, columns written as columns,
// happens where it pays: io/parquetio writes each table file column by
// column from the merged rows, with no row structs or reflection, and
// engines read those files by column. Measured (pipelines/batch
// BenchmarkMergeBucket, a
// bucket of 61,819 posts): about 2,700 allocations per bucket, none per
// row; the garbage collector scans no row.
package smb
