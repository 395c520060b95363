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
//   - The file carries a format tag; a file of another format or version is refused by name.
//
// Remembered ids are keyed by (follow_time, id), so forgetting everything below the floor is one
// range delete, and the size of the store follows the window, not history.
//
// A Store is not safe for concurrent use; the poller serialises its calls.
package state
