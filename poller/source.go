package poller

import (
	"context"
	"time"

	"github.com/followpub/followpub/schema"
)

// Source reads follow-up records from the API.
type Source interface {
	// Fetch returns the records whose follow_time falls on the calendar days from through to, both
	// inclusive, in the API's time zone (from and to are midnights in that zone). Each id appears
	// once; the order is unspecified. Fetch returns an error unless it read a consistent page set:
	// a nil error promises that every record present in the API for the whole call is in the result.
	// Fetch must be safe for concurrent use. The slice returned belongs to the caller, which
	// clears it as it publishes; the records' Raw bytes are only read.
	Fetch(ctx context.Context, from, to time.Time) ([]schema.Record, error)
}

// Publisher writes records to Kafka, and reads back what landed when a write's fate is unknown.
// Its methods are called one at a time by the Poller.
type Publisher interface {
	// Publish writes recs in the given order, once: it never re-sends a record on its own. It
	// blocks until Kafka acknowledged or failed each of them (writes still in flight when ctx ends
	// are waited for as far as possible), and returns nil when every record was acknowledged.
	// Otherwise it returns an error, and Written.Acked[i] reports whether Kafka acknowledged
	// recs[i] (Acked is nil when none was); a record not acknowledged may still have reached
	// Kafka, so the caller calls ReadBack before it publishes anything again. An error that may
	// go away when tried again has a method Temporary() bool that returns true. Publish must not
	// keep recs once it returns (the caller clears it); it may keep the records' Raw bytes.
	Publish(ctx context.Context, recs []schema.Record) (Written, error)
	// ReadBack reads each partition of the topic from the offset recorded in from to its end, as
	// far as every record the brokers appended is visible, and returns this source's records found
	// there and the tail after them. It settles the writes whose fate was unknown.
	ReadBack(ctx context.Context, from Tail) (ReadBack, error)
}

// Written is what one Publish call wrote.
type Written struct {
	// Acked[i] reports whether Kafka acknowledged recs[i]; nil when none was.
	Acked []bool
	// Next maps each partition written to the offset after the last record acknowledged there.
	// It is set only when every record was acknowledged.
	Next map[int]int64
}

// ReadBack is what a read-back found above the recorded tail.
type ReadBack struct {
	// Tail is the tail after the read-back: every partition accounted for up to its end.
	Tail Tail
	// Found are this source's records found above the recorded tail, in offset order per
	// partition; they may include records already remembered.
	Found []Published
	// Read counts the records read.
	Read int
	// Foreign counts other producers' records (another ce_source, or none).
	Foreign int
	// Unrecognised counts records with this ce_source that are not records of this followpub.
	Unrecognised int
	// Removed counts records deleted (retention, DeleteRecords) before they could be read back.
	Removed int64
	// Rewound counts partitions whose end lay below the recorded offset (the topic re-created).
	Rewound int
	// Fresh is true when nothing was recorded for this topic: the tail starts at its ends now.
	Fresh bool
}

// IncrementalSource is a Source that can read only what a day gained since the caller last read it.
type IncrementalSource interface {
	Source
	// FetchNew returns records of day (a midnight in the API's zone) that isKnown reports unknown,
	// where known is how many ids of that day isKnown knows, all of them still in the API. A nil
	// error promises, as Fetch does, that every record present in the API for the whole call is
	// known or in the result, provided records are only ever added to the API (never removed).
	// isKnown is called from one goroutine at a time. The slice returned belongs to the caller,
	// as Fetch's does.
	FetchNew(ctx context.Context, day time.Time, known int, isKnown func(id int64) bool) ([]schema.Record, error)
}
