// Package transforms holds the one set of cleaning rules, schemas and
// insights that both pinpipe pipelines share, so that no rule lives anywhere
// else.
//
// The rules follow the project's data contract (see the README):
//
//   - Plain Go functions (CleanPinRecord, CleanGeoRecord, CleanUserRecord)
//     turn one raw JSON record into a clean row (Pin, Geo, User) or a
//     rejection (RejectError, and NewDeadLetter keeps its original bytes).
//   - SchemaOf describes each clean table once, for every output format.
//   - LineCleaner, DedupJoinSorted and PostFacts serve the batch pipeline's
//     sort-merge stages, which run them inside its own DoFns on encoded rows
//     (rows.go, codec.go), so that dedup and the join take bounded memory.
//   - Partials gathers a shard's insight counts; Finish turns them into
//     Insights. TableStats and Summary count what happened to each table.
//
// The Beam composites are thin: CleanPin, CleanGeo and CleanUser (Clean
// picks one by table name; the streaming pipeline and the benchmarks use
// them) apply the rules to a PCollection of raw records, and ComputeInsights
// and Summarize fold the shards' Partials and TableStats into one element
// each (the batch pipeline). Their Beam metrics are named in metrics.go.
package transforms
