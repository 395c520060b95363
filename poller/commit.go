package poller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/followpub/followpub/schema"
)

// handleDay publishes the records of one day that were not published yet, in ascending
// (follow_time, id), BatchSize at a time, committing after each batch what Kafka acknowledged.
// After the whole day, it moves the floor up behind the window.
func (p *Poller) handleDay(ctx context.Context, day time.Time, recs []schema.Record, res *CycleResult) error {
	p.cfg.Metrics.RecordsFetched(len(recs))
	res.Fetched += len(recs)
	lo, hi := day.UnixMilli(), addDays(day, 1).UnixMilli()
	fresh := make([]schema.Record, 0, len(recs))
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
	res.Duplicates += dups
	res.OutOfWindow += outside
	res.Late += late
	if late > 0 {
		p.cfg.Logger.Warn("records older than the floor skipped, not published (each is counted once)",
			"day", day.Format(DateLayout), "records", late, "floor", msTime(p.st.Floor))
	}
	p.cfg.Metrics.DuplicatesSkipped(dups)
	p.cfg.Metrics.OutOfWindow(outside)
	slices.SortFunc(fresh, schema.Compare)
	fresh = slices.CompactFunc(fresh, func(a, b schema.Record) bool { return a.ID == b.ID })

	// A record's Raw holds on to the whole page it was read from. Dropping each record once it is
	// published, here and in recs (the Source gave it to us), lets the day's pages go as the day
	// is published rather than after it, which lowers a backfill's peak memory.
	clear(recs)
	for len(fresh) > 0 {
		n := min(len(fresh), p.cfg.BatchSize)
		if err := p.publishBatch(ctx, fresh[:n], res); err != nil {
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

// publishBatch publishes recs and commits every record Kafka acknowledged, even when the publish
// failed part-way. It is given ShutdownGrace beyond ctx to finish.
func (p *Poller) publishBatch(ctx context.Context, recs []schema.Record, res *CycleResult) error {
	gctx, cancel := graceContext(ctx, p.cfg.ShutdownGrace)
	defer cancel()
	acked, perr := p.pub.Publish(gctx, recs)
	var add []Published
	for i, r := range recs {
		if perr == nil || (i < len(acked) && acked[i]) {
			add = append(add, Published{ID: r.ID, FollowTime: r.FollowTime})
		}
	}
	if err := p.commitPublished(gctx, add); err != nil {
		return errors.Join(wrapPublish(perr, len(recs), 0), err)
	}
	res.Published += len(add)
	return wrapPublish(perr, len(recs), len(add))
}

// commitPublished commits records Kafka acknowledged, together with any that an earlier commit
// failed to save. When the commit fails, they are all kept in memory as unsaved: they count as
// published for the dedupe (so a disk that refuses commits does not make every cycle publish the
// same batch again) and are committed first thing next time. Only a crash loses them, and then
// they are published once more.
func (p *Poller) commitPublished(ctx context.Context, add []Published) error {
	add = append(p.unsaved, add...)
	if len(add) == 0 {
		return nil
	}
	change := Change{Floor: p.st.Floor, Watermark: p.st.Watermark, Add: add}
	for _, a := range add {
		change.Watermark = max(change.Watermark, a.FollowTime)
	}
	if err := p.commit(ctx, change); err != nil {
		p.unsaved = add
		for _, a := range add {
			p.unsavedIDs[a.ID] = struct{}{}
		}
		return err
	}
	p.cfg.Metrics.RecordsPublished(len(add))
	p.unsaved = nil
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
	// On a day boundary, so that the whole day before the window stays above the floor even where
	// a day lasts 25 hours (daylight saving time ends).
	floor := StartOfDay(p.windowStart(p.st).Add(-p.cfg.FloorMargin), p.cfg.Location).UnixMilli()
	if floor <= p.st.Floor {
		return nil
	}
	return p.commit(ctx, Change{Floor: floor, Watermark: p.st.Watermark})
}

// commit makes c durable, then applies it to the state in memory.
func (p *Poller) commit(ctx context.Context, c Change) error {
	began := p.cfg.Clock()
	if err := p.store.Commit(ctx, c); err != nil {
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
	p.st.UpdatedAt = p.cfg.Clock()
	p.cfg.Metrics.StateCommitted(time.UnixMilli(p.st.Watermark), p.cfg.Clock().Sub(began))
	return nil
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
