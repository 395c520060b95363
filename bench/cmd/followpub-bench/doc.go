// Command followpub-bench runs the real followpub binary against the simulated API (served in this
// process on 127.0.0.1) and a real Kafka broker, and prints Markdown tables of the figures of
// docs/BENCHMARKS.md: the hot path's testing.B, backfill throughput and followpub's own CPU against
// the bare producer, API-bound backfills against their bound, the steady state, memory, the codecs,
// the recovery after a SIGKILL with a publish in flight, high availability, and (-only peers)
// followpub beside the benthos peer of bench/peers. Each figure is compared with a limit measured in
// the same run; each is the median of -runs runs; the run ends with a summary of every goal it
// measured, met or missed. -images draws the pictures, -profile profiles the backfill.
//
//	scripts/kafka/with-broker.sh go run ./bench/cmd/followpub-bench [-runs 3] [-only hotpath,backfill,api,steady,memory,recovery,ha,peers] [-images docs/images]
//
// The broker comes from FOLLOWPUB_TEST_KAFKA_BROKERS (loopback addresses only). Progress goes to
// stderr, tables to stdout (and to -out when given).
package main
