// Package state is followpub's watermark store: an embedded bbolt database on local disk that
// implements poller.Store.
//
// Guarantees:
//   - Every Commit, Replace and Reset is one bbolt transaction, fsync'd before it returns: a process
//     killed at any instant leaves the last committed state, and a file that opens.
//   - A new store is built under a temporary name and renamed into place, so an empty or partial
//     file at the state path never means "no state": it is reported as corrupt, never silently reset.
//   - One process at a time: Open takes an exclusive lock on "<path>.lock" (which records the
//     holder's pid, host and start time) and fails at once when another process holds it.
//   - The file carries a format tag; a file of another format or version is refused by name. A
//     store of format 1 (before the topic's tail was recorded) or 2 (one key per remembered id) is
//     upgraded in place, in one transaction, when it is opened.
//
// Remembered ids are kept in one bucket per UTC day of follow_time, in chunks (chunk.go): a commit
// writes each day's ids as one key, so forgetting a day below the floor is one bucket deletion,
// and the size of the store follows the window, not history. With every commit the store can also
// record the tail of the output topic (poller.Tail: per partition, the offset up to which every
// record is accounted for).
//
// A Store is not safe for concurrent use; the poller serialises its calls.
package state
