// Command followpub polls WeShoto's CRM system follow-up list and publishes each new record to
// Kafka as a keyed CloudEvents JSON event. `followpub help` lists the commands; docs/DESIGN.md is the
// design and its contract, README.md the manual.
//
// One file per command. This package is the only one that reads the environment (config.go): it
// validates every FOLLOWPUB_ variable up front and wires the API client (internal/wshoto), the
// store (internal/state) and the publisher into the poller's interfaces (service.go).
package main
