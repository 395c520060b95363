// Package deploy holds what an operator deploys next to followpub, and the tests that hold those
// files to the real service:
//
//   - prometheus/alerts.yml: alerting and recording rules. Every alert has promtool unit tests that
//     make it fire and keep it silent (rules_test.go), and an end-to-end test runs a real
//     Prometheus against a real `followpub run`, the simulator and a dedicated Kafka, breaks the API,
//     the broker and the state file, and watches the alerts go pending, fire and resolve
//     (prometheus_test.go), drawing its graphs of the run (plot_test.go).
//   - grafana/followpub.json: a dashboard whose every query parses and names only metrics that
//     `followpub run` exposes or the rules record (checked against the same Prometheus).
//   - kubernetes/: manifests, decoded strictly with the Kubernetes API types by a test in their own
//     Go module, so that those types stay out of this module's dependencies.
//
// The tests need promtool, prometheus and chromium (Debian's prometheus and chromium packages):
// scripts/deploy/tools.sh installs them, and `make test` runs it. Under CI a missing tool fails
// the tests instead of skipping them.
package deploy
