# pinpipe: the two commands that matter are `make run` and `make test`.
GO        ?= go
BIN       := bin/pinpipe
DEMO      := out/demo
POSTS     ?= 5000
RUNNER    ?= prism

.PHONY: all build run test test-short fuzz lint bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/pinpipe

# The main job on an embedded default: generate a sample in the Kafka-to-S3
# sink's layout, run the batch pipeline on it locally, print the summary.
run: build
	@rm -rf $(DEMO)
	$(BIN) generate --posts=$(POSTS) --seed=42 --malformed-rate=0.005 --out=$(DEMO)/raw
	$(BIN) batch --runner=$(RUNNER) --input=$(DEMO)/raw --topic-prefix=pinpipe --output=$(DEMO)/clean
	@echo
	@echo "raw input:   $(DEMO)/raw/topics/"
	@echo "clean tables: $(DEMO)/clean/tables/{pin,geo,user}/ (Parquet)"
	@echo "insights:    $(DEMO)/clean/insights/*.json"
	@echo "dead letters: $(DEMO)/clean/deadletter/"
	@echo "summary:     $(DEMO)/clean/summary.json"
	@echo "report:      $(DEMO)/clean/report.html"

# Every test, with the real services they talk to: a throwaway PostgreSQL,
# kinesalite and Chromium, installed from Debian's packages and npm when
# missing and running as root (scripts/test-deps.sh says what to install
# otherwise).
test:
	scripts/test-deps.sh
	PINPIPE_KINESALITE_DIR=$(CURDIR)/.cache/kinesalite scripts/with-postgres.sh $(GO) test -count=1 -timeout=30m ./...

test-short:
	$(GO) test -short ./...

# The record parsers' fuzz targets, 30 s each.
fuzz:
	$(GO) test -run=NONE -fuzz=FuzzObjectFields -fuzztime=30s ./transforms/
	$(GO) test -run=NONE -fuzz=FuzzCleanRecords -fuzztime=30s ./transforms/

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

bench:
	cd bench && $(GO) run . -posts=1000000

clean:
	rm -rf bin out
