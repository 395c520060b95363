package poller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/followpub/followpub/internal/retry"
	"github.com/followpub/followpub/schema"
)

// handleDay publishes the records of one day that were not published yet, in ascending
// (follow_time, id), BatchSize at a time, committing after each batch what Kafka acknowledged.
// After the whole day, it moves the floor up behind the window: with the commit of the day's last
// batch, or on its own when that did not (nothing was due, or the batch failed part-way).
func (p *Poller) handleDay(ctx context.Context, day time.Time, recs []schema.Record, res *CycleResult) error {
	p.cfg.Metrics.RecordsFetched(len(recs))
	res.Fetched += len(recs)
	lo, hi := day.UnixMilli(), addDays(day, 1).UnixMilli()
	fresh := recs[:0] // filtered in place: recs is ours (the Source gave it to us)
	var dups, outside, late int
	for _, r := range recs {
		switch {
		case r.FollowTime < lo || r.FollowTime >= hi:
			outside++
			if outside == 1 {
				p.cfg.Logger.Warn("the API returned a record outside the day asked for; skipped",
					"day", day.Format(DateLayout), "id", r.ID, "follow_time", msTime(r.FollowTime))
			}
		case r.FollowTime < p.st.Floor:
			if p.reportLate(r) {
				late++
			}
		default:
			if _, ok := p.st.Seen[r.ID]; ok {
				dups++
				continue
			}
			if _, ok := p.unsavedIDs[r.ID]; ok {
				dups++
				continue
			}
			fresh = append(fresh, r)
		}
	}
	clear(recs[len(fresh):])
	res.Duplicates += dups
	res.OutOfWindow += outside
	res.Late += late
	if late > 0 {
		p.cfg.Logger.Warn("records older than the floor skipped, not published (each is counted once)",
			"day", day.Format(DateLayout), "records", late, "floor", msTime(p.st.Floor))
	}
	if len(fresh) > 0 && !p.settled {
		// Before this process publishes for the first time, and after a failed write: settle
		// what may have landed, then leave out what the read-back found.
		if _, err := p.settle(ctx); err != nil {
			return err
		}
		n := len(fresh)
		fresh = slices.DeleteFunc(fresh, func(r schema.Record) bool { return p.published(r.ID) })
		dups += n - len(fresh)
		res.Duplicates += n - len(fresh)
	}
	p.cfg.Metrics.DuplicatesSkipped(dups)
	p.cfg.Metrics.OutOfWindow(outside)
	slices.SortFunc(fresh, schema.Compare)
	fresh = slices.CompactFunc(fresh, func(a, b schema.Record) bool { return a.ID == b.ID })

	// A record's Raw holds on to the whole page it was read from. Dropping each record once it is
	// published lets the day's pages go as the day is published rather than after it, which lowers
	// a backfill's peak memory.
	for len(fresh) > 0 {
		n := min(len(fresh), p.cfg.BatchSize)
		if err := p.publishBatch(ctx, fresh[:n], n == len(fresh), res); err != nil {
			return err
		}
		clear(fresh[:n])
		fresh = fresh[n:]
		if len(fresh) > 0 && ctx.Err() != nil {
			return fmt.Errorf("stopped with %d records of %s left: %w", len(fresh), day.Format(DateLayout), ctx.Err())
		}
	}
	return p.raiseFloor(ctx)
}

// Retries of a batch whose write failed with a temporary error, each after the read-back that
// settled the failed write.
const (
	publishAttempts = 5
	publishRetryMin = 200 * time.Millisecond
	publishRetryMax = 5 * time.Second
)

// publishBatch publishes recs and commits every record Kafka acknowledged, even when the publish
// failed part-way. After a failed write it reads the topic back (settle) before anything is sent
// again, and sends again only the records that did not land, while the failure is temporary. It is
// given ShutdownGrace beyond ctx to finish. When recs is the day's last batch (last), the commit of
// its successful write raises the floor too, saving the day its own commit (raiseFloor).
func (p *Poller) publishBatch(ctx context.Context, recs []schema.Record, last bool, res *CycleResult) error {
	gctx, cancel := graceContext(ctx, p.cfg.ShutdownGrace)
	defer cancel()
	policy := retry.New(publishRetryMin, publishRetryMax)
	for attempt := 1; ; attempt++ {
		pctx, unfence, ferr := p.fenced(gctx)
		if ferr != nil {
			return ferr
		}
		w, perr := p.pub.Publish(pctx, recs)
		unfence()
		add := make([]Published, 0, len(recs))
		for i, r := range recs {
			if perr == nil || (i < len(w.Acked) && w.Acked[i]) {
				add = append(add, Published{ID: r.ID, FollowTime: r.FollowTime})
			}
		}
		var tail *Tail
		if perr == nil {
			t := p.st.Tail.Advance(w.Next)
			tail = &t
		} else {
			p.settled = false
			p.unsettled++
		}
		// Counted once in the topic, whether or not the commit succeeds: a failed commit keeps them
		// as unsaved and commits them later, and a new process finds them by the read-back.
		res.Published += len(add)
		if err := p.commitPublished(gctx, add, tail, last && perr == nil); err != nil {
			return errors.Join(wrapPublish(perr, len(recs), 0), err)
		}
		if perr == nil {
			return nil
		}
		// The fate of the records not acknowledged is unknown: settle it before sending any again.
		if _, err := p.settle(gctx); err != nil {
			return errors.Join(wrapPublish(perr, len(recs), len(add)), err)
		}
		rest := recs[:0:0]
		for _, r := range recs {
			if !p.published(r.ID) {
				rest = append(rest, r)
			}
		}
		res.Published += len(recs) - len(add) - len(rest)
		if len(rest) == 0 {
			return nil
		}
		if !temporary(perr) || attempt >= publishAttempts || gctx.Err() != nil {
			return wrapPublish(perr, len(recs), len(recs)-len(rest))
		}
		wait := policy.Next()
		p.cfg.Logger.Warn("publish failed; the read-back settled what landed, sending the rest again",
			"err", perr, "records", len(recs), "landed", len(recs)-len(rest), "attempt", attempt, "retry_in", wait.Round(time.Millisecond))
		if retry.Sleep(gctx, wait) != nil {
			return wrapPublish(perr, len(recs), len(recs)-len(rest))
		}
		recs = rest
	}
}

// temporary reports whether err says that sending again may succeed (poller.Publisher).
func temporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// published reports whether id is committed or kept unsaved as published.
func (p *Poller) published(id int64) bool {
	if _, ok := p.st.Seen[id]; ok {
		return true
	}
	_, ok := p.unsavedIDs[id]
	return ok
}

// settle reads the topic back from the recorded tail and commits this source's records found
// there as published, with the tail read to: afterwards no write of this state has an unknown
// fate. It runs before a process publishes for the first time (whatever ended the last one; when
// the first records are due, so that a cycle asks the API first) and after every failed write. It
// returns how many records it committed.
func (p *Poller) settle(ctx context.Context) (int, error) {
	began := p.cfg.Clock()
	rb, err := p.pub.ReadBack(ctx, p.st.Tail)
	if err != nil {
		return 0, fmt.Errorf("reading the topic back before publishing again: %w", err)
	}
	var add []Published
	found := map[int64]struct{}{}
	for _, f := range rb.Found {
		if _, dup := found[f.ID]; dup || f.FollowTime < p.st.Floor || p.published(f.ID) {
			continue
		}
		found[f.ID] = struct{}{}
		add = append(add, f)
	}
	if err := p.commitPublished(ctx, add, &rb.Tail, false); err != nil {
		return 0, fmt.Errorf("committing %d records found by reading the topic back: %w", len(add), err)
	}
	p.settled = true
	p.cfg.Metrics.AmbiguousWritesSettled(p.unsettled)
	p.unsettled = 0
	d := p.cfg.Clock().Sub(began)
	p.cfg.Metrics.ReadBackDone(len(add), d)
	p.cfg.Metrics.ReadBackAnomalies(rb.Removed, rb.Rewound, rb.Unrecognised)
	log := p.cfg.Logger.With("read", rb.Read, "found", len(rb.Found), "committed", len(add), "foreign", rb.Foreign,
		"unrecognised", rb.Unrecognised, "duration", d.Round(time.Millisecond))
	switch {
	case rb.Fresh:
		log.Info("no tail recorded for the topic yet: accounting for it from its end now", "tail", rb.Tail.Next)
	case len(add) > 0 || rb.Removed > 0 || rb.Rewound > 0:
		log.Warn("the read-back found records of ours the state did not have, and committed them as published",
			"removed_before_read", rb.Removed, "partitions_rewound", rb.Rewound)
	default:
		log.Debug("topic read back")
	}
	return len(add), nil
}

// commitPublished commits records that are in the topic (Kafka acknowledged them, or the read-back
// found them) and tail (nil: unchanged), together with any that an earlier commit failed to save;
// with raise, it raises the floor behind the window of the new watermark too (raiseFloor).
// When the commit fails, they are all kept in memory as unsaved: they count as published for the
// dedupe (so a disk that refuses commits does not make every cycle publish the same batch again)
// and are committed first thing next time. A crash loses them from memory, not from the topic:
// the next process finds them by reading the topic back.
func (p *Poller) commitPublished(ctx context.Context, add []Published, tail *Tail, raise bool) error {
	if len(p.unsaved) > 0 {
		add = append(p.unsaved, add...)
	}
	if tail != nil && p.unsavedTail != nil {
		t := p.unsavedTail.Advance(tail.Next)
		tail = &t
	} else if tail == nil {
		tail = p.unsavedTail
	}
	if len(add) == 0 && tail == nil {
		return nil
	}
	change := Change{Floor: p.st.Floor, Watermark: p.st.Watermark, Add: add, Tail: tail}
	for _, a := range add {
		change.Watermark = max(change.Watermark, a.FollowTime)
	}
	if raise {
		change.Floor = max(change.Floor, p.floorBehind(change.Watermark))
	}
	if err := p.commit(ctx, change); err != nil {
		p.unsaved, p.unsavedTail = add, tail
		for _, a := range add {
			p.unsavedIDs[a.ID] = struct{}{}
		}
		return err
	}
	p.cfg.Metrics.RecordsPublished(len(add))
	p.unsaved, p.unsavedTail = nil, nil
	clear(p.unsavedIDs)
	return nil
}

func wrapPublish(err error, n, acked int) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("publishing %d records (%d acknowledged and committed): %w", n, acked, err)
}

// raiseFloor moves the floor up to FloorMargin before the start of the next window, forgetting the
// ids below it, once the window has moved on.
func (p *Poller) raiseFloor(ctx context.Context) error {
	floor := p.floorBehind(p.st.Watermark)
	if floor <= p.st.Floor {
		return nil
	}
	return p.commit(ctx, Change{Floor: floor, Watermark: p.st.Watermark})
}

// floorBehind is the floor FloorMargin before the start of the window that watermark (and the
// current floor) make.
func (p *Poller) floorBehind(watermark int64) int64 {
	// On a day boundary, so that the whole day before the window stays above the floor even where
	// a day lasts 25 hours (daylight saving time ends).
	w := p.windowStart(State{Floor: p.st.Floor, Watermark: watermark})
	return StartOfDay(w.Add(-p.cfg.FloorMargin), p.cfg.Location).UnixMilli()
}

// commit makes c durable, then applies it to the state in memory.
func (p *Poller) commit(ctx context.Context, c Change) error {
	began := p.cfg.Clock()
	if err := p.store.Commit(ctx, c); err != nil {
		p.commitFailed(ctx)
		return fmt.Errorf("committing the state (%d ids, watermark %s): %w", len(c.Add), msTime(c.Watermark), err)
	}
	p.seenMu.Lock()
	defer p.seenMu.Unlock()
	for _, a := range c.Add {
		p.st.Seen[a.ID] = a.FollowTime
	}
	if c.Floor > p.st.Floor {
		p.st.Floor = c.Floor
		for id, ft := range p.st.Seen {
			if ft < c.Floor {
				delete(p.st.Seen, id)
			}
		}
		clear(p.late)
	}
	p.st.Watermark = max(p.st.Watermark, c.Watermark)
	if c.Tail != nil {
		p.st.Tail = *c.Tail
	}
	if c.FullRead != nil {
		p.st.FullRead = *c.FullRead
	}
	p.st.UpdatedAt = p.cfg.Clock()
	p.cfg.Metrics.StateCommitted(time.UnixMilli(p.st.Watermark), p.cfg.Clock().Sub(began))
	return nil
}

// commitFailed counts a state write that failed, unless ctx ended: a shutdown that abandons a
// write is not a store that refuses them.
func (p *Poller) commitFailed(ctx context.Context) {
	if ctx.Err() == nil {
		p.cfg.Metrics.StateCommitFailed()
	}
}

// reportLate counts and logs (at debug) a record below the floor, once per id while the floor
// stays put. It reports whether the record was new to the count.
func (p *Poller) reportLate(r schema.Record) bool {
	if _, ok := p.late[r.ID]; ok {
		return false
	}
	p.late[r.ID] = struct{}{}
	p.cfg.Metrics.LateDropped(1)
	p.cfg.Logger.Debug("record older than the floor skipped, not published",
		"id", r.ID, "follow_time", msTime(r.FollowTime), "floor", msTime(p.st.Floor))
	return true
}
