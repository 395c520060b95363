// Package bench measures followpub against the goals of docs/BENCHMARKS.md: how fast, how lean,
// and how close to the limit.
//
// Two parts:
//
//   - testing.B benchmarks of the hot path, in this package: decoding a page, deduplicating
//     against the state and building the Kafka messages, per record (ns, bytes, allocations). They
//     run the real code (wshoto.Client, poller.Poller, publisher.Publisher.Messages) with the API
//     served from memory (Pages) and the state in memory; no network, no broker.
//
//     go test ./bench -run '^$' -bench . -benchmem -count 5
//
//   - cmd/followpub-bench, a driver that runs the real followpub binary against the simulator
//     (served in-process on 127.0.0.1) and a real Kafka broker, and prints tables: backfill
//     throughput against the producer limit (a plain kafka-go Writer writing the same messages with
//     the same settings, measured in the same run), API-bound backfills against their bound, the
//     steady state's latency and API requests per cycle, peak memory, and the codecs.
//
//     scripts/kafka/with-broker.sh go run ./bench/cmd/followpub-bench
//
// Nothing here asserts on time: the benchmarks and the driver print figures, the reader compares
// them with the goals. Plain `go test ./...` compiles the package and runs its few functional
// tests only.
package bench
