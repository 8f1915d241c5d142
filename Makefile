# pinpipe: the two commands that matter are `make run` and `make test`.
GO        ?= go
BIN       := bin/pinpipe
DEMO      := out/demo
POSTS     ?= 5000
RUNNER    ?= prism

.PHONY: all build run test test-short chaos fuzz fuzz-short lint bench bench-bin bench-batch bench-incremental bench-gateway bench-streaming bench-iceberg clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/pinpipe

# The whole system in one process (pinpipe demo): Kafka, S3, the gateway and
# the S3 sink on loopback ports, the emulator posting through them while the
# streaming job runs on prism, then the batch job over what landed in S3;
# prints the summary and the report's path. Data in out/demo-system.
run: build
	$(BIN) demo --dir=out/demo-system --posts=3000

# Every test (after make lint), with the real services they talk to: a throwaway PostgreSQL,
# kinesalite, icebird (the Iceberg reader the tests check our tables with)
# and Chromium, installed from Debian's packages and npm when
# missing and running as root (scripts/test-deps.sh says what to install
# otherwise); then bench/'s own tests (a separate module, which ./... skips;
# seconds, on tiny generated inputs, no services); then every fuzz target
# for 10 s (fuzz-short).
test: lint
	scripts/test-deps.sh
	PINPIPE_KINESALITE_DIR=$(CURDIR)/.cache/kinesalite PINPIPE_ICEBIRD_DIR=$(CURDIR)/.cache/icebird \
		scripts/with-postgres.sh $(GO) test -count=1 -timeout=30m ./...
	cd bench && $(GO) test -mod=mod -count=1 -timeout=10m ./...
	$(MAKE) fuzz-short

test-short:
	$(GO) test -short ./...

# The outage tests (TestOutage*: PostgreSQL stopped, the Kafka broker
# restarted, S3 refusing writes, Kinesis throttling; see RELIABILITY.md,
# "Outages") with each fault lasting FAULT (20 s), then their table. make
# test runs the same tests with 3 s faults (internal/faultproxy's default).
FAULT ?= 20s
CHAOS_PKGS := ./ingest/s3sink/ ./ingest/gateway/ ./pipelines/streaming/
chaos:
	scripts/test-deps.sh
	@mkdir -p out; : > out/chaos.tsv; \
	PINPIPE_FAULT_DURATION=$(FAULT) PINPIPE_CHAOS_REPORT=$(CURDIR)/out/chaos.tsv \
		PINPIPE_KINESALITE_DIR=$(CURDIR)/.cache/kinesalite scripts/with-postgres.sh \
		$(GO) test -count=1 -timeout=20m -run '^TestOutage' $(CHAOS_PKGS); rc=$$?; \
	echo; echo "Outages, $$(date -u +%Y-%m-%d), each fault $(FAULT):"; \
	echo "| Fault | Duration | Sent | Landed | Lost | Doubled | Seconds to recover |"; \
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"; \
	sort out/chaos.tsv | awk -F'\t' '{ printf "| %s | %s | %d | %d | %d | %d | %s |\n", $$1, $$2, $$3, $$4, $$5, $$6, $$7 }'; \
	exit $$rc

# The fuzz targets of every parser that takes outside bytes (package:target):
# the batch job's record parsers, the gateway's produce and Kinesis proxy
# bodies, the whole gateway handler, the S3 sink's line form.
FUZZ_TARGETS := \
	./transforms/:FuzzObjectFields \
	./transforms/:FuzzCleanRecords \
	./transforms/:FuzzParseJSON \
	./ingest/gateway/:FuzzParseProduce \
	./ingest/gateway/:FuzzKinesisBodies \
	./ingest/gateway/:FuzzHandler \
	./internal/rawline/:FuzzRoundTrip
FUZZTIME ?= 5m

# Each fuzz target for FUZZTIME (5 minutes), one after the other; each one's
# output is in out/fuzz/<target>.log, and out/fuzz/summary.txt says how many
# executions each ran (the figures RELIABILITY.md quotes). A target fails when
# the fuzzer wrote a failing input (testdata/fuzz/<target>/). A bare "context
# deadline exceeded" at the -fuzztime boundary with no failing input is Go's
# fuzz coordinator race (go.dev/issue/75804, fixed in Go 1.27, not in 1.26),
# not a finding: it is reported as such in the summary and does not fail.
fuzz:
	@mkdir -p out/fuzz; : > out/fuzz/summary.txt; \
	for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; corpus=$$pkg/testdata/fuzz/$$name; \
		before=$$(ls $$corpus 2>/dev/null | wc -l); \
		echo "fuzz: $$name ($$pkg) for $(FUZZTIME)"; \
		PINPIPE_KINESALITE_DIR=$(CURDIR)/.cache/kinesalite $(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg \
			> out/fuzz/$$name.log 2>&1; rc=$$?; \
		after=$$(ls $$corpus 2>/dev/null | wc -l); \
		execs=$$(grep -o 'execs: [0-9]*' out/fuzz/$$name.log | tail -n 1 | cut -d' ' -f2); \
		result=PASS; \
		if [ $$rc -ne 0 ]; then \
			if [ "$$after" = "$$before" ] && grep -q 'context deadline exceeded' out/fuzz/$$name.log \
				&& ! grep -q 'Failing input written' out/fuzz/$$name.log; then \
				result="PASS (stopped by go.dev/issue/75804 at the deadline, no failing input)"; rc=0; \
			else result=FAIL; fi; \
		fi; \
		echo "$$name $$pkg $(FUZZTIME) execs=$${execs:-0} $$result" | tee -a out/fuzz/summary.txt; \
		[ $$rc -eq 0 ] || { tail -n 40 out/fuzz/$$name.log; exit 1; }; \
	done

# Every fuzz target for 10 s: make test runs it.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=10s

# staticcheck, pinned: `go run` fetches and builds this version through the
# module proxy (cached after the first time), so a clean clone needs nothing
# installed and go.mod does not carry the linter. Its checks are
# staticcheck.conf's.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

# gofmt, go vet and staticcheck; make test runs it first.
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Benchmarks (bench/, its own module), each writing its results file:
# the batch job against DuckDB and plain Go (RESULTS.md), the gateway and
# the S3 sink (GATEWAY.md), the streaming job's latency (STREAMING.md).
bench: bench-batch bench-incremental bench-gateway bench-streaming bench-iceberg

bench-bin:
	cd bench && $(GO) build -mod=mod -o work/bench . && $(GO) build -mod=mod -o work/gwserve ./cmd/gwserve

# The batch job against DuckDB and plain Go at three sizes, into
# bench/RESULTS.md and bench/RESULTS.svg. Needs about 20 GB free under
# bench/work: the inputs (0.7 + 2 + 6.6 GB, generated once and reused) and
# about as much again of the full jobs' outputs.
bench-batch: bench-bin
	cd bench && ./work/bench -posts=1000000,3000000,10000000

# Incremental runs over data growing day by day: peak RSS must stay flat
# while the tables grow (INCREMENTAL.md).
bench-incremental: bench-bin
	cd bench && ./work/bench incremental -days=6 -posts-per-day=200000 -out=INCREMENTAL.md

bench-gateway: bench-bin
	cd bench && ./work/bench gateway -repeat=3 -out=GATEWAY.md

bench-streaming: bench-bin
	cd bench && ./work/bench streaming

# What --table-format=iceberg costs over plain Parquet at 1M posts (target: at
# most 5% more wall time); bench/ICEBERG.md quotes the run's report.
bench-iceberg: bench-bin
	cd bench && ./work/bench -posts=1M -engines=beam-prism,beam-prism-iceberg -repeat=5 -results=work/RESULTS-iceberg-1M.md

clean:
	rm -rf bin out
