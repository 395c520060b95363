// Package poller is the heart of followpub: one cycle reads the latest follow-time window from a
// Source, drops the records already published, publishes the rest to a Publisher in ascending
// (follow_time, id) and commits to a Store only what Kafka acknowledged.
//
// It declares the small interfaces it needs (Source, Publisher, Store) and imports none of their
// implementations. The state (floor, remembered ids, watermark, and the topic's tail) and the rules
// that move it are those of docs/DESIGN.md §4: every unseen record with follow_time at or after the
// floor is published; each id lands in the topic once, even across crashes and failed writes,
// because a write whose fate is unknown is settled by reading the topic back (Publisher.ReadBack)
// before anything is sent again; a cycle that cannot complete leaves the state where it was.
//
// The files follow a cycle: poller.go runs cycles, plan.go decides what one reads, prefetch.go
// reads the API ahead of publishing, commit.go publishes, settles and commits.
//
// A Poller runs one cycle at a time; its methods are safe for concurrent use.
package poller
