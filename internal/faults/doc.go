// Package faults holds followpub's fault-injection tests: they prove docs/DESIGN.md §4 (delivery
// semantics) and the security promises of §3 by breaking things for real and counting what was lost
// and what was duplicated.
//
// The package has no code of its own; everything is in its tests, which drive the real followpub
// binary (built by internal/e2etest) against the API simulator (internal/wshotosim) and a real
// Apache Kafka (internal/kafkatest):
//
//   - SIGKILL at random moments while records keep arriving, restarting each time: each kill
//     leaves the store readable and at most one publish batch in the topic but not committed,
//     which the next process finds by reading the topic back: nothing lost, nothing duplicated.
//   - A private broker stopped and started again mid-run (with a batch in flight), and down at
//     start-up: followpub keeps running, /readyz goes not-ready, the watermark stands still, and
//     everything is published once the broker is back, once.
//   - Kafka connections through a proxy that cuts produce requests mid-way and drops responses
//     after the broker appended: every such write is settled by a read-back, nothing duplicated.
//   - A sustained API fault mix (HTTP 500 and 429, malformed bodies, code 3, hangs, connections
//     reset mid-response by a loopback proxy, tokens expiring mid-window, a page set that changes
//     between pages): no loss, no duplicate, no crash, no token printed.
//   - Disk trouble under a running process: a full file system (a small tmpfs when the test may
//     mount one; a file-size limit set with prlimit(2) on the process otherwise), a state file made
//     immutable, a read-only mount, and truncated or garbage state files: the cycle fails loudly,
//     nothing is published past what can be committed (one batch, once, for the whole outage,
//     committed when the disk heals), and a damaged store is an exit 1, never a silent restart
//     from START_FROM.
//   - Hostile input and configuration: fuzz targets for the API client's body handling and the
//     START_FROM and time parsers (seed corpora in testdata/fuzz), oversize and endless bodies,
//     records outside the window asked for, and environment values chosen to break the parser.
//   - Security: SASL_SSL with SCRAM-SHA-512, TLS verification on by default, plain http:// refused
//     for non-loopback API hosts, secrets absent from every output, /metrics on loopback by
//     default.
//   - Liveness: a day that never stands still (records arriving during every read) is still read
//     and published.
//
// regressions_test.go guards the bugs these tests found in other packages, now fixed (listed in
// docs/RELIABILITY.md, "Bugs found and fixed"): a truncated state, an interrupted cycle, a disk
// fault during publication, implausible configuration, a lying total. Each asserts what docs/DESIGN.md
// asks and fails if the bug comes back.
//
// Tests that need a broker are skipped when none is available, except when CI is set, where they
// fail instead; go test -short skips them. Tests log their measured figures with t.Logf under the
// prefix "FIGURES" (the delivery tests start with injected=N lost=N duplicated=N);
// docs/RELIABILITY.md records a run of them. Everything listens on and dials
// 127.0.0.1 only.
package faults
