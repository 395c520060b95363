package poller

import (
	"context"
	"sync"
	"time"

	"github.com/followpub/followpub/schema"
)

// fetched is one day of the window as the source returned it.
type fetched struct {
	day  time.Time
	recs []schema.Record
	err  error
}

// prefetchDays is how many days prefetch reads at once. A day's first page must be read alone
// (its total says how many pages follow) and its last round of pages rarely fills the source's
// concurrency; reading the next day meanwhile keeps the API busy.
const prefetchDays = 2

// prefetch reads the window's days ahead of the caller, prefetchDays at once, and delivers them in
// order, so that reading the API overlaps with publishing. At most prefetchDays days that the
// caller has not received are held, plus the one it is handling. The channel closes after the
// last day, after an error, or when ctx is done; done closes when every reader has returned.
//
// With incremental set and a source that can (IncrementalSource), a day that already has published
// records is read for what it gained only; otherwise in full.
func (p *Poller) prefetch(ctx context.Context, from time.Time, days int, incremental bool) (_ <-chan fetched, done <-chan struct{}) {
	ctx, stop := context.WithCancel(ctx) // stops the readers once the forwarder is done
	out := make(chan fetched)
	finished := make(chan struct{})
	inc, _ := p.src.(IncrementalSource)
	var known []int
	if incremental && inc != nil {
		known = p.knownByDay(from, days)
	}
	read := func(i int) fetched {
		day := addDays(from, i)
		if known != nil && known[i] > 0 {
			lo, hi := day.UnixMilli(), addDays(day, 1).UnixMilli()
			recs, err := inc.FetchNew(ctx, day, known[i], func(id int64) bool { return p.knownOn(id, lo, hi) })
			return fetched{day: day, recs: recs, err: err}
		}
		recs, err := p.src.Fetch(ctx, day, day)
		return fetched{day: day, recs: recs, err: err}
	}
	// Each day gets a slot when its reader starts: one in pending, or the one the forwarder below
	// has taken out and waits on. A new day starts only when the caller received the forwarder's,
	// so prefetchDays days are read or held ahead of the caller.
	pending := make(chan chan fetched, prefetchDays-1)
	var readers sync.WaitGroup
	go func() {
		defer close(pending)
		for i := range days {
			slot := make(chan fetched, 1)
			select {
			case pending <- slot:
			case <-ctx.Done():
				return
			}
			if err := ctx.Err(); err != nil { // select picks at random when both are ready
				slot <- fetched{day: addDays(from, i), err: err}
				return
			}
			readers.Go(func() { slot <- read(i) })
		}
	}()
	go func() {
		defer close(finished)
		defer readers.Wait()
		defer func() {
			stop()              // after an error or the last day: start no more reads, end those under way
			for range pending { // let the starter return
			}
		}()
		defer close(out)
		for slot := range pending {
			var f fetched
			select {
			case f = <-slot:
			case <-ctx.Done():
				return
			}
			select {
			case out <- f:
			case <-ctx.Done():
				return
			}
			if f.err != nil || ctx.Err() != nil {
				return
			}
		}
	}()
	return out, finished
}

// knownByDay counts, for each day of the window, the ids published with a follow_time on it. It
// runs before the prefetcher starts, so it reads st.Seen without the lock.
func (p *Poller) knownByDay(from time.Time, days int) []int {
	out := make([]int, days)
	lo, hi := from.UnixMilli(), addDays(from, days).UnixMilli()
	for _, ft := range p.st.Seen {
		if ft < lo || ft >= hi {
			continue
		}
		// Days are whole calendar days in the API zone; find ft's by stepping (the window is short).
		for i := range days {
			if ft < addDays(from, i+1).UnixMilli() {
				out[i]++
				break
			}
		}
	}
	return out
}

// knownOn reports whether id was published with a follow_time on the day from lo to hi (epoch ms).
// The prefetcher calls it while the cycle commits.
func (p *Poller) knownOn(id, lo, hi int64) bool {
	p.seenMu.RLock()
	defer p.seenMu.RUnlock()
	ft, ok := p.st.Seen[id]
	return ok && ft >= lo && ft < hi
}
