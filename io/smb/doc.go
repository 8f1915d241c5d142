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
package smb
