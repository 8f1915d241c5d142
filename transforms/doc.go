// Package transforms holds the one set of cleaning rules and Beam transforms
// that both pinpipe pipelines share.
//
// The rules follow the project's data contract (see the README): plain Go
// functions (CleanPinRecord, CleanGeoRecord, CleanUserRecord) turn one raw
// JSON record into a clean row or a rejection, and thin Beam composites
// (CleanPin, CleanGeo, CleanUser, DedupJoin, Insights) apply them to
// PCollections. The batch pipeline and the streaming pipeline import these
// composites; no cleaning rule lives anywhere else.
package transforms
