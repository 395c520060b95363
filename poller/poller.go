package poller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followpub/followpub/internal/retry"
)

// DefaultBatchSize is Config.BatchSize's default. Each batch costs a produce round trip per
// partition and a fsync'd commit, so bigger batches backfill faster, up to where peak memory
// grows; docs/BENCHMARKS.md has the measurements behind the choice.
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
	// leaves in the topic uncommitted, for the next start to read back. Default: DefaultBatchSize.
	BatchSize int
	// FloorMargin is how far the floor trails the window start, so that a record the API returns
	// just outside the window is still recognised, and the day that just left the window, which
	// a cycle may read once more (see FullReadEvery), is still above the floor. Default: 24h; at
	// least 24h.
	FloorMargin time.Duration
	// FullReadEvery is how often a cycle reads each day of the window in full although the source
	// can read just what a day gained (IncrementalSource): incremental reads count records, and a
	// record removed from the API while another arrives evens the count out; a full read finds
	// what that hid. The cycle after a failed one reads in full too, and so does a first cycle
	// unless the state records a full read less than FullReadEvery ago (State.FullRead).
	// Default: 5m. Less than Interval: always read in full.
	FullReadEvery time.Duration
	// ShutdownGrace is how long a publish and its commit that are under way may still finish after
	// ctx is cancelled, so that a shutdown does not abandon what Kafka is acknowledging.
	// Default: 10s.
	ShutdownGrace time.Duration
	// Fence, when set, is called before each publish: the publish is made only when it returns
	// no error, and its context ends at the time it returns, so that an instance that may have
	// lost its tenant writes nothing (internal/ownership). Default: none.
	Fence func(ctx context.Context) (time.Time, error)
	// Clock returns the current time. Default: time.Now.
	Clock func() time.Time
	// Logger receives the poller's logs. Default: none.
	Logger *slog.Logger
	// Metrics receives measurements. Default: none.
	Metrics Metrics
	// Progress receives the progress of cycles that read more than one day. Default: a log line
	// "backfill progress" on Logger at most every 5 s.
	Progress ProgressReporter
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
	if c.Progress == nil {
		c.Progress = &logProgress{log: c.Logger}
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
	// history is what planCycle remembers of earlier cycles.
	history readHistory

	// unsaved holds records Kafka acknowledged whose commit failed (a full or read-only disk), and
	// unsavedTail the tail that commit carried; unsavedIDs indexes them. See commitPublished.
	unsaved     []Published
	unsavedTail *Tail
	unsavedIDs  map[int64]struct{}
	// settled is true once this process read the topic back (settle) and no write failed since;
	// unsettled counts the writes that failed since the last read-back.
	settled   bool
	unsettled int

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
	Published   int // records this cycle put in the topic (Kafka acknowledged them, or its read-back found them)
	Duplicates  int // records skipped, already published
	Late        int // records skipped, follow_time below the floor
	OutOfWindow int // records skipped, outside the days asked for
}

// Run runs a cycle every Interval until ctx is done, then returns nil. A failed cycle is logged and
// retried with the project's backoff (internal/retry: from Interval up to ten intervals, at most 5
// minutes); it never advances the state past what Kafka acknowledged.
func (p *Poller) Run(ctx context.Context) error {
	policy := retry.New(p.cfg.Interval, min(10*p.cfg.Interval, 5*time.Minute))
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
			wait = policy.Next()
			p.cfg.Logger.Error("cycle failed; retrying", "err", err, "failures", failures, "retry_in", wait.Round(time.Millisecond))
		} else {
			failures = 0
			policy.Reset()
		}
		if retry.Sleep(ctx, wait) != nil {
			return nil
		}
	}
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
	p.history.Failed = err != nil
	result := "ok"
	switch {
	case err != nil && ctx.Err() != nil:
		result = "interrupted"
	case err != nil:
		result = "failed"
	default:
		end := p.cfg.Clock()
		p.lastSuccess.Store(end.UnixNano())
		p.cfg.Metrics.CycleSucceeded(end)
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
	if err := p.commitPublished(ctx, nil, nil, false); err != nil {
		return res, fmt.Errorf("saving %d records published before the last commit failed: %w", len(p.unsaved), err)
	}
	began := p.cfg.Clock()
	_, canIncrement := p.src.(IncrementalSource)
	canIncrement = canIncrement && p.cfg.FullReadEvery >= p.cfg.Interval // below it, every cycle reads in full
	pl := planCycle(planInput{
		Now: began, Window: p.windowStart(p.st), FloorDay: StartOfDay(msTime(p.st.Floor), p.cfg.Location),
		CanIncrement: canIncrement, FullEvery: p.cfg.FullReadEvery, Loc: p.cfg.Location, History: p.history,
	})
	p.history.started(pl)
	from, days := pl.From, pl.Days
	progress := newProgress(p.cfg.Progress, p.cfg.Clock, days, p.src)

	fctx, stopFetching := context.WithCancel(ctx)
	fetches, fetching := p.prefetch(fctx, from, days, pl.Incremental)
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
	p.history.completed(pl, began)
	if !pl.Incremental && canIncrement {
		// Recorded so that the next process to load the state (a restart, a takeover) may read
		// incrementally as this one would.
		full := FullRead{At: began.UnixMilli(), From: pl.Window.UnixMilli()}
		if err := p.commit(ctx, Change{Floor: p.st.Floor, Watermark: p.st.Watermark, FullRead: &full}); err != nil {
			return res, fmt.Errorf("recording the full read: %w", err)
		}
	}
	return res, nil
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

// fenced returns ctx bounded by the time Config.Fence allows publishing until, or the fence's
// refusal.
func (p *Poller) fenced(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if p.cfg.Fence == nil {
		return ctx, func() {}, nil
	}
	until, err := p.cfg.Fence(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("not publishing: %w", err)
	}
	ctx, cancel := context.WithDeadline(ctx, until)
	return ctx, cancel, nil
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

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
