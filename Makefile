# followpub — build, test, lint and run. `make help` lists the targets.
#
# Tests that need Kafka get a real Apache Kafka: `make test` starts one from Maven Central jars
# (scripts/kafka/start.sh, needs Java 17 and Maven) unless FOLLOWPUB_TEST_KAFKA_BROKERS already
# points at one. KAFKA_VERSION=x.y.z picks the broker version; GOTESTFLAGS adds go test flags.

SHELL := /bin/bash
GO    ?= go
# Pinned, and run through the module proxy, so every machine lints with the same version.
GOLANGCI_LINT ?= $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

GOTESTFLAGS     ?=
KAFKA39_VERSION ?= 3.9.1
# The packages test-kafka39 runs against the 3.9 line (those that exist).
KAFKA39_PKGS := $(foreach d,publisher internal/kafkatest,$(if $(wildcard $(d)),./$(d)/...))

.PHONY: help build test test-tools test-rules test-kubernetes test-kafka39 test-docker fuzz lint fmt demo bench bench-peers kafka-jars clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

BIN ?= bin/followpub

build: ## build bin/followpub (BIN=path elsewhere) with the version and commit stamped in
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/followpub

# The tests that need a Docker daemon run in test-docker, which starts one; make test leaves them out
# rather than showing them skipped.
DOCKER_TESTS := ^(TestImage|TestComposeUp|TestContainerRoundTrip)$$

test: test-tools ## go test -race ./... against a real Kafka (started here unless FOLLOWPUB_TEST_KAFKA_BROKERS is set), and deploy/kubernetes' own module
	scripts/kafka/with-broker.sh $(GO) test -race -count=1 -skip '$(DOCKER_TESTS)' $(GOTESTFLAGS) ./...
	$(MAKE) --no-print-directory test-kubernetes

test-tools: ## install promtool, prometheus and chromium (Debian packages) for the deploy/ tests, if missing
	scripts/deploy/tools.sh

test-rules: test-tools ## promtool check and unit tests of deploy/prometheus/alerts.yml (also part of make test)
	$(GO) test -count=1 -run 'TestAlertRules' ./deploy/

test-kubernetes: ## decode deploy/kubernetes/*.yaml strictly with the Kubernetes API types (its own Go module)
	cd deploy/kubernetes && $(GO) test -count=1 ./...

test-kafka39: ## the publisher and kafkatest tests against Kafka 3.9.1, always a fresh broker
	KAFKA_VERSION=$(KAFKA39_VERSION) FOLLOWPUB_KAFKA_FRESH=1 \
		scripts/kafka/with-broker.sh $(GO) test -race -count=1 -skip '$(DOCKER_TESTS)' $(GOTESTFLAGS) $(KAFKA39_PKGS)

# Root here (apt-get); no registry: every image is built locally. scripts/docker/test.sh says how.
test-docker: ## build the images locally (own dockerd, no bridge), run the image, docker compose up/down and testcontainers tests
	GO=$(GO) scripts/docker/test.sh

fuzz: ## run every fuzz target briefly (FUZZTIME each, default 100000x inputs); failures land in testdata/fuzz
	scripts/fuzz.sh

lint: ## gofmt check, go vet (deploy/kubernetes' module too), and golangci-lint (.golangci.yml; built from the Go module proxy on first use)
	@unformatted=$$(gofmt -l .); \
	if [ -n "$$unformatted" ]; then echo "gofmt: these files need formatting (make fmt):"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	cd deploy/kubernetes && $(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

fmt: ## format the Go sources
	gofmt -w .

demo: build ## simulator + broker + poller + live view, no set-up (Ctrl-C stops it)
	$(BIN) demo

# -p 1: one package's benchmarks at a time; two at once would share the CPUs and skew both.
bench: ## benchmarks: testing.B (hot path and micro), then followpub-bench's tables against a real Kafka (docs/BENCHMARKS.md)
	$(GO) test -p 1 -run '^$$' -bench . -benchmem -count 5 -cpu 1,2 ./...
	scripts/kafka/with-broker.sh $(GO) run ./bench/cmd/followpub-bench -runs 3 -images docs/images

# Not in CI: builds benthos (bench/peers, its own module) and needs kcat (apt-get install kcat).
bench-peers: ## followpub beside the benthos core of Redpanda Connect (+ kcat): backfill, stream, SIGKILL (docs/BENCHMARKS.md)
	scripts/kafka/with-broker.sh $(GO) run ./bench/cmd/followpub-bench -only peers -runs 3 -images docs/images

kafka-jars: ## pre-fetch the Kafka jars (4.x and 3.9) into ~/.cache/followpub/kafka
	scripts/kafka/jars.sh
	KAFKA_VERSION=$(KAFKA39_VERSION) scripts/kafka/jars.sh

clean: ## remove build output
	rm -rf bin/ scripts/kafka/target/ coverage.out coverage.html
