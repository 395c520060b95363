package poller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followpub/followpub/schema"
)

// DefaultBatchSize is Config.BatchSize's default. Each batch costs a produce round trip per
// partition and a fsync'd commit, so bigger batches backfill faster: 3,000 publishes a 200,000-record
// backfill ~25–35 % faster than 1,000, at the same peak memory (5,000 went over goal 5's 64 MiB in
// some runs); see docs/BENCHMARKS.md. It is also the most records a crash can publish twice.
const DefaultBatchSize = 3000

// Config tunes a Poller. The zero value of each field means its default.
type Config struct {
	// Location is the API's time zone, in which the date filter is evaluated.
	// Default: Asia/Shanghai.
	Location *time.Location
	// Interval is the time between cycle starts in Run. Default: 30s.
	Interval time.Duration
	// Lookback is how far behind the watermark a record may still arrive and be published.
	// Default: 1h.
	Lookback time.Duration
	// StartFrom is where a run with no state begins (see ParseStartFrom). Default: "today".
	StartFrom string
	// BatchSize is the number of records published, then committed, at a time: the most a crash
	// can duplicate. Default: DefaultBatchSize.
	BatchSize int
	// FloorMargin is how far the floor trails the window start, so that a record the API returns
	// just outside the window is still recognised, and the day that just left the window, which
	// a cycle may read once more (see FullReadEvery), is still above the floor. Default: 24h; at
	// least 24h.
	FloorMargin time.Duration
	// FullReadEvery is how often a cycle reads each day of the window in full although the source
	// can read just what a day gained (IncrementalSource): incremental reads count records, and a
	// record removed from the API while another arrives evens the count out; a full read finds
	// what that hid. The first cycle and the one after a failed cycle read in full too.
	// Default: 5m. Less than Interval: always read in full.
	FullReadEvery time.Duration
	// ShutdownGrace is how long a publish and its commit that are under way may still finish after
	// ctx is cancelled, so that a shutdown does not abandon what Kafka is acknowledging.
	// Default: 10s.
	ShutdownGrace time.Duration
	// Clock returns the current time. Default: time.Now.
	Clock func() time.Time
	// Logger receives the poller's logs. Default: none.
	Logger *slog.Logger
	// Metrics receives measurements. Default: none.
	Metrics Metrics
}

func (c *Config) setDefaults() error {
	if c.Location == nil {
		loc, err := time.LoadLocation("Asia/Shanghai")
		if err != nil {
			return fmt.Errorf("loading the default time zone: %w", err)
		}
		c.Location = loc
	}
	if c.Interval == 0 {
		c.Interval = 30 * time.Second
	}
	if c.Lookback == 0 {
		c.Lookback = time.Hour
	}
	if c.StartFrom == "" {
		c.StartFrom = "today"
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.FloorMargin == 0 {
		c.FloorMargin = 24 * time.Hour
	}
	if c.FullReadEvery == 0 {
		c.FullReadEvery = 5 * time.Minute
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 10 * time.Second
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Metrics == nil {
		c.Metrics = noMetrics{}
	}
	return nil
}

func (c *Config) validate() error {
	switch {
	case c.Interval < 0:
		return errors.New("poll interval must be positive")
	case c.Lookback < 0:
		return errors.New("lookback must not be negative")
	case c.BatchSize < 0:
		return errors.New("batch size must be positive")
	case c.FloorMargin < 24*time.Hour:
		return errors.New("floor margin must be at least 24h: the day that just left the window may be read once more")
	case c.FullReadEvery < 0:
		return errors.New("the full read interval must not be negative")
	}
	if _, err := ParseStartFrom(c.StartFrom, time.Now(), c.Location); err != nil {
		return err
	}
	return nil
}

// Poller runs cycles: fetch the window → drop what was published → publish the rest → commit.
type Poller struct {
	cfg   Config
	src   Source
	pub   Publisher
	store Store

	mu     sync.Mutex // serialises cycles and state changes; guards the fields below
	st     State
	loaded bool
	late   map[int64]struct{} // ids below the floor already reported, so each is logged once
	// seenMu guards st.Seen between the cycle, which commits, and the prefetcher, which asks
	// whether an id is known (incremental reads).
	seenMu sync.RWMutex
	// lastFull is when the last completed cycle that read in full began, and lastFullFrom the
	// start of its window; incrementalSince records that a cycle read incrementally since then;
	// failed records that the last cycle did not complete, so that the next reads in full.
	lastFull         time.Time
	lastFullFrom     time.Time
	incrementalSince bool
	failed           bool

	// unsaved holds records Kafka acknowledged whose commit failed (a full or read-only disk);
	// unsavedIDs indexes them. See commitPublished.
	unsaved    []Published
	unsavedIDs map[int64]struct{}

	lastSuccess atomic.Int64 // unix nanoseconds of the last completed cycle; 0 = none yet
}

// New returns a Poller over src, pub and store. src and pub may be nil for a Poller used only to
// inspect or move the state (Status, SetWatermark, Reset); Cycle then fails.
func New(cfg Config, src Source, pub Publisher, store Store) (*Poller, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("poller needs a store")
	}
	return &Poller{cfg: cfg, src: src, pub: pub, store: store, late: map[int64]struct{}{}, unsavedIDs: map[int64]struct{}{}}, nil
}

// CycleResult counts what one cycle did.
type CycleResult struct {
	Days        int // days of the window read completely
	Fetched     int // records the source returned
	Published   int // records Kafka acknowledged and the store committed
	Duplicates  int // records skipped, already published
	Late        int // records skipped, follow_time below the floor
	OutOfWindow int // records skipped, outside the days asked for
}

// Run runs a cycle every Interval until ctx is done, then returns nil. A failed cycle is logged and
// retried with exponential backoff (from Interval up to ten intervals, at most 5 minutes); it never
// advances the state past what Kafka acknowledged.
func (p *Poller) Run(ctx context.Context) error {
	failures := 0
	for {
		start := p.cfg.Clock()
		_, err := p.Cycle(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := p.cfg.Interval - p.cfg.Clock().Sub(start)
		if err != nil {
			failures++
			wait = p.backoff(failures)
			p.cfg.Logger.Error("cycle failed; retrying", "err", err, "failures", failures, "retry_in", wait.Round(time.Millisecond))
		} else {
			failures = 0
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff returns the wait after the n-th consecutive failed cycle: Interval doubled per failure,
// capped, with equal jitter so that many instances do not retry in step.
func (p *Poller) backoff(n int) time.Duration {
	ceiling := min(max(10*p.cfg.Interval, p.cfg.Interval), 5*time.Minute)
	d := p.cfg.Interval
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// Ready reports whether a cycle completed within the last three intervals (for /readyz).
func (p *Poller) Ready() bool {
	last := p.lastSuccess.Load()
	return last != 0 && p.cfg.Clock().Sub(time.Unix(0, last)) <= 3*p.cfg.Interval
}

// Cycle runs one complete cycle. It returns an error when the cycle could not complete; the state
// then holds exactly what Kafka acknowledged and the store committed before the failure. When ctx is
// cancelled the cycle stops after the batch in flight, which gets ShutdownGrace to finish.
func (p *Poller) Cycle(ctx context.Context) (CycleResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	began := p.cfg.Clock()
	res, err := p.cycle(ctx)
	p.failed = err != nil
	result := "ok"
	switch {
	case err != nil && ctx.Err() != nil:
		result = "interrupted"
	case err != nil:
		result = "failed"
	default:
		p.lastSuccess.Store(p.cfg.Clock().UnixNano())
	}
	p.cfg.Metrics.CycleDone(result, p.cfg.Clock().Sub(began))
	log := p.cfg.Logger.With("result", result, "days", res.Days, "fetched", res.Fetched, "published", res.Published,
		"duplicates", res.Duplicates, "late", res.Late, "watermark", msTime(p.st.Watermark), "duration", p.cfg.Clock().Sub(began).Round(time.Millisecond))
	if err != nil {
		log.Warn("cycle ended early", "err", err)
	} else {
		log.Info("cycle done")
	}
	return res, err
}

func (p *Poller) cycle(ctx context.Context) (CycleResult, error) {
	var res CycleResult
	if p.src == nil || p.pub == nil {
		return res, errors.New("poller has no source or publisher: it can only inspect the state")
	}
	if err := p.ensureState(ctx); err != nil {
		return res, err
	}
	if err := p.commitPublished(ctx, nil); err != nil {
		return res, fmt.Errorf("saving %d records published before the last commit failed: %w", len(p.unsaved), err)
	}
	window := p.windowStart(p.st)
	from := window
	now := p.cfg.Clock()
	_, canIncrement := p.src.(IncrementalSource)
	incremental := canIncrement && !p.failed && !p.lastFull.IsZero() && now.Sub(p.lastFull) < p.cfg.FullReadEvery
	if p.incrementalSince && p.lastFullFrom.Before(window) {
		// Days were read incrementally, and left the window, since the last complete full read:
		// read them in full once more, so that a record an incremental read could not see is not
		// left behind for good. Not below the floor's day, though: nothing there would be
		// published (after a backfill, lastFullFrom is its first day).
		from, incremental = p.lastFullFrom, false
		if floorDay := StartOfDay(msTime(p.st.Floor), p.cfg.Location); floorDay.After(from) {
			from = floorDay
		}
	}
	if incremental {
		p.incrementalSince = true // even if this cycle fails part-way: it may have read a day so
	}
	to := StartOfDay(now, p.cfg.Location)
	if to.Before(from) {
		to = from
	}
	days := daysBetween(from, to)
	progress := newProgress(p.cfg.Logger, p.cfg.Clock, days, p.src)

	fctx, stopFetching := context.WithCancel(ctx)
	fetches, fetching := p.prefetch(fctx, from, days, incremental)
	defer func() { stopFetching(); <-fetching }()
	for f := range fetches {
		if f.err != nil {
			return res, fmt.Errorf("reading the records of %s: %w", f.day.Format(DateLayout), f.err)
		}
		if err := p.handleDay(ctx, f.day, f.recs, &res); err != nil {
			return res, err
		}
		res.Days++
		progress.dayDone(f.day, len(f.recs))
		if ctx.Err() != nil && res.Days < days {
			return res, fmt.Errorf("stopped after %d of %d days: %w", res.Days, days, ctx.Err())
		}
	}
	if res.Days < days {
		// The reader stops without a word when ctx ends: the window was not read to its end.
		err := ctx.Err()
		if err == nil {
			err = errors.New("the reader stopped early")
		}
		return res, fmt.Errorf("stopped after %d of %d days: %w", res.Days, days, err)
	}
	if !incremental {
		// The window proper, not the days read once more before it: those are done with, and
		// remembering them would make every later cycle read them in full again.
		p.lastFull, p.lastFullFrom, p.incrementalSince = now, window, false
	}
	return res, nil
}

// fetched is one day of the window as the source returned it.
type fetched struct {
	day  time.Time
	recs []schema.Record
	err  error
}

// prefetchDays is how many days prefetch reads at once. A day's first page must be read alone
// (its total says how many pages follow) and its last round of pages rarely fills the source's
// concurrency; reading the next day meanwhile keeps the API busy (docs/BENCHMARKS.md, goal 3).
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
	// is published rather than after it: 3–5 MiB less peak RSS in a backfill (docs/BENCHMARKS.md).
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

// ensureState loads the state once, and creates it from StartFrom when there is none.
func (p *Poller) ensureState(ctx context.Context) error {
	if err := p.load(ctx); err != nil {
		return err
	}
	if p.st.Exists {
		return nil
	}
	start, err := ParseStartFrom(p.cfg.StartFrom, p.cfg.Clock(), p.cfg.Location)
	if err != nil {
		return err
	}
	if err := p.replace(ctx, start); err != nil {
		return err
	}
	p.cfg.Logger.Info("no state yet; starting", "start_from", start)
	return nil
}

// windowStart is the first day a cycle reads: the day containing W − Lookback, or the floor's day
// when that is later (nothing below the floor is ever published, so there is no point reading it).
func (p *Poller) windowStart(st State) time.Time {
	w := time.UnixMilli(st.Watermark).Add(-p.cfg.Lookback)
	if f := time.UnixMilli(st.Floor); f.After(w) {
		w = f
	}
	return StartOfDay(w, p.cfg.Location)
}

// graceContext returns a context that ends grace after parent ends (or when cancel is called), so
// that work under way can finish during a shutdown.
func graceContext(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(ctx, func() { t.Stop() })
	})
	return ctx, func() { stop(); cancel() }
}

func daysBetween(from, to time.Time) int {
	n := 1
	for d := from; d.Before(to); d = addDays(d, 1) {
		n++
	}
	return n
}

// addDays returns midnight n calendar days after day (in day's location).
func addDays(day time.Time, n int) time.Time {
	y, m, d := day.Date()
	return time.Date(y, m, d+n, 0, 0, 0, 0, day.Location())
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
