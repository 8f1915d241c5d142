package main

// helpGroup is a titled group of a command's own flags in its help.
type helpGroup struct {
	title string
	flags []string
}

// helpGroups order a command's own flags in its help, most used first; a
// flag in no group is shown last, under "other". A command without groups
// shows its flags under "flags".
var helpGroups = map[string][]helpGroup{
	"batch": {
		{"input and output", []string{"input", "topic-prefix", "output", "table-format", "incremental"}},
		{"quality and loading", []string{"max-reject-rate", "warehouse"}},
		{"Iceberg tables (--table-format=iceberg)", []string{"iceberg-warehouse", "catalog", "catalog-uri"}},
		{"tuning", []string{"shards", "progress-interval"}},
	},
	"schedule": {
		{"when", []string{"every", "now"}},
		{"input and output", []string{"input", "topic-prefix", "output", "table-format", "warehouse", "shards"}},
		{"Iceberg tables (--table-format=iceberg)", []string{"iceberg-warehouse", "catalog", "catalog-uri"}},
	},
	"stream": {
		{"source", []string{"source", "kafka-brokers", "topic-prefix", "start", "until-latest", "group", "job-name", "checkpoint-dsn"}},
		{"outputs", []string{"sink", "files", "window", "allowed-lateness"}},
		{"monitoring and restarts", []string{"metrics-listen", "restart-attempts", "restart-delay"}},
		{"Iceberg tables (--table-format=iceberg)", []string{"table-format", "iceberg-warehouse", "catalog", "catalog-uri"}},
	},
	"gateway": {
		{"serving", []string{"listen", "kafka-brokers", "kinesis", "topic-prefix", "auto-create-topics", "stream-admin", "tls-cert", "tls-key"}},
		{"clients", []string{"api-key-env", "api-keys-file", "rate-limit", "rate-burst"}},
		{"limits and timeouts", []string{"max-in-flight", "max-body-bytes-in-flight", "max-conns", "max-body-bytes", "max-records", "max-record-bytes",
			"max-json-depth", "max-number-chars", "backend-timeout", "kafka-unavailable-after", "read-header-timeout", "read-timeout", "write-timeout", "idle-timeout"}},
	},
	"emulate": {
		{"what to send", []string{"source", "posts", "count", "all", "seed"}},
		{"where to", []string{"gateway", "target", "topic-prefix", "api-key-env"}},
		{"pace and failures", []string{"rate", "pace", "concurrency", "max-attempts", "give-up-after", "request-timeout", "metrics-listen"}},
	},
	"s3sink": {
		{"from and to", []string{"kafka-brokers", "topics", "s3", "group", "instance-id"}},
		{"objects", []string{"flush-size", "rotate-interval", "compress", "metrics-listen"}},
	},
	"up": {
		{"system", []string{"dir", "topic-prefix", "kinesis", "postgres"}},
		{"addresses", []string{"kafka-listen", "s3-listen", "gateway-listen"}},
		{"S3 sink", []string{"flush-size", "rotate-interval"}},
	},
}

// helpExamples are two or three typical invocations of each command, shown
// in its help (TestHelp parses each with the command's flags).
var helpExamples = map[string][]string{
	"batch": {
		"pinpipe batch --input=out/raw --output=out/clean",
		"pinpipe batch --input=s3://lake/raw --output=s3://lake/clean --incremental --max-reject-rate=0.01",
		"pinpipe batch --input=out/raw --output=out/clean --warehouse=postgres://me@127.0.0.1:5432/warehouse",
	},
	"schedule": {
		"pinpipe schedule --every=24h --input=s3://lake/raw --output=s3://lake/clean",
		"pinpipe schedule --every=1h --now=false --input=out/raw --output=out/clean --table-format=jsonl",
		"pinpipe schedule --input=s3://lake/raw --output=s3://lake/clean --table-format=iceberg --iceberg-warehouse=s3://lake/warehouse --catalog=postgres --catalog-uri=postgres://me@127.0.0.1:5432/catalog",
	},
	"tables list": {
		"pinpipe tables list --output=out/clean",
		"pinpipe tables list --iceberg-warehouse=s3://lake/warehouse --catalog=postgres --catalog-uri=postgres://me@127.0.0.1:5432/catalog",
	},
	"tables history": {
		"pinpipe tables history --output=out/clean --table=pin",
		"pinpipe tables history --output=out/clean --table=top_category_by_country",
	},
	"tables expire-snapshots": {
		"pinpipe tables expire-snapshots --output=out/clean",
		"pinpipe tables expire-snapshots --output=out/clean --older-than=24h --retain-last=3",
	},
	"tables rewrite-files": {
		"pinpipe tables rewrite-files --stream --iceberg-warehouse=out/stream/iceberg --checkpoint-dsn=postgres://pinpipe@127.0.0.1:5432/pinpipe --dry-run",
		"pinpipe tables rewrite-files --stream --iceberg-warehouse=out/stream/iceberg --sink=postgres://pinpipe@127.0.0.1:5432/pinpipe --target-file-size=268435456",
	},
	"tables clean-orphans": {
		"pinpipe tables clean-orphans --output=out/clean --dry-run",
		"pinpipe tables clean-orphans --iceberg-warehouse=s3://lake/warehouse --catalog-uri=/var/lib/pinpipe/catalog.sqlite --older-than=24h",
	},
	"stream": {
		"pinpipe stream --kafka-brokers=127.0.0.1:9092 --sink=postgres://me@127.0.0.1:5432/warehouse --files=out/stream",
		"pinpipe stream --source=kinesis --start=earliest --files=out/stream",
		"pinpipe stream --until-latest --start=earliest --files=out/backfill",
	},
	"gateway": {
		"pinpipe gateway --kafka-brokers=127.0.0.1:9092",
		"pinpipe gateway --listen=0.0.0.0:8443 --tls-cert=cert.pem --tls-key=key.pem --api-keys-file=keys.txt --kafka-brokers=k1:9092,k2:9092",
	},
	"emulate": {
		"pinpipe emulate --count=5000 --rate=50",
		"pinpipe emulate --source=postgres://me@127.0.0.1:5432/source --all --concurrency=8",
		"pinpipe emulate --target=kinesis --seed=42 --count=100",
	},
	"s3sink": {
		"pinpipe s3sink --kafka-brokers=127.0.0.1:9092 --s3=s3://lake/raw",
		"pinpipe s3sink --s3=s3://lake/raw --flush-size=500 --rotate-interval=1m --compress",
	},
	"up": {
		"pinpipe up",
		"pinpipe up --kinesis --postgres=postgres://me@127.0.0.1:5432/warehouse",
	},
	"demo": {
		"pinpipe demo",
		"pinpipe demo --posts=20000 --sink=postgres://me@127.0.0.1:5432/warehouse",
	},
	"seed": {
		"pinpipe seed --dsn=postgres://me@127.0.0.1:5432/source --posts=11000",
		"pinpipe seed --dsn=postgres://me@127.0.0.1:5432/source --posts=1000 --first-ind=11000 --seed=2",
	},
	"generate": {
		"pinpipe generate --posts=100000 --seed=1 --out=out/raw",
		"pinpipe generate --posts=1000000 --out=s3://lake/raw --gzip --malformed-rate=0.01",
	},
	"dev kafka": {
		"pinpipe dev kafka --listen=127.0.0.1:9092 --data-dir=/tmp/kafka",
		"pinpipe dev kafka --partitions=6",
	},
	"dev s3": {
		"pinpipe dev s3 --listen=127.0.0.1:9000 --data-dir=/tmp/s3 --buckets=lake",
		"pinpipe dev s3 --buckets=lake,warehouse",
	},
}
