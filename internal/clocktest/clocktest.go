// Package clocktest is the clock tests move by hand: a time that stands still until the test sets
// or advances it, to be passed wherever a component takes a clock function (Now, Clock).
//
// It is for tests only. A Clock is safe for concurrent use.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a settable clock. Its zero value stands at the zero time.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock standing at now.
func New(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time; pass the method value (clk.Now) as a component's clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Add moves the clock forward by d (back, for a negative d).
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
