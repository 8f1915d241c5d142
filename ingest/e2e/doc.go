// Package e2e holds the end-to-end tests of the ingestion path, with the
// real parts (issue 3, item 6); it has no code of its own.
//
// TestKafkaToTables: pinpipe seed (a real PostgreSQL) → pinpipe emulate
// --target=kafka (emulator.Run with All: every post once, in a random order)
// → the gateway's REST Proxy API → Kafka (kfake, ingest/devserver/kafka) →
// the S3 sink → S3 (gofakes3, ingest/devserver/s3) → the batch pipeline on
// the direct runner, reading and writing S3 through Beam's S3 filesystem.
// The clean tables must equal the source rows, read back from PostgreSQL,
// serialised as the original scripts sent them and cleaned with
// transforms.Clean*Record: one row per post. The objects the sink landed
// must hold exactly those records.
//
// TestKinesisGetRecords: pinpipe emulate --target=kinesis (All again) → the
// gateway's Kinesis proxy API → kinesalite; every record must be readable
// with GetRecords, and the records must be exactly the payloads the
// gateway had accepted from the emulator.
//
// Every server runs in process on 127.0.0.1, but PostgreSQL
// (scripts/with-postgres.sh, PINPIPE_TEST_PG_DSN) and kinesalite
// (internal/testenv, PINPIPE_KINESALITE_DIR). Without them the tests are
// skipped, except under CI=true, where they fail:
//
//	PINPIPE_KINESALITE_DIR=$PWD/.cache/kinesalite scripts/with-postgres.sh go test ./ingest/e2e
package e2e
