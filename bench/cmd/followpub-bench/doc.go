// Command followpub-bench runs the real followpub binary against the simulated API (served in this
// process on 127.0.0.1) and a real Kafka broker, and prints Markdown tables of the figures of
// docs/BENCHMARKS.md: backfill throughput against the producer limit, API-bound backfills against
// their bound, the steady state, memory, the codecs, and the recovery after a SIGKILL with a publish in flight. Each figure is compared with a limit
// measured in the same run; each is the median of -runs runs.
//
//	scripts/kafka/with-broker.sh go run ./bench/cmd/followpub-bench [-runs 3] [-only backfill,api,steady,memory,recovery]
//
// The broker comes from FOLLOWPUB_TEST_KAFKA_BROKERS (loopback addresses only). Progress goes to
// stderr, tables to stdout (and to -out when given).
package main
