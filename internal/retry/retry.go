// Package retry is followpub's one retry policy: exponential backoff with jitter, from
// github.com/cenkalti/backoff/v5, and a sleep that ends with its context. Callers keep only their
// own decision of what is worth retrying; how long to wait is decided here.
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Jitter is the randomization factor of every policy: each wait is drawn uniformly from
// [d·(1−Jitter), d·(1+Jitter)], so that many instances or calls do not retry in step.
const Jitter = 0.5

// Policy is a retry schedule: the first wait is about Initial, each later one Multiplier times
// the one before, never more than Max (jitter included). It is not safe for concurrent use;
// create one per loop with New.
type Policy struct {
	b *backoff.ExponentialBackOff
}

// New returns a policy that starts near initial and grows to at most maxWait. A maxWait below
// initial is raised to initial.
func New(initial, maxWait time.Duration) *Policy {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = initial
	b.MaxInterval = max(maxWait, initial)
	b.Multiplier = 2
	b.RandomizationFactor = Jitter
	b.Reset()
	return &Policy{b: b}
}

// Next returns the wait before the next attempt, at most Max.
func (p *Policy) Next() time.Duration {
	return min(p.b.NextBackOff(), p.b.MaxInterval)
}

// Reset starts the schedule over, after a success.
func (p *Policy) Reset() { p.b.Reset() }

// Sleep waits d, or until ctx is done; it returns ctx.Err() in that case and nil otherwise.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
