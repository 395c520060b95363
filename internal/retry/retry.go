// Package retry is followpub's one retry policy: exponential backoff with jitter, from
// github.com/cenkalti/backoff/v5, and a sleep that ends with its context. Callers keep only their
// own decision of what is worth retrying; how long to wait is decided here.
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy is a retry schedule with full jitter: the n-th wait (from 0) is drawn uniformly from
// [0, min(Initial·2ⁿ, Max)], so that many instances or calls do not retry in step and the mean wait
// is half the ceiling. It is not safe for concurrent use; create one per loop with New.
type Policy struct {
	b       *backoff.ExponentialBackOff
	ceiling time.Duration
}

// New returns a policy whose ceiling starts at initial and doubles up to maxWait. A maxWait below
// initial is raised to initial.
func New(initial, maxWait time.Duration) *Policy {
	// backoff draws from [d·(1−f), d·(1+f)]; with f = 1 and d half the ceiling that is [0, ceiling].
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = initial / 2
	b.MaxInterval = max(maxWait, initial) / 2
	b.Multiplier = 2
	b.RandomizationFactor = 1
	b.Reset()
	return &Policy{b: b, ceiling: max(maxWait, initial)}
}

// Next returns the wait before the next attempt, at most the policy's maximum.
func (p *Policy) Next() time.Duration {
	return min(p.b.NextBackOff(), p.ceiling)
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
