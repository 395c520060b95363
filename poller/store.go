package poller

import (
	"context"
	"time"
)

// State is what followpub persists between cycles and restarts.
type State struct {
	// Exists is false when there is no state yet (a first run, or after a reset).
	Exists bool
	// Floor is F, in epoch milliseconds: every record with follow_time < Floor counts as handled.
	Floor int64
	// Watermark is W, in epoch milliseconds: the newest follow_time published.
	Watermark int64
	// Seen maps each id published with follow_time ≥ Floor to its follow_time (epoch ms).
	Seen map[int64]int64
	// UpdatedAt is when the state was last committed.
	UpdatedAt time.Time
}

// Published is one record Kafka acknowledged.
type Published struct {
	ID         int64
	FollowTime int64 // epoch ms
}

// Change is one commit: ids to remember, and the floor and watermark after it.
type Change struct {
	// Add holds the records Kafka acknowledged since the last commit.
	Add []Published
	// Floor is the new floor; ids with a follow_time below it are forgotten. Never below the old one.
	Floor int64
	// Watermark is the new watermark. Never below the old one.
	Watermark int64
}

// Store persists the State.
//
// Every method returns only once its change is durable on disk, so that a process killed at any
// instant leaves the last committed state. Implementations need not be safe for concurrent use;
// the Poller serialises its calls.
type Store interface {
	// Load returns the committed state; State.Exists is false when there is none.
	Load(ctx context.Context) (State, error)
	// Commit applies c atomically: all of it or none of it.
	Commit(ctx context.Context, c Change) error
	// Replace sets the floor and the watermark and forgets every remembered id (watermark set).
	Replace(ctx context.Context, floor, watermark int64) error
	// Reset deletes the state: the next Load reports Exists false.
	Reset(ctx context.Context) error
}
