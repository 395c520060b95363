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

// Publisher writes records to Kafka.
type Publisher interface {
	// Publish writes recs in the given order and blocks until Kafka acknowledged or failed each of
	// them, or ctx is done. It returns nil when every record was acknowledged. Otherwise it returns
	// an error and acked, where acked[i] reports whether Kafka acknowledged recs[i]; acked is nil
	// when no record was acknowledged. A record not acknowledged may still have reached Kafka (the
	// delivery is at-least-once); the caller publishes it again. Publish must not keep recs once
	// it returns (the caller clears it); it may keep the records' Raw bytes.
	Publish(ctx context.Context, recs []schema.Record) (acked []bool, err error)
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
