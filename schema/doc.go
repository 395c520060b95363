// Package schema defines the followpub event: the follow-up record as the WeShoto API returned it, its
// Kafka key and its CloudEvents 1.0 headers (Kafka protocol binding, binary mode), and the JSON Schema
// of the value (schema.json, embedded).
//
// It depends on the standard library only, so every other package can use it. Everything here is
// safe for concurrent use.
package schema
