// Package kafkatest hands tests a real Apache Kafka broker.
//
// A test asks for what it needs and gets it, or is skipped with a message saying how to get a
// broker:
//
//   - [Brokers] returns a PLAINTEXT bootstrap list: from FOLLOWPUB_TEST_KAFKA_BROKERS when set
//     (make test sets it from a broker started by scripts/kafka/start.sh); otherwise, where a Docker
//     daemon answers, from one testcontainers Kafka container per test binary: apache/kafka, or the
//     image FOLLOWPUB_TEST_KAFKA_IMAGE names (make test-docker's local one), on the host's network
//     with its listeners on 127.0.0.1. [ContainerBrokers] takes that path whatever the environment
//     says, for tests of the path itself.
//   - [SASL] returns the SASL_SSL listener of the same broker (SCRAM-SHA-512, SCRAM-SHA-256 and
//     PLAIN with start.sh), its credentials and the PEM file to trust, from the
//     FOLLOWPUB_TEST_KAFKA_SASL_* variables.
//   - [Topic] creates a fresh topic and waits until every partition has a leader.
//   - [StartDedicated] starts a private broker (scripts/kafka/start.sh in t.TempDir()) that the test
//     may stop and restart, for broker-outage tests.
//
// When no broker can be had the test is skipped, except when the CI environment variable is
// non-empty: there a missing broker fails the test, so CI never passes by skipping. go test -short
// skips every test that needs a broker, for a fast local loop; with CI set it fails them instead.
//
// Only loopback addresses (127.0.0.0/8, ::1, localhost) are ever dialled: an address from the
// environment or from broker metadata that is not loopback fails the test.
//
// All functions are safe for concurrent use by parallel tests. Packages that use the
// testcontainers fallback should end their tests with [Main] so the shared container is removed.
package kafkatest
