package poller_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/clocktest"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/poller/pollertest"
	"github.com/followpub/followpub/schema"
)

// fakeAPI is a Source in memory: it filters by whole days in loc, both ends inclusive, and returns
// the records in a shuffled order.
type fakeAPI struct {
	mu      sync.Mutex
	loc     *time.Location
	recs    []schema.Record
	fail    error
	calls   []string // "from..to" of each Fetch
	outside []schema.Record
	onFetch func(n int) // called with the number of the Fetch, from 1, before it answers
}

func (f *fakeAPI) add(id int64, ft time.Time) schema.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := schema.Record{ID: id, FollowTime: ft.UnixMilli(),
		Raw: []byte(`{"id":` + strconv.FormatInt(id, 10) + `,"follow_time":` + strconv.FormatInt(ft.UnixMilli(), 10) + `}`)}
	f.recs = append(f.recs, r)
	return r
}

func (f *fakeAPI) Fetch(ctx context.Context, from, to time.Time) ([]schema.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, from.Format(poller.DateLayout)+".."+to.Format(poller.DateLayout))
	if f.onFetch != nil {
		f.onFetch(len(f.calls))
	}
	if f.fail != nil {
		return nil, f.fail
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lo := from.UnixMilli()
	hi := time.Date(to.Year(), to.Month(), to.Day()+1, 0, 0, 0, 0, f.loc).UnixMilli()
	var out []schema.Record
	for _, r := range f.recs {
		if r.FollowTime >= lo && r.FollowTime < hi {
			out = append(out, r)
		}
	}
	out = append(out, f.outside...)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, nil
}

// fakeKafka is a Publisher in memory over a one-partition topic, whose offsets are the indexes of
// log. failAfter, when ≥ 0, acknowledges that many records of the next Publish calls (in total) and
// then fails the rest, as a broker going down mid-batch would. lostAcks, when > 0, makes that many
// Publish calls append their records but fail as if the acknowledgement was lost; temporary marks
// the failures as temporary, and heal lets the next call succeed after one. readBackErr, when set, fails ReadBack.
type fakeKafka struct {
	mu          sync.Mutex
	log         []schema.Record
	failAfter   int
	lostAcks    int
	temporary   bool
	heal        bool // after one failure, acknowledge everything again
	readBackErr error
	calls       int
	readBacks   int
	block       chan struct{} // when set, Publish waits for it to close before acknowledging
}

func newKafka() *fakeKafka { return &fakeKafka{failAfter: -1} }

const fakeTopic = "fake"

// fakeError is a publish failure; Temporary says whether sending again may succeed.
type fakeError struct {
	msg       string
	temporary bool
}

func (e *fakeError) Error() string   { return e.msg }
func (e *fakeError) Temporary() bool { return e.temporary }

func (k *fakeKafka) Publish(ctx context.Context, recs []schema.Record) (poller.Written, error) {
	k.mu.Lock()
	block := k.block
	k.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return poller.Written{}, ctx.Err()
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	if k.lostAcks > 0 {
		k.lostAcks--
		k.log = append(k.log, recs...)
		return poller.Written{}, &fakeError{"acknowledgement lost", k.temporary}
	}
	if k.failAfter < 0 {
		k.log = append(k.log, recs...)
		return poller.Written{Next: map[int]int64{0: int64(len(k.log))}}, nil
	}
	acked := make([]bool, len(recs))
	for i, r := range recs {
		if k.failAfter == 0 {
			if k.heal {
				k.failAfter = -1
			}
			return poller.Written{Acked: acked}, &fakeError{"broker down", k.temporary}
		}
		k.failAfter--
		k.log = append(k.log, r)
		acked[i] = true
	}
	return poller.Written{Acked: acked, Next: map[int]int64{0: int64(len(k.log))}}, nil
}

func (k *fakeKafka) ReadBack(_ context.Context, from poller.Tail) (poller.ReadBack, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.readBacks++
	if k.readBackErr != nil {
		return poller.ReadBack{}, k.readBackErr
	}
	rb := poller.ReadBack{Tail: poller.Tail{Topic: fakeTopic, Next: map[int]int64{0: int64(len(k.log))}}}
	if from.Topic != fakeTopic {
		rb.Fresh = true
		return rb, nil
	}
	for _, r := range k.log[from.Next[0]:] {
		rb.Read++
		rb.Found = append(rb.Found, poller.Published{ID: r.ID, FollowTime: r.FollowTime})
	}
	return rb, nil
}

func (k *fakeKafka) published() []schema.Record {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.log)
}

// counts returns how often each id was published.
func (k *fakeKafka) counts() map[int64]int {
	c := map[int64]int{}
	for _, r := range k.published() {
		c[r.ID]++
	}
	return c
}

// rig wires a poller over the fakes.
type rig struct {
	t     *testing.T
	loc   *time.Location
	api   *fakeAPI
	kafka *fakeKafka
	store *pollertest.MemStore
	clock *clocktest.Clock
	p     *poller.Poller
	late  *countingMetrics
}

func newRig(t *testing.T, now time.Time, mod func(*poller.Config)) *rig {
	t.Helper()
	loc := mustShanghai(t)
	r := &rig{t: t, loc: loc, api: &fakeAPI{loc: loc}, kafka: newKafka(), store: &pollertest.MemStore{}, clock: clocktest.New(now), late: &countingMetrics{}}
	r.p = r.newPoller(mod)
	return r
}

// newPoller returns a new poller over the same fakes, as a restarted process would have.
func (r *rig) newPoller(mod func(*poller.Config)) *poller.Poller {
	r.t.Helper()
	cfg := poller.Config{Location: r.loc, Interval: time.Second, Lookback: time.Hour, StartFrom: "today",
		BatchSize: 3, Clock: r.clock.Now, Metrics: r.late}
	if mod != nil {
		mod(&cfg)
	}
	p, err := poller.New(cfg, r.api, r.kafka, r.store)
	if err != nil {
		r.t.Fatalf("poller.New: %v", err)
	}
	r.p = p
	return p
}

// cycleAsNewProcess runs one cycle of a new poller with cfg over src and the rig's Kafka and
// store: a process that loads the state, as after a restart or a takeover.
func (r *rig) cycleAsNewProcess(cfg poller.Config, src poller.Source) {
	r.t.Helper()
	p, err := poller.New(cfg, src, r.kafka, r.store)
	if err != nil {
		r.t.Fatalf("poller.New: %v", err)
	}
	if _, err := p.Cycle(context.Background()); err != nil {
		r.t.Fatalf("cycle: %v", err)
	}
}

func (r *rig) cycle() poller.CycleResult {
	r.t.Helper()
	res, err := r.p.Cycle(context.Background())
	if err != nil {
		r.t.Fatalf("cycle: %v", err)
	}
	return res
}

// assertExactlyOnce fails unless every id in want was published exactly once and nothing else was.
func (r *rig) assertExactlyOnce(want ...schema.Record) {
	r.t.Helper()
	counts := r.kafka.counts()
	for _, w := range want {
		if counts[w.ID] != 1 {
			r.t.Errorf("id %d (follow_time %s) published %d times, want once", w.ID, time.UnixMilli(w.FollowTime).UTC(), counts[w.ID])
		}
		delete(counts, w.ID)
	}
	for id, n := range counts {
		r.t.Errorf("id %d published %d times, want never", id, n)
	}
}

func mustShanghai(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// countingMetrics counts what tests assert on; the rest is ignored.
type countingMetrics struct {
	mu                          sync.Mutex
	late, dups, outside, cycles int
	readBacks, found, settled   int
	commitErrors                int
	results                     []string
	lastSuccess                 time.Time
}

func (m *countingMetrics) RecordsFetched(int)   {}
func (m *countingMetrics) RecordsPublished(int) {}
func (m *countingMetrics) DuplicatesSkipped(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dups += n
}
func (m *countingMetrics) LateDropped(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.late += n
}
func (m *countingMetrics) OutOfWindow(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outside += n
}
func (m *countingMetrics) CycleDone(result string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cycles++
	m.results = append(m.results, result)
}
func (m *countingMetrics) CycleSucceeded(end time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastSuccess = end
}
func (m *countingMetrics) StateCommitted(time.Time, time.Duration) {}
func (m *countingMetrics) StateCommitFailed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.commitErrors++
}
func (m *countingMetrics) ReadBackDone(found int, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.readBacks++
	m.found += found
}
func (m *countingMetrics) AmbiguousWritesSettled(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settled += n
}
func (m *countingMetrics) ReadBackAnomalies(int64, int, int) {}

func (m *countingMetrics) String() string {
	return fmt.Sprintf("late %d dups %d outside %d", m.late, m.dups, m.outside)
}
