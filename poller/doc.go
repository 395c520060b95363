// Package poller is the heart of followpub: one cycle reads the latest follow-time window from a
// Source, drops the records already published, publishes the rest to a Publisher in ascending
// (follow_time, id) and commits to a Store only what Kafka acknowledged.
//
// It declares the small interfaces it needs (Source, Publisher, Store) and imports none of their
// implementations. The state (floor, remembered ids, watermark) and the rules that move it are those
// of SPEC.md §4: every unseen record with follow_time at or after the floor is published; without
// faults, each id exactly once; a cycle that cannot complete leaves the state where it was.
//
// A Poller runs one cycle at a time; its methods are safe for concurrent use.
package poller
