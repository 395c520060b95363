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
	// Tail is how far the output topic is accounted for; zero when nothing was recorded yet (a new
	// state, or one written before followpub recorded it).
	Tail Tail
	// FullRead is the last cycle that read its whole window in full; zero when none is recorded.
	FullRead FullRead
}

// FullRead records a cycle that read its window in full: a process that loads the state may read
// incrementally until FullReadEvery after it, as the process that committed it would have
// (docs/DESIGN.md §4, "Incremental reads").
type FullRead struct {
	// At is when the cycle began, From the first day of its window, both in epoch milliseconds.
	At, From int64
}

// IsZero reports whether nothing is recorded.
func (f FullRead) IsZero() bool { return f == FullRead{} }

// Tail records how far the output topic is accounted for: for each partition, the offset below
// which every record is known, either published by this state and committed, or someone else's.
// A write whose fate is unknown lands at or above it, so reading each partition from there to its
// end finds it (docs/DESIGN.md §4).
type Tail struct {
	// Topic is the topic the offsets belong to; another topic's offsets mean nothing.
	Topic string
	// Next maps each partition to the offset of the first record not yet accounted for.
	Next map[int]int64
}

// IsZero reports whether nothing is recorded.
func (t Tail) IsZero() bool { return t.Topic == "" && len(t.Next) == 0 }

// Advance returns t with each partition of next moved up to next's offset (never down), as a new
// map: next comes from a write or a read-back of t.Topic.
func (t Tail) Advance(next map[int]int64) Tail {
	out := Tail{Topic: t.Topic, Next: make(map[int]int64, max(len(t.Next), len(next)))}
	for p, o := range t.Next {
		out.Next[p] = o
	}
	for p, o := range next {
		if o > out.Next[p] {
			out.Next[p] = o
		}
	}
	return out
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
	// Tail, when not nil, replaces the recorded tail of the topic.
	Tail *Tail
	// FullRead, when not nil, replaces the recorded full read.
	FullRead *FullRead
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
	// Replace sets the floor and the watermark and forgets every remembered id and the recorded
	// full read (watermark set). The recorded tail stays: it describes the topic, not the watermark.
	Replace(ctx context.Context, floor, watermark int64) error
	// Reset deletes the state, the recorded tail with it: the next Load reports Exists false.
	Reset(ctx context.Context) error
}
