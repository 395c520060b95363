package poller_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/clocktest"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/poller/pollertest"
	"github.com/followpub/followpub/schema"
)

// sh returns a time in Asia/Shanghai.
func sh(t testing.TB, y int, mo time.Month, d, h, mi, s, ms int) time.Time {
	return time.Date(y, mo, d, h, mi, s, ms*1e6, mustShanghai(t))
}

func TestFirstRunStartFrom(t *testing.T) {
	loc := mustShanghai(t)
	now := sh(t, 2024, 2, 8, 10, 0, 0, 0)
	tests := []struct {
		startFrom string
		want      []int64 // ids published, of the records below
	}{
		{"today", []int64{3, 4, 5}},
		{"now", []int64{5}},
		{"2024-02-07", []int64{2, 3, 4, 5}},
		{"2024-02-08T01:00:00Z", []int64{4, 5}}, // 09:00 Shanghai
		{"3h", []int64{4, 5}},                   // from 07:00 Shanghai
		{"48h", []int64{1, 2, 3, 4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.startFrom, func(t *testing.T) {
			r := newRig(t, now, func(c *poller.Config) { c.StartFrom = tt.startFrom })
			recs := map[int64]schema.Record{
				1: r.api.add(1, sh(t, 2024, 2, 6, 12, 0, 0, 0)),
				2: r.api.add(2, sh(t, 2024, 2, 7, 23, 59, 59, 999)),
				3: r.api.add(3, sh(t, 2024, 2, 8, 0, 0, 0, 0)),
				4: r.api.add(4, sh(t, 2024, 2, 8, 9, 30, 0, 0)),
				5: r.api.add(5, time.Date(2024, 2, 8, 2, 0, 0, 1e6, time.UTC).In(loc)), // 10:00:00.001
			}
			r.cycle()
			var want []schema.Record
			for _, id := range tt.want {
				want = append(want, recs[id])
			}
			r.assertExactlyOnce(want...)
		})
	}
}

func TestOrderAndNoDuplicatesAcrossCycles(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), nil)
	var all []schema.Record
	for i := range 20 {
		// Several records share a follow_time so that the id breaks the tie.
		all = append(all, r.api.add(int64(100-i), sh(t, 2024, 2, 8, 1+i/3, 0, 0, 0)))
	}
	r.cycle()
	got := r.kafka.published()
	if !slices.IsSortedFunc(got, schema.Compare) {
		t.Fatalf("published out of (follow_time, id) order: %v", ids(got))
	}
	for range 3 {
		res := r.cycle()
		if res.Published != 0 || res.Duplicates != 20 {
			t.Fatalf("a later cycle published %d and skipped %d, want 0 and 20", res.Published, res.Duplicates)
		}
	}
	// A clean restart remembers everything.
	r.newPoller(nil)
	r.cycle()
	r.assertExactlyOnce(all...)
}

func TestWindowAcrossShanghaiMidnight(t *testing.T) {
	// It is 00:30 on Feb 8 in Shanghai (16:30 UTC on Feb 7); the watermark is 23:50 on Feb 7, so
	// W − 1h lies on Feb 7 and the window spans both days.
	r := newRig(t, sh(t, 2024, 2, 7, 23, 0, 0, 0), func(c *poller.Config) { c.StartFrom = "now" })
	first := r.api.add(1, sh(t, 2024, 2, 7, 23, 50, 0, 0))
	r.cycle()
	r.clock.Set(sh(t, 2024, 2, 8, 0, 30, 0, 0))
	beforeMidnight := r.api.add(2, time.Date(2024, 2, 7, 15, 59, 59, 999e6, time.UTC)) // 23:59:59.999 Shanghai
	atMidnight := r.api.add(3, time.Date(2024, 2, 7, 16, 0, 0, 0, time.UTC))           // 00:00:00.000 Shanghai
	late := r.api.add(4, sh(t, 2024, 2, 7, 23, 10, 0, 0))                              // late, but within the lookback
	r.api.calls = nil
	r.cycle()
	slices.Sort(r.api.calls) // days are read two at a time
	if want := []string{"2024-02-07..2024-02-07", "2024-02-08..2024-02-08"}; !slices.Equal(r.api.calls, want) {
		t.Fatalf("days read = %v, want %v", r.api.calls, want)
	}
	r.assertExactlyOnce(first, beforeMidnight, atMidnight, late)

	// An hour later the watermark (00:00) minus the lookback is still on Feb 7...
	r.clock.Set(sh(t, 2024, 2, 8, 1, 30, 0, 0))
	r.api.calls = nil
	r.cycle()
	if len(r.api.calls) != 2 {
		t.Fatalf("days read = %v, want Feb 7 and 8", r.api.calls)
	}
	// ...until a record after 01:00 moves it onto Feb 8; then only Feb 8 is read.
	next := r.api.add(5, sh(t, 2024, 2, 8, 1, 20, 0, 0))
	r.cycle()
	r.api.calls = nil
	r.cycle()
	if want := []string{"2024-02-08..2024-02-08"}; !slices.Equal(r.api.calls, want) {
		t.Fatalf("days read = %v, want %v", r.api.calls, want)
	}
	r.assertExactlyOnce(first, beforeMidnight, atMidnight, late, next)
}

func TestPublisherFailingMidBatch(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), func(c *poller.Config) { c.BatchSize = 4 })
	var all []schema.Record
	for i := range 10 {
		all = append(all, r.api.add(int64(i+1), sh(t, 2024, 2, 8, 1, i, 0, 0)))
	}
	r.kafka.failAfter = 6 // the first batch of 4, then 2 of the second
	res, err := r.p.Cycle(context.Background())
	if err == nil {
		t.Fatal("a cycle whose publish failed succeeded")
	}
	if res.Published != 6 {
		t.Fatalf("committed %d records, want the 6 acknowledged", res.Published)
	}
	st, _ := r.store.Load(context.Background())
	if want := all[5].FollowTime; st.Watermark != want || len(st.Seen) != 6 {
		t.Fatalf("after the failure: watermark %d seen %d, want %d and 6", st.Watermark, len(st.Seen), want)
	}
	r.kafka.failAfter = -1
	r.cycle()
	r.assertExactlyOnce(all...)
}

func TestNoOrderAcrossPartialFailure(t *testing.T) {
	// A publisher that acknowledges a record out of the prefix (another partition) must still see
	// that record committed, and not published again.
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), func(c *poller.Config) { c.BatchSize = 10 })
	var all []schema.Record
	for i := range 4 {
		all = append(all, r.api.add(int64(i+1), sh(t, 2024, 2, 8, 1, i, 0, 0)))
	}
	p := &oddAcker{k: r.kafka}
	cfg := poller.Config{Location: r.loc, Clock: r.clock.Now, StartFrom: "today"}
	pl, err := poller.New(cfg, r.api, p, r.store)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pl.Cycle(context.Background()); err == nil {
		t.Fatal("want the partial failure reported")
	}
	p.healed = true
	if _, err := pl.Cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.assertExactlyOnce(all...)
}

// oddAcker acknowledges only the records at odd positions until healed.
type oddAcker struct {
	k      *fakeKafka
	healed bool
}

func (o *oddAcker) Publish(ctx context.Context, recs []schema.Record) (poller.Written, error) {
	if o.healed {
		return o.k.Publish(ctx, recs)
	}
	acked := make([]bool, len(recs))
	var sent []schema.Record
	for i := range recs {
		if i%2 == 1 {
			acked[i] = true
			sent = append(sent, recs[i])
		}
	}
	_, _ = o.k.Publish(ctx, sent)
	return poller.Written{Acked: acked}, errors.New("partition leader gone")
}

func (o *oddAcker) ReadBack(ctx context.Context, from poller.Tail) (poller.ReadBack, error) {
	return o.k.ReadBack(ctx, from)
}

func TestLateRecords(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), func(c *poller.Config) { c.StartFrom = "2024-02-08T03:00:00+08:00" })
	a := r.api.add(1, sh(t, 2024, 2, 8, 11, 0, 0, 0))
	r.cycle()
	// Late but within the window: published.
	inside := r.api.add(2, sh(t, 2024, 2, 8, 4, 0, 0, 0))
	// Before the floor (START_FROM): skipped, counted once, never published.
	below := r.api.add(3, sh(t, 2024, 2, 8, 2, 0, 0, 0))
	var buf strings.Builder
	r.newPoller(func(c *poller.Config) {
		c.StartFrom = "2024-02-08T03:00:00+08:00"
		c.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	})
	r.cycle()
	r.cycle()
	r.assertExactlyOnce(a, inside)
	if r.late.late != 1 {
		t.Fatalf("late records counted %d times, want once (id %d)", r.late.late, below.ID)
	}
	if line := lineWith(buf.String(), "records older than the floor skipped"); !strings.Contains(line, "records=1") ||
		!strings.Contains(line, "day=2024-02-08") {
		t.Fatalf("no warning naming the day and the count of late records; log:\n%s", buf.String())
	}
}

func TestTheSameRecordTwiceInOneReadIsPublishedOnce(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), nil)
	a := r.api.add(1, sh(t, 2024, 2, 8, 11, 0, 0, 0))
	b := r.api.add(2, sh(t, 2024, 2, 8, 11, 0, 0, 0))
	r.api.outside = []schema.Record{a, b, a} // a page repeated: the same records once more
	res := r.cycle()
	r.assertExactlyOnce(a, b)
	if res.Published != 2 {
		t.Fatalf("cycle published %d, want 2", res.Published)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	loc := mustShanghai(t)
	store := &pollertest.MemStore{}
	for _, tc := range []struct {
		name string
		cfg  poller.Config
		want string
	}{
		{"negative interval", poller.Config{Location: loc, Interval: -time.Second}, "poll interval"},
		{"negative lookback", poller.Config{Location: loc, Lookback: -time.Hour}, "lookback"},
		{"negative batch", poller.Config{Location: loc, BatchSize: -1}, "batch size"},
		{"floor margin under a day", poller.Config{Location: loc, FloorMargin: time.Hour}, "floor margin"},
		{"negative full read", poller.Config{Location: loc, FullReadEvery: -time.Minute}, "full read"},
		{"bad start", poller.Config{Location: loc, StartFrom: "last tuesday"}, "last tuesday"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := poller.New(tc.cfg, nil, nil, store)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := poller.New(poller.Config{Location: loc}, nil, nil, nil); err == nil {
		t.Fatal("New without a store succeeded")
	}
}

func TestResetStartsOverFromStartFrom(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), func(c *poller.Config) { c.StartFrom = "2024-02-08" })
	a := r.api.add(1, sh(t, 2024, 2, 8, 8, 0, 0, 0))
	r.cycle()
	if err := r.p.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := r.p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Exists || st.Seen != 0 || st.WatermarkMS != sh(t, 2024, 2, 8, 0, 0, 0, 0).UnixMilli() {
		t.Fatalf("status after reset = %+v, want no state, a watermark at START_FROM", st)
	}
	r.cycle() // from START_FROM again: a once more
	if n := r.kafka.counts()[a.ID]; n != 2 {
		t.Fatalf("after reset, id %d published %d times in all, want 2", a.ID, n)
	}
}

func TestRecordsOutsideTheRequestedDaysAreSkipped(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), nil)
	a := r.api.add(1, sh(t, 2024, 2, 8, 11, 0, 0, 0))
	// A hostile answer: a record from 2100 that would otherwise drag the watermark into the future.
	r.api.outside = []schema.Record{{ID: 99, FollowTime: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), Raw: []byte(`{"id":99}`)}}
	r.cycle()
	r.api.outside = nil
	b := r.api.add(2, sh(t, 2024, 2, 8, 11, 30, 0, 0))
	r.cycle()
	r.assertExactlyOnce(a, b)
	if r.late.outside != 1 {
		t.Fatalf("out-of-window records counted %d, want 1", r.late.outside)
	}
}

func TestReplay(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 10, 12, 0, 0, 0), func(c *poller.Config) { c.StartFrom = "2024-02-07" })
	var all []schema.Record
	for d := 7; d <= 10; d++ {
		all = append(all, r.api.add(int64(d), sh(t, 2024, 2, d, 8, 0, 0, 0)))
	}
	r.cycle()
	r.assertExactlyOnce(all...)
	// Replay from Feb 9: those records once more, nothing older.
	if err := r.p.SetWatermark(context.Background(), sh(t, 2024, 2, 9, 0, 0, 0, 0)); err != nil {
		t.Fatal(err)
	}
	r.cycle()
	r.cycle()
	counts := r.kafka.counts()
	for _, rec := range all {
		want := 1
		if rec.ID >= 9 {
			want = 2
		}
		if counts[rec.ID] != want {
			t.Errorf("id %d published %d times, want %d", rec.ID, counts[rec.ID], want)
		}
	}
	st, err := r.p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Seen != 2 || !st.Exists {
		t.Fatalf("status after replay = %+v, want 2 ids seen", st)
	}
}

func TestBackfillResumesWhereItStopped(t *testing.T) {
	r := newRig(t, sh(t, 2024, 1, 30, 12, 0, 0, 0), func(c *poller.Config) { c.StartFrom = "2024-01-01"; c.BatchSize = 2 })
	var all []schema.Record
	for d := 1; d <= 30; d++ {
		for h := range 3 {
			all = append(all, r.api.add(int64(d*10+h), sh(t, 2024, 1, d, 6+h, 0, 0, 0)))
		}
	}
	// Kafka fails during day 9: 8 days × 3 records, then 1 of day 9.
	r.kafka.failAfter = 8*3 + 1
	if _, err := r.p.Cycle(context.Background()); err == nil {
		t.Fatal("want the cycle to fail on day 9")
	}
	st, _ := r.store.Load(context.Background())
	if got := time.UnixMilli(st.Watermark).In(r.loc).Day(); got != 9 {
		t.Fatalf("after the crash the watermark is on day %d, want day 9", got)
	}
	// The floor moved behind the window as the days completed, so the remembered ids stay bounded.
	if len(st.Seen) >= 8*3 {
		t.Fatalf("%d ids remembered after 8 days, want fewer: the floor did not follow the window", len(st.Seen))
	}
	// A restarted process resumes at day 9, not at day 1.
	r.kafka.failAfter = -1
	r.newPoller(func(c *poller.Config) { c.StartFrom = "2024-01-01" })
	r.api.calls = nil
	r.cycle()
	// Days are read two at a time, so the calls' order is not the days' order: the first day read
	// is the earliest.
	if first := slices.Min(r.api.calls); first != "2024-01-09..2024-01-09" {
		t.Fatalf("resumed at %s, want 2024-01-09", first)
	}
	r.assertExactlyOnce(all...)
}

func TestFloorFollowsTheWindow(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), func(c *poller.Config) { c.StartFrom = "2024-02-01" })
	for d := 1; d <= 8; d++ {
		r.api.add(int64(d), sh(t, 2024, 2, d, 8, 0, 0, 0))
	}
	r.cycle()
	st, err := r.p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// W = Feb 8 08:00; the window starts Feb 8; the floor trails it by a day: Feb 7 00:00.
	if want := sh(t, 2024, 2, 7, 0, 0, 0, 0).UnixMilli(); st.FloorMS != want {
		t.Fatalf("floor = %s, want %s", st.Floor, time.UnixMilli(want).UTC())
	}
	if st.Seen != 2 {
		t.Fatalf("seen = %d, want 2 (Feb 7 and 8)", st.Seen)
	}
	if st.WindowStart != sh(t, 2024, 2, 8, 0, 0, 0, 0).Format(time.RFC3339) {
		t.Fatalf("window_start = %s", st.WindowStart)
	}
	// Each day's floor rides on the commit of its last batch: one commit a day, not two (plus the
	// commit of the read-back's tail before the first publish).
	if r.store.Commits != 1+8 {
		t.Fatalf("%d commits for 8 days of one batch each, want 9", r.store.Commits)
	}
}

func TestStoreFailureStopsPublishing(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), func(c *poller.Config) { c.BatchSize = 2 })
	var all []schema.Record
	for i := range 6 {
		all = append(all, r.api.add(int64(i+1), sh(t, 2024, 2, 8, 1, i, 0, 0)))
	}
	r.cycle() // creates the state
	r.api.recs = nil
	for i := range 6 {
		all[i] = r.api.add(int64(i+1), sh(t, 2024, 2, 8, 1, i, 0, 0))
	}
	more := []schema.Record{r.api.add(7, sh(t, 2024, 2, 8, 2, 0, 0, 0)), r.api.add(8, sh(t, 2024, 2, 8, 2, 1, 0, 0)), r.api.add(9, sh(t, 2024, 2, 8, 2, 2, 0, 0))}
	r.store.Fail(errors.New("no space left on device"))
	before := len(r.kafka.published())
	_, err := r.p.Cycle(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("cycle error = %v, want the disk error", err)
	}
	// One batch went out and could not be committed; nothing after it was published.
	if got := len(r.kafka.published()) - before; got != 2 {
		t.Fatalf("published %d records while the store failed, want one batch of 2", got)
	}
	// More failed cycles while the disk stays full publish nothing more: the acknowledged batch is
	// remembered in memory and its commit retried before anything new goes out.
	for range 3 {
		if _, err := r.p.Cycle(context.Background()); err == nil {
			t.Fatal("a cycle succeeded while the store fails")
		}
	}
	if got := len(r.kafka.published()) - before; got != 2 {
		t.Fatalf("failed cycles published %d records in all, want the one batch of 2", got)
	}
	// Each failed cycle counted its refused commit: the first the batch's, the next three the
	// retried commit of that batch, which fails before anything is published.
	if r.late.commitErrors != 4 {
		t.Errorf("StateCommitFailed was called %d times over 4 cycles with a refusing store, want 4", r.late.commitErrors)
	}
	r.store.Fail(nil)
	r.cycle()
	if r.late.commitErrors != 4 {
		t.Errorf("a cycle with a healthy store counted %d more commit errors", r.late.commitErrors-4)
	}
	counts := r.kafka.counts()
	for _, rec := range append(all, more...) {
		if counts[rec.ID] != 1 {
			t.Errorf("id %d published %d times, want once", rec.ID, counts[rec.ID])
		}
	}
	st, _ := r.store.Load(context.Background())
	for _, rec := range more {
		if _, ok := st.Seen[rec.ID]; !ok {
			t.Errorf("id %d is not in the store after the disk recovered", rec.ID)
		}
	}
}

func TestCycleCancelledWhileReadingIsNotComplete(t *testing.T) {
	// A backfill of many days, cancelled while the reader is between days: the cycle must not
	// report success (run --once would exit 0 with days unread).
	for range 20 {
		r := newRig(t, sh(t, 2024, 1, 20, 12, 0, 0, 0), func(c *poller.Config) { c.StartFrom = "2024-01-01" })
		for d := 1; d <= 20; d++ {
			r.api.add(int64(d), sh(t, 2024, 1, d, 8, 0, 0, 0))
		}
		ctx, cancel := context.WithCancel(context.Background())
		r.api.onFetch = func(n int) {
			if n == 3 {
				cancel()
			}
		}
		res, err := r.p.Cycle(ctx)
		if err == nil {
			t.Fatalf("a cancelled cycle that read %d of 20 days reported success", res.Days)
		}
		if r.p.Ready() && res.Days < 20 {
			t.Fatal("a cancelled cycle made the poller ready")
		}
	}
}

func TestShutdownLetsTheBatchInFlightFinish(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), func(c *poller.Config) { c.BatchSize = 2; c.ShutdownGrace = 5 * time.Second })
	for i := range 6 {
		r.api.add(int64(i+1), sh(t, 2024, 2, 8, 1, i, 0, 0))
	}
	block := make(chan struct{})
	r.kafka.block = block
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := r.p.Cycle(ctx); done <- err }()
	time.Sleep(50 * time.Millisecond) // the first batch is now waiting for Kafka
	cancel()
	time.Sleep(50 * time.Millisecond)
	close(block) // Kafka acknowledges after the signal
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cycle error = %v, want context.Canceled", err)
	}
	st, _ := r.store.Load(context.Background())
	if len(st.Seen) != 2 || len(r.kafka.published()) != 2 {
		t.Fatalf("after shutdown: %d committed, %d published; want the one batch in flight (2) both", len(st.Seen), len(r.kafka.published()))
	}
}

func TestSourceFailureLeavesStateAlone(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), nil)
	r.api.add(1, sh(t, 2024, 2, 8, 1, 0, 0, 0))
	r.cycle()
	succeeded := r.clock.Now()
	if !r.late.lastSuccess.Equal(succeeded) {
		t.Fatalf("CycleSucceeded reported %s, want the end of the cycle, %s", r.late.lastSuccess, succeeded)
	}
	r.clock.Add(time.Second)
	before, _ := r.store.Load(context.Background())
	r.api.add(2, sh(t, 2024, 2, 8, 2, 0, 0, 0))
	r.api.fail = errors.New("HTTP 500")
	if _, err := r.p.Cycle(context.Background()); err == nil {
		t.Fatal("want the cycle to fail")
	}
	after, _ := r.store.Load(context.Background())
	if after.Watermark != before.Watermark || len(after.Seen) != len(before.Seen) {
		t.Fatal("a failed cycle changed the state")
	}
	if !r.late.lastSuccess.Equal(succeeded) {
		t.Fatalf("a failed cycle reported a success at %s", r.late.lastSuccess)
	}
	if r.p.Ready() {
		// One interval since the last success: within three, so Ready stays true.
	} else {
		t.Fatal("ready went false within three intervals of a success")
	}
	r.clock.Set(succeeded.Add(4 * time.Second))
	if r.p.Ready() {
		t.Fatal("still ready four intervals after the last success")
	}
}

func TestRunRetriesAndStops(t *testing.T) {
	loc := mustShanghai(t)
	r := newRig(t, time.Now(), func(c *poller.Config) { c.Clock = nil; c.Interval = 20 * time.Millisecond })
	rec := r.api.add(1, time.Now().In(loc))
	r.api.fail = errors.New("HTTP 503")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.p.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	r.api.mu.Lock()
	r.api.fail = nil
	r.api.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.kafka.published()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v, want nil after cancel", err)
	}
	r.assertExactlyOnce(rec)
}

func ids(recs []schema.Record) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// incAPI is a fakeAPI that can also read what a day gained, as wshoto.Client does: newest
// first, two records a page, until it found total − known unknown records (or proved a removal).
type incAPI struct {
	*fakeAPI
	newCalls int
}

func (a *incAPI) FetchNew(ctx context.Context, day time.Time, known int, isKnown func(int64) bool) ([]schema.Record, error) {
	a.newCalls++
	all, err := a.Fetch(ctx, day, day)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(x, y schema.Record) int { return schema.Compare(y, x) })
	want := len(all) - known
	var found []schema.Record
	for i, r := range all {
		if !isKnown(r.ID) {
			found = append(found, r)
		}
		if len(found) > want {
			return all, nil // the counts prove a removal: the whole day
		}
		if len(found) == want && i%2 == 1 {
			return found, nil // the end of a page, and the count made up
		}
	}
	return all, nil
}

func TestIncrementalReadsAndThePeriodicFullRead(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), nil)
	inc := &incAPI{fakeAPI: r.api}
	p, err := poller.New(poller.Config{Location: r.loc, Clock: r.clock.Now, FullReadEvery: 10 * time.Minute}, inc, r.kafka, r.store)
	if err != nil {
		t.Fatal(err)
	}
	cycle := func() {
		t.Helper()
		if _, err := p.Cycle(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	a := r.api.add(1, sh(t, 2024, 2, 8, 1, 0, 0, 0))
	b := r.api.add(2, sh(t, 2024, 2, 8, 2, 0, 0, 0))
	cycle() // cycle 1: nothing known yet, a full read
	c := r.api.add(3, sh(t, 2024, 2, 8, 3, 0, 0, 0))
	cycle() // cycle 2: incremental, finds c
	if inc.newCalls != 1 {
		t.Fatalf("%d incremental reads, want 1", inc.newCalls)
	}
	r.assertExactlyOnce(a, b, c)

	// A known record goes away as a new one arrives: the counts even out and the incremental read
	// cannot see the new one. The full read (ten minutes after the last) finds it.
	r.api.mu.Lock()
	r.api.recs = slices.DeleteFunc(r.api.recs, func(x schema.Record) bool { return x.ID == 1 })
	r.api.mu.Unlock()
	d := r.api.add(4, sh(t, 2024, 2, 8, 0, 30, 0, 0)) // a late arrival: the oldest of the day, last
	r.clock.Set(sh(t, 2024, 2, 8, 12, 5, 0, 0))
	cycle() // five minutes on: incremental, blind to d
	if inc.newCalls != 2 || r.kafka.counts()[4] != 0 {
		t.Fatalf("incremental reads %d, d published %d times: want 2 and 0", inc.newCalls, r.kafka.counts()[4])
	}
	r.clock.Set(sh(t, 2024, 2, 8, 12, 10, 0, 0))
	cycle() // ten minutes after the last full read: full
	r.assertExactlyOnce(a, b, c, d)
	if inc.newCalls != 2 {
		t.Fatalf("the cycle ten minutes on read incrementally; want a full read")
	}
}

// TestALoadedStateReadsAsItsLastOwnerWould: a poller that loads another process's state (a
// restart, a takeover) reads incrementally while the full read the state records is recent, and in
// full once it is due; FullReadEvery below the interval keeps every cycle full.
func TestALoadedStateReadsAsItsLastOwnerWould(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), nil)
	inc := &incAPI{fakeAPI: r.api}
	cfg := poller.Config{Location: r.loc, Clock: r.clock.Now, Interval: 30 * time.Second, FullReadEvery: 5 * time.Minute}
	cycle := func(cfg poller.Config) { t.Helper(); r.cycleAsNewProcess(cfg, inc) }
	a := r.api.add(1, sh(t, 2024, 2, 8, 1, 0, 0, 0))
	cycle(cfg) // the first owner: no full read recorded, so in full
	if inc.newCalls != 0 {
		t.Fatalf("%d incremental reads in a first cycle, want 0", inc.newCalls)
	}
	b := r.api.add(2, sh(t, 2024, 2, 8, 2, 0, 0, 0))
	r.clock.Set(sh(t, 2024, 2, 8, 12, 1, 0, 0))
	cycle(cfg) // the next owner, a minute on: incremental
	if inc.newCalls != 1 {
		t.Fatalf("%d incremental reads by the next owner a minute after the full read, want 1", inc.newCalls)
	}
	r.assertExactlyOnce(a, b)
	c := r.api.add(3, sh(t, 2024, 2, 8, 3, 0, 0, 0))
	r.clock.Set(sh(t, 2024, 2, 8, 12, 5, 0, 0))
	cycle(cfg) // five minutes after the full read: in full
	if inc.newCalls != 1 {
		t.Fatalf("the owner five minutes after the full read read incrementally; want a full read")
	}
	r.assertExactlyOnce(a, b, c)

	strict := cfg
	strict.Interval, strict.FullReadEvery = time.Second, time.Nanosecond
	d := r.api.add(4, sh(t, 2024, 2, 8, 4, 0, 0, 0))
	r.clock.Set(sh(t, 2024, 2, 8, 12, 5, 1, 0))
	cycle(strict)
	if inc.newCalls != 1 {
		t.Fatalf("a first cycle with FullReadEvery below the interval read incrementally; want a full read")
	}
	r.assertExactlyOnce(a, b, c, d)
}

// TestOwnersOfOneCycleEachStillReadInFull: owners that each run one cycle (run --once, a tenant
// that moves every cycle) read in full at least every FullReadEvery, so a record an incremental
// read cannot see (a removal evened the count out) is published.
func TestOwnersOfOneCycleEachStillReadInFull(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), nil)
	inc := &incAPI{fakeAPI: r.api}
	cfg := poller.Config{Location: r.loc, Clock: r.clock.Now, Interval: 30 * time.Second, FullReadEvery: 5 * time.Minute}
	cycle := func() { t.Helper(); r.cycleAsNewProcess(cfg, inc) }
	a := r.api.add(1, sh(t, 2024, 2, 8, 1, 0, 0, 0))
	b := r.api.add(2, sh(t, 2024, 2, 8, 2, 0, 0, 0))
	c := r.api.add(3, sh(t, 2024, 2, 8, 3, 0, 0, 0))
	cycle()
	r.api.mu.Lock()
	r.api.recs = slices.DeleteFunc(r.api.recs, func(x schema.Record) bool { return x.ID == 1 })
	r.api.mu.Unlock()
	d := r.api.add(4, sh(t, 2024, 2, 8, 0, 30, 0, 0))
	for i := 1; i <= 20; i++ { // 20 one-cycle owners, a minute apart: 4 × FullReadEvery
		r.clock.Set(sh(t, 2024, 2, 8, 12, i, 0, 0))
		cycle()
	}
	if n := r.kafka.counts()[d.ID]; n != 1 {
		t.Errorf("d published %d times after 20 minutes of one-cycle owners (%d incremental reads): want once", n, inc.newCalls)
	}
	if inc.newCalls == 0 || inc.newCalls == 20 {
		t.Errorf("%d of 20 owners read incrementally; want some but not all", inc.newCalls)
	}
	r.assertExactlyOnce(a, b, c, d)
}

func TestAFailedCycleIsFollowedByAFullRead(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), nil)
	inc := &incAPI{fakeAPI: r.api}
	p, err := poller.New(poller.Config{Location: r.loc, Clock: r.clock.Now, FullReadEvery: time.Hour}, inc, r.kafka, r.store)
	if err != nil {
		t.Fatal(err)
	}
	r.api.add(1, sh(t, 2024, 2, 8, 1, 0, 0, 0))
	if _, err := p.Cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.kafka.failAfter = 0
	r.api.add(2, sh(t, 2024, 2, 8, 2, 0, 0, 0))
	if _, err := p.Cycle(context.Background()); err == nil {
		t.Fatal("want the publish failure")
	}
	calls := inc.newCalls
	r.kafka.failAfter = -1
	if _, err := p.Cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if inc.newCalls != calls {
		t.Fatal("the cycle after a failure read incrementally; want a full read")
	}
}

// pagedAPI is a fakeAPI that counts one page per Fetch, as a PageCounter.
type pagedAPI struct{ *fakeAPI }

func (a pagedAPI) PagesRead() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int64(len(a.calls))
}

func TestBackfillReportsProgress(t *testing.T) {
	r := newRig(t, sh(t, 2024, 1, 3, 12, 0, 0, 0), nil)
	for d := 1; d <= 3; d++ {
		r.api.add(int64(d), sh(t, 2024, 1, d, 8, 0, 0, 0))
	}
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	p, err := poller.New(poller.Config{Location: r.loc, Clock: r.clock.Now, StartFrom: "2024-01-01", Logger: log}, pagedAPI{r.api}, r.kafka, r.store)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	line := lineWith(buf.String(), "backfill progress")
	for _, want := range []string{"days_done=3", "days=3", "records=3", "pages=3", "records_per_s=", "time_left="} {
		if !strings.Contains(line, want) {
			t.Fatalf("progress line %q lacks %q", line, want)
		}
	}
}

// recordingProgress is a ProgressReporter that keeps every report and moves the clock on by a
// second after each, as if each day took one to read.
type recordingProgress struct {
	clock   *clocktest.Clock
	reports []poller.Progress
}

func (r *recordingProgress) Report(p poller.Progress) {
	r.reports = append(r.reports, p)
	r.clock.Add(time.Second)
}

func TestBackfillReportsProgressToTheReporter(t *testing.T) {
	r := newRig(t, sh(t, 2024, 1, 3, 12, 0, 0, 0), nil)
	id := int64(0)
	for d := 1; d <= 3; d++ {
		for range d { // d records on day d
			id++
			r.api.add(id, sh(t, 2024, 1, d, 8, int(id), 0, 0))
		}
	}
	rep := &recordingProgress{clock: r.clock}
	p, err := poller.New(poller.Config{Location: r.loc, Clock: r.clock.Now, StartFrom: "2024-01-01", Progress: rep}, pagedAPI{r.api}, r.kafka, r.store)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []poller.Progress{
		{Day: sh(t, 2024, 1, 1, 0, 0, 0, 0), DaysDone: 1, Days: 3, Records: 1, Pages: 1, Elapsed: 0, Rate: 0, Left: 0},
		{Day: sh(t, 2024, 1, 2, 0, 0, 0, 0), DaysDone: 2, Days: 3, Records: 3, Pages: 2, Elapsed: time.Second, Rate: 3, Left: 500 * time.Millisecond},
		{Day: sh(t, 2024, 1, 3, 0, 0, 0, 0), DaysDone: 3, Days: 3, Records: 6, Pages: 3, Elapsed: 2 * time.Second, Rate: 3, Left: 0},
	}
	if len(rep.reports) != len(want) {
		t.Fatalf("got %d reports, want one per day (%d): %+v", len(rep.reports), len(want), rep.reports)
	}
	for i, w := range want {
		g := rep.reports[i]
		if !g.Day.Equal(w.Day) || g.DaysDone != w.DaysDone || g.Days != w.Days || g.Records != w.Records ||
			g.Elapsed != w.Elapsed || g.Rate != w.Rate || g.Left != w.Left {
			t.Errorf("report %d = %+v, want %+v", i+1, g, w)
		}
		// Days are read ahead of the one being published, so pages can run ahead of DaysDone.
		if g.Pages < w.Pages || g.Pages > 3 {
			t.Errorf("report %d: %d pages read, want %d to 3 (one a day)", i+1, g.Pages, w.Pages)
		}
	}

	// A one-day cycle reports nothing.
	rep.reports = nil
	if _, err := p.Cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rep.reports) != 0 {
		t.Errorf("a cycle of one day reported progress: %+v", rep.reports)
	}
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func TestADayLeavingTheWindowIsReadInFullOnceMore(t *testing.T) {
	// An incremental read cannot see a record whose arrival a removal masked. When the window
	// moves on before the next periodic full read, the day that left it is read in full once more.
	r := newRig(t, sh(t, 2024, 2, 8, 0, 30, 0, 0), func(c *poller.Config) { c.StartFrom = "2024-02-07" })
	inc := &incAPI{fakeAPI: r.api}
	p, err := poller.New(poller.Config{Location: r.loc, Clock: r.clock.Now, StartFrom: "2024-02-07", FullReadEvery: time.Hour}, inc, r.kafka, r.store)
	if err != nil {
		t.Fatal(err)
	}
	cycle := func() {
		t.Helper()
		if _, err := p.Cycle(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	a := r.api.add(1, sh(t, 2024, 2, 7, 23, 0, 0, 0))
	b := r.api.add(2, sh(t, 2024, 2, 7, 23, 10, 0, 0))
	x := r.api.add(6, sh(t, 2024, 2, 7, 23, 40, 0, 0))
	y := r.api.add(7, sh(t, 2024, 2, 7, 23, 50, 0, 0)) // x and y fill the first page, newest first
	cycle()                                            // full: a, b, x, y
	r.api.mu.Lock()
	r.api.recs = slices.DeleteFunc(r.api.recs, func(x schema.Record) bool { return x.ID == a.ID })
	r.api.mu.Unlock()
	d := r.api.add(4, sh(t, 2024, 2, 7, 22, 30, 0, 0)) // masked by a's removal, last in the pages
	e := r.api.add(5, sh(t, 2024, 2, 8, 1, 10, 0, 0))  // moves the watermark past Feb 8 01:00
	r.clock.Set(sh(t, 2024, 2, 8, 1, 15, 0, 0))
	cycle() // incremental for Feb 7 (blind to d), full for Feb 8 (nothing known): e
	if r.kafka.counts()[d.ID] != 0 {
		t.Fatal("the incremental read saw d: the test proves nothing")
	}
	r.clock.Set(sh(t, 2024, 2, 8, 1, 16, 0, 0))
	cycle() // the window now starts on Feb 8: Feb 7 is read in full once more
	r.assertExactlyOnce(a, b, x, y, d, e)

	// Once only: the cycles after it read the window, Feb 8, and read it incrementally.
	for i, at := range []time.Time{sh(t, 2024, 2, 8, 1, 17, 0, 0), sh(t, 2024, 2, 8, 1, 18, 0, 0)} {
		r.api.mu.Lock()
		calls := len(r.api.calls)
		r.api.mu.Unlock()
		incBefore := inc.newCalls
		r.clock.Set(at)
		cycle()
		r.api.mu.Lock()
		read := slices.Clone(r.api.calls[calls:])
		r.api.mu.Unlock()
		if inc.newCalls != incBefore+1 || !slices.Equal(read, []string{"2024-02-08..2024-02-08"}) {
			t.Fatalf("cycle %d after the day left the window: %d incremental reads, days read %v; want 1 and only 2024-02-08",
				i+1, inc.newCalls-incBefore, read)
		}
	}
	r.assertExactlyOnce(a, b, x, y, d, e)
}

// slowAPI is a fakeAPI whose reads take a while, counting how many run at once.
type slowAPI struct {
	*fakeAPI
	mu       sync.Mutex
	inFlight int
	peak     int
	started  int
}

func (a *slowAPI) Fetch(ctx context.Context, from, to time.Time) ([]schema.Record, error) {
	a.mu.Lock()
	a.started++
	a.inFlight++
	a.peak = max(a.peak, a.inFlight)
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.inFlight--
		a.mu.Unlock()
	}()
	time.Sleep(20 * time.Millisecond)
	return a.fakeAPI.Fetch(ctx, from, to)
}

func TestBackfillReadsTwoDaysAtOnceAndHoldsFewDays(t *testing.T) {
	r := newRig(t, sh(t, 2024, 1, 6, 12, 0, 0, 0), nil)
	var all []schema.Record
	for d := 1; d <= 6; d++ {
		all = append(all, r.api.add(int64(d), sh(t, 2024, 1, d, 8, 0, 0, 0)))
	}
	api := &slowAPI{fakeAPI: r.api}
	release := make(chan struct{})
	r.kafka.block = release // the first day's publish waits: the reader must stop ahead of it
	p, err := poller.New(poller.Config{Location: r.loc, Clock: r.clock.Now, StartFrom: "2024-01-01"}, api, r.kafka, r.store)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := p.Cycle(context.Background()); done <- err }()
	counts := func() (started, peak int) {
		api.mu.Lock()
		defer api.mu.Unlock()
		return api.started, api.peak
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if started, _ := counts(); started >= 3 {
			break
		}
	}
	time.Sleep(300 * time.Millisecond) // ample for every day to be read if nothing held the reader back
	started, peak := counts()
	// Day 1 is being published; days 2 and 3 are read and wait; no further day is read.
	if started != 3 || peak != 2 {
		t.Fatalf("while day 1 was published: %d days read (want 3: the one handled and two ahead), at most %d at once (want 2)", started, peak)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.assertExactlyOnce(all...)
	if got := ids(r.kafka.published()); !slices.IsSorted(got) {
		t.Fatalf("published out of order: %v", got)
	}
}

func TestADayLeavingTheWindowIsReadOnceMoreAfterAFailedCycle(t *testing.T) {
	// As above, but the cycle that reads the departed day once more fails: the next one must read
	// it still, not just the window.
	r := newRig(t, sh(t, 2024, 2, 8, 0, 30, 0, 0), nil)
	inc := &incAPI{fakeAPI: r.api}
	p, err := poller.New(poller.Config{Location: r.loc, Clock: r.clock.Now, StartFrom: "2024-02-07", FullReadEvery: time.Hour}, inc, r.kafka, r.store)
	if err != nil {
		t.Fatal(err)
	}
	cycle := func() error {
		_, err := p.Cycle(context.Background())
		return err
	}
	a := r.api.add(1, sh(t, 2024, 2, 7, 23, 0, 0, 0))
	b := r.api.add(2, sh(t, 2024, 2, 7, 23, 10, 0, 0))
	x := r.api.add(6, sh(t, 2024, 2, 7, 23, 40, 0, 0))
	y := r.api.add(7, sh(t, 2024, 2, 7, 23, 50, 0, 0))
	if err := cycle(); err != nil {
		t.Fatal(err)
	}
	r.api.mu.Lock()
	r.api.recs = slices.DeleteFunc(r.api.recs, func(x schema.Record) bool { return x.ID == a.ID })
	r.api.mu.Unlock()
	d := r.api.add(4, sh(t, 2024, 2, 7, 22, 30, 0, 0)) // masked by a's removal
	e := r.api.add(5, sh(t, 2024, 2, 8, 1, 10, 0, 0))
	r.clock.Set(sh(t, 2024, 2, 8, 1, 15, 0, 0))
	if err := cycle(); err != nil {
		t.Fatal(err)
	}
	if r.kafka.counts()[d.ID] != 0 {
		t.Fatal("the incremental read saw d: the test proves nothing")
	}
	r.clock.Set(sh(t, 2024, 2, 8, 1, 16, 0, 0))
	r.api.mu.Lock()
	r.api.fail = errors.New("API down")
	r.api.mu.Unlock()
	if err := cycle(); err == nil {
		t.Fatal("want the cycle to fail while the API is down")
	}
	r.api.mu.Lock()
	r.api.fail = nil
	r.api.mu.Unlock()
	r.clock.Set(sh(t, 2024, 2, 8, 1, 17, 0, 0))
	if err := cycle(); err != nil {
		t.Fatal(err)
	}
	r.assertExactlyOnce(a, b, x, y, d, e)
}

func TestCyclesAfterABackfillDoNotReadItAgain(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), nil)
	var all []schema.Record
	for d := 5; d <= 7; d++ {
		all = append(all, r.api.add(int64(d), sh(t, 2024, 2, d, 14, 0, 0, 0))) // after START_FROM, Feb 5 12:00
	}
	all = append(all, r.api.add(8, sh(t, 2024, 2, 8, 11, 0, 0, 0)))
	inc := &incAPI{fakeAPI: r.api}
	p, err := poller.New(poller.Config{Location: r.loc, Clock: r.clock.Now, StartFrom: "72h", FullReadEvery: time.Hour,
		Metrics: r.late}, inc, r.kafka, r.store)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		r.api.mu.Lock()
		calls := len(r.api.calls)
		r.api.mu.Unlock()
		r.clock.Set(sh(t, 2024, 2, 8, 12, i, 0, 0))
		if _, err := p.Cycle(context.Background()); err != nil {
			t.Fatal(err)
		}
		r.api.mu.Lock()
		read := slices.Clone(r.api.calls[calls:])
		r.api.mu.Unlock()
		if i > 0 && slices.Min(read) < "2024-02-07" {
			t.Fatalf("cycle %d after the backfill read %v: days below the floor (Feb 7) again", i, read)
		}
		if i == 3 && !slices.Equal(read, []string{"2024-02-08..2024-02-08"}) {
			t.Fatalf("cycle %d read %v, want only 2024-02-08", i, read)
		}
	}
	r.assertExactlyOnce(all...)
	if r.late.late != 0 {
		t.Fatalf("%d records counted late: published ones read again below the floor", r.late.late)
	}
}

func TestTheFloorKeepsAWholeDayWhereDaysLast25Hours(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// 27 October 2024 lasts 25 hours in Berlin (summer time ends at 03:00).
	at := func(d, h int) time.Time { return time.Date(2024, 10, d, h, 0, 0, 0, berlin) }
	api := &fakeAPI{loc: berlin}
	rec := api.add(1, at(28, 9))
	p, err := poller.New(poller.Config{Location: berlin, Clock: func() time.Time { return at(28, 12) }, StartFrom: "2024-10-25"},
		api, newKafka(), &pollertest.MemStore{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := at(27, 0).UnixMilli(); st.FloorMS != want {
		t.Fatalf("floor %s after publishing id %d; want %s, the start of the day before the window",
			st.Floor, rec.ID, time.UnixMilli(want).UTC().Format(time.RFC3339))
	}
}

// keepingAPI is a fakeAPI that remembers every slice it returned.
type keepingAPI struct {
	*fakeAPI
	mu       sync.Mutex
	returned [][]schema.Record
}

func (a *keepingAPI) Fetch(ctx context.Context, from, to time.Time) ([]schema.Record, error) {
	recs, err := a.fakeAPI.Fetch(ctx, from, to)
	a.mu.Lock()
	a.returned = append(a.returned, recs)
	a.mu.Unlock()
	return recs, err
}

// TestPublishedRecordsAreLetGo: once a day is published the poller holds none of its records, in
// the slice the Source returned either, so the pages they were read from can be freed during a
// backfill; what Kafka received is whole.
func TestPublishedRecordsAreLetGo(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), nil)
	var all []schema.Record
	for i := range 10 {
		all = append(all, r.api.add(int64(100+i), sh(t, 2024, 2, 6+i%3, 13, i, 0, 0)))
	}
	api := &keepingAPI{fakeAPI: r.api}
	p, err := poller.New(poller.Config{Location: r.loc, Clock: r.clock.Now, StartFrom: "72h", BatchSize: 3}, api, r.kafka, r.store)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.assertExactlyOnce(all...)
	for _, rec := range r.kafka.log {
		if len(rec.Raw) == 0 {
			t.Fatalf("id %d reached Kafka without its value", rec.ID)
		}
	}
	held := 0
	for _, recs := range api.returned {
		for _, rec := range recs {
			if rec.Raw != nil {
				held++
			}
		}
	}
	if held > 0 || len(api.returned) == 0 {
		t.Fatalf("after the cycle %d records of the %d slices the Source returned still hold their pages", held, len(api.returned))
	}
}

// TestFullReadEveryBelowIntervalReadsInFullAfterARestart: "less than Interval: always read in full"
// holds for a first cycle over a state that records a recent full read, too.
func TestFullReadEveryBelowIntervalReadsInFullAfterARestart(t *testing.T) {
	for _, tt := range []struct {
		name  string
		every time.Duration
		after time.Duration
	}{
		{"30s every, 60s interval, restart 10s on", 30 * time.Second, 10 * time.Second},
		{"FULL_READ_EVERY=0 (1ns), restart in the same millisecond", time.Nanosecond, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), nil)
			inc := &incAPI{fakeAPI: r.api}
			cfg := poller.Config{Location: r.loc, Clock: r.clock.Now, Interval: time.Minute, FullReadEvery: tt.every}
			cycle := func() { t.Helper(); r.cycleAsNewProcess(cfg, inc) }
			a := r.api.add(1, sh(t, 2024, 2, 8, 1, 0, 0, 0))
			cycle()
			b := r.api.add(2, sh(t, 2024, 2, 8, 2, 0, 0, 0))
			r.clock.Set(sh(t, 2024, 2, 8, 12, 0, 0, 0).Add(tt.after))
			cycle()
			if inc.newCalls != 0 {
				t.Fatalf("%d incremental reads after a restart with FullReadEvery %v below the interval, want a full read", inc.newCalls, tt.every)
			}
			r.assertExactlyOnce(a, b)
		})
	}
}
