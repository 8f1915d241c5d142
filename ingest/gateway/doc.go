// Package gateway is the HTTP front door of the ingestion path: a Confluent
// REST Proxy (v2) compatible API in front of Kafka and an AWS API Gateway
// "Kinesis proxy" compatible API (the shapes of AWS's tutorial "Create a
// REST API as a Kinesis proxy") in front of Kinesis, so that the original
// system's posting scripts and tools work unchanged against it.
//
// # Kafka: the REST Proxy v2
//
//	POST /topics/{topic}   {"records":[{"value":..,"key":..,"partition":..}]}
//	GET  /topics           ["name", ...]
//	GET  /topics/{topic}   {"name","configs","partitions":[{"partition","leader","replicas":[..]}]}
//
// The Content-Type picks the embedded format:
// application/vnd.kafka.json.v2+json stores each key and value as its JSON
// text (compacted, numbers as sent); application/vnd.kafka.binary.v2+json
// takes base64. Types that name no format (application/json,
// application/vnd.kafka.v2+json) mean binary, as in the REST Proxy; the
// Avro, Protobuf and JSON Schema formats need a Schema Registry and get a
// 415. Records without a partition are placed as the Java producer places
// them (murmur2 of the key; sticky without one).
//
// Errors use the REST Proxy's envelope {"error_code","message"} and codes:
// 40401 unknown topic (or a name outside Kafka's rules), 40402 unknown
// partition, 415 media type, 400 JSON that does not parse (100,000 levels
// of nesting among it) or has the wrong types, 422 a request that breaks a
// rule (no records or more than 10,000, a negative partition, bad base64,
// a record over the size limit, a json-format key or value that is not
// UTF-8, holds a lone surrogate escape, nests deeper than 128 levels or has
// a number over 1,000 characters: what Kafka would pass to consumers that
// choke on it; the message names the record), 413 a body over the limit,
// 50002 and 50003 (retriable) Kafka errors, 40101/40301 Kafka
// authentication and authorisation. When no broker has answered for a
// second (Config.KafkaUnavailableAfter), produce and metadata requests get
// a 503 with Retry-After and 50003 at once, instead of waiting out the
// backend timeout, until a broker answers again. A broker that hangs
// rather than refusing is noticed too: when records have waited that long
// with no result, the gateway pings the brokers, and if none answers
// within it either, they count as unavailable.
//
// The producer is idempotent, waits for all in-sync replicas (acks=all)
// and lingers up to half a millisecond (Config.KafkaLinger) so that the
// records of concurrent requests travel in one produce request; a request
// alone in the gateway does not wait.
//
// Where the gateway differs from a stock REST Proxy, it is on purpose:
//   - A 200 means every record was acknowledged by all in-sync replicas
//     (acks=all). If any record fails, the answer is a 500 carrying the
//     per-record results (offsets for the written ones, error codes for the
//     others) and the envelope's error_code, where the REST Proxy answers
//     200 with the errors inside. A record Kafka has not acknowledged
//     within the backend timeout counts as failed (50003) although it may
//     still be written: a client's retry can then duplicate it, which
//     at-least-once delivery allows and the pipelines' deduplication
//     absorbs.
//   - Topics are not created by produce requests: the producer asks for
//     topics with auto-creation off, so even brokers with
//     auto.create.topics.enable leave a mistyped topic unknown, and the
//     gateway answers 404 with error_code 40401 within about a second,
//     where a stock REST Proxy's producer lets such brokers create the
//     topic (or, on other brokers, waits for it, max.block.ms, 60 s by
//     default, and then reports a retriable Kafka error). Create the
//     topics before producing, or give Config.AutoCreateTopics
//     (--auto-create-topics) to leave creation to the brokers, as a stock
//     REST Proxy does. Records with
//     an explicit partition are checked against the topic first, so a bad
//     partition fails the request before any of its records is written.
//
// # Kinesis: API Gateway's Kinesis proxy
//
//	GET    /streams                {"HasMoreStreams":false,"StreamNames":[..]}
//	POST   /streams/{name}         optional {"ShardCount":n} (default 5) -> {}
//	GET    /streams/{name}         {"StreamDescription":{..}}, Kinesis's shape
//	DELETE /streams/{name}         {}
//	PUT    /streams/{name}/record  {"StreamName":..,"Data":..,"PartitionKey":..} -> {"SequenceNumber","ShardId"}
//	PUT    /streams/{name}/records {"records":[{"data":..,"partition-key":..}]} -> {"FailedRecordCount","Records":[..]}
//
// As the tutorial's mapping templates do, a single record holds the JSON text
// of Data (an object as that object, a string with its quotes), and a
// batch record holds a string data as its text (other JSON values as their
// JSON text). The stream is the path's. Kinesis's limits are checked before
// calling it: 1 MiB a record (data plus partition key), partition keys of 1
// to 256 characters, 500 records and 5 MiB a batch.
//
// Errors are Kinesis's own {"__type","message"}, passed on with a status
// that says who should act: 404 ResourceNotFoundException, 409
// ResourceInUseException, 429 throttling (retry), 400 other refusals
// (LimitExceededException too: mostly a quota), 502/504 when Kinesis cannot
// be reached or refuses the gateway's credentials. The gateway's own
// checks answer in the same shape (SerializationException for a body
// that does not parse, ValidationException for a broken rule).
//
// A Kinesis route's body must be JSON (application/json, assumed when the
// Content-Type is absent, or application/x-amz-json-1.x): anything else
// gets API Gateway's 415 {"message":"Unsupported Media Type"}. Data and
// partition keys are held to the same UTF-8 and JSON limits as the REST
// Proxy's records, and stream names to Kinesis's rules (less . and ..).
// Config.NoStreamAdmin (--stream-admin=false) turns stream creation and
// deletion off (403 AccessDeniedException) for a gateway whose clients
// should only put records.
//
// # Both
//
// API keys (x-api-key), when configured, are checked in constant time
// against every accepted key, several at once so that they can be rotated
// (Config.APIKeys, a keys file that Reload reads again); no key is ever
// logged. A request without a valid key gets API Gateway's 403
// {"message":"Forbidden"} on the Kinesis routes, and the REST Proxy's
// envelope on its own: 401 without a key, 403 with a wrong one. /healthz
// and /metrics (Prometheus exposition format, from client_golang) need none.
//
// Overload is answered, not queued: past MaxInFlight requests being served
// (a request counts once its body is read), past MaxBodyBytesInFlight
// bytes of bodies, or past a key's rate limit (Config.RateLimit, like a
// usage plan's throttle), a request gets a 429 with Retry-After at once:
// {"error_code":429,..} on the REST Proxy's routes, ThrottlingException on
// the Kinesis ones. Past MaxConns connections a new one takes an idle
// keep-alive connection's place, or gets a 503 if none is idle.
//
// Request bodies are bounded (10 MiB by default, API Gateway's limit),
// connections have read-header, read, write and idle timeouts (slow
// senders are cut off; idle connections closed), headers over 64 KiB get
// net/http's 431, and a shutdown lets the requests in flight finish. With
// a certificate and key (Config.TLSCertFile, TLSKeyFile) the gateway
// serves HTTPS itself, and Reload (the command calls it on SIGHUP) picks up
// a renewed certificate. A malformed request gets a 4xx that says what is
// wrong; a panic below a handler is caught, logged and answered with a 500
// as a last resort. RELIABILITY.md at the repository's root lists the
// attacks tried and the answers.
package gateway
