package paging

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/followpub/followpub/schema"
)

// winFrom and winTo are the window every test reads; the fake readers ignore it.
var (
	winFrom = time.Date(2024, 2, 4, 0, 0, 0, 0, time.UTC)
	winTo   = time.Date(2024, 2, 7, 0, 0, 0, 0, time.UTC)
)

// newPager returns a pager over r with pages of 10 and wshoto's default MaxReads; mod adjusts
// the config.
func newPager(t *testing.T, r PageReader, mod func(*Config)) *Pager {
	t.Helper()
	cfg := Config{PageSize: 10, Concurrency: 1, MaxReads: 5}
	if mod != nil {
		mod(&cfg)
	}
	pg, err := New(r, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pg
}

// churnAPI is a page reader over a list of ids served by offset, which changes after every page it
// serves, as a live API does while a client pages through it. change gets the list and the count
// of pages served. latency is spent before and after serving a page, outside the lock, as a
// request and its answer travel: pages read concurrently are then in flight together.
type churnAPI struct {
	mu      sync.Mutex
	ids     []int64
	next    int64
	served  int
	change  func(a *churnAPI)
	latency time.Duration

	inFlight, maxInFlight atomic.Int64 // pages being read at once, and the most at any time
}

func (a *churnAPI) ReadPage(ctx context.Context, _, _ time.Time, index, size int) (Page, error) {
	if err := ctx.Err(); err != nil {
		return Page{}, err
	}
	n := a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
	for m := a.maxInFlight.Load(); n > m && !a.maxInFlight.CompareAndSwap(m, n); m = a.maxInFlight.Load() {
	}
	if a.latency > 0 {
		time.Sleep(a.latency)
		defer time.Sleep(a.latency)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	lo := min(len(a.ids), (index-1)*size)
	hi := min(len(a.ids), lo+size)
	p := Page{Total: int64(len(a.ids)), Records: make([]schema.Record, 0, hi-lo)}
	for _, id := range a.ids[lo:hi] {
		p.Records = append(p.Records, schema.Record{ID: id, FollowTime: id})
	}
	a.served++
	if a.change != nil {
		a.change(a)
	}
	return p, nil
}

// arrive adds n new ids at position pos(len) of the list.
func (a *churnAPI) arrive(n int, pos func(int) int) {
	for range n {
		a.next++
		at := pos(len(a.ids))
		a.ids = slices.Insert(a.ids, at, a.next)
	}
}

func newChurn(n int, change func(a *churnAPI)) *churnAPI {
	a := &churnAPI{change: change}
	for range n {
		a.next++
		a.ids = append(a.ids, a.next)
	}
	return a
}

// fetchChurn runs one Fetch against api, one page in flight at a time (so that a run is
// deterministic), and checks that every id present before it started, and still present at the
// end, is in the result.
func fetchChurn(t *testing.T, api *churnAPI) ([]int64, error) {
	t.Helper()
	return fetchChurnN(t, api, 1)
}

// fetchChurnN is fetchChurn with concurrency pages in flight at once.
func fetchChurnN(t *testing.T, api *churnAPI, concurrency int) ([]int64, error) {
	t.Helper()
	before := slices.Clone(api.ids)
	if concurrency > 1 && api.latency == 0 {
		api.latency = 20 * time.Microsecond
	}
	recs, err := newPager(t, api, func(c *Config) { c.Concurrency = concurrency }).Fetch(context.Background(), winFrom, winTo)
	if err != nil {
		return nil, err
	}
	got := map[int64]bool{}
	for _, r := range recs {
		if got[r.ID] {
			t.Fatalf("id %d returned twice", r.ID)
		}
		got[r.ID] = true
	}
	api.mu.Lock()
	if n := int64(len(got)); n > api.next {
		t.Fatalf("%d ids returned, but the API only ever held %d", n, api.next)
	}
	after := map[int64]bool{}
	for _, id := range api.ids {
		after[id] = true
	}
	api.mu.Unlock()
	for _, id := range before {
		if after[id] && !got[id] {
			t.Fatalf("id %d, present for the whole call, is missing from the result", id)
		}
	}
	return slices.Sorted(func(yield func(int64) bool) {
		for id := range got {
			if !yield(id) {
				return
			}
		}
	}), nil
}

func TestFetchUnderSteadyArrivals(t *testing.T) {
	tests := []struct {
		name string
		pos  func(n int) int
	}{
		{"newest first: arrivals at the front", func(int) int { return 0 }},
		{"oldest first: arrivals at the back", func(n int) int { return n }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Three records arrive after every fourth page served: no full read (ten pages and more)
			// ever sees a still page set.
			api := newChurn(95, func(a *churnAPI) {
				if a.served%4 == 0 {
					a.arrive(3, tt.pos)
				}
			})
			got, err := fetchChurn(t, api)
			if err != nil {
				t.Fatalf("Fetch under steady arrivals: %v", err)
			}
			if len(got) < 95 {
				t.Fatalf("got %d records, want at least the 95 present at the start", len(got))
			}
		})
	}
}

func TestFetchSettlesUnderBurstsWithPagesInFlightTogether(t *testing.T) {
	// Arrivals only, with bursts of more than a page, four pages in flight: concurrent pages that
	// disagree about the total cannot be ordered, so Fetch reads page by page, and a burst that
	// breaks one in-order read still leaves what it saw to the union and the re-read ends.
	for _, tt := range []struct {
		name string
		pos  func(n int) int
	}{
		{"newest first", func(int) int { return 0 }},
		{"oldest first", func(n int) int { return n }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const runs = 20
			settled, overlapped := 0, false
			for range runs {
				api := newChurn(95, func(a *churnAPI) {
					if a.served%4 == 0 {
						a.arrive(3, tt.pos)
					}
					if a.served%17 == 0 {
						a.arrive(11, tt.pos)
					}
				})
				if _, err := fetchChurnN(t, api, 4); err == nil {
					settled++
				} else if !errors.Is(err, ErrInconsistentPages) {
					t.Fatal(err)
				}
				overlapped = overlapped || api.maxInFlight.Load() > 1
			}
			t.Logf("settled %d of %d runs", settled, runs)
			if !overlapped {
				t.Fatal("no run had two pages in flight together: the test did not test that")
			}
			if settled*4 < runs*3 {
				t.Fatalf("Fetch settled %d of %d runs under arrivals only, want at least three in four", settled, runs)
			}
		})
	}
}

// atLeastHalf fails t unless at least half of the runs succeeded. Fetch may give up on a page set
// that keeps changing, but a Fetch that always gave up would lose nothing and pass every check of
// what it returns: the runs must show that it settles, as a rule.
func atLeastHalf(t *testing.T, succeeded, runs int) {
	t.Helper()
	t.Logf("Fetch settled %d of %d runs", succeeded, runs)
	if succeeded*2 < runs {
		t.Fatalf("Fetch settled only %d of %d runs, want at least half: giving up is allowed, not as a rule", succeeded, runs)
	}
}

func TestFetchUnderRandomInsertsNeverLosesARecord(t *testing.T) {
	// Arrivals anywhere in the list: the cheap re-read of the ends does not settle it every time,
	// but whatever Fetch accepts holds every record present throughout (checked by fetchChurn).
	const seeds = 20
	succeeded := 0
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 1))
		n := 0
		api := newChurn(60, func(a *churnAPI) {
			if n++; n < 12 {
				a.arrive(1, func(l int) int { return rng.IntN(l + 1) })
			}
		})
		got, err := fetchChurn(t, api)
		switch {
		case err == nil:
			succeeded++
			if len(got) < 60 {
				t.Fatalf("seed %d: %d records, fewer than the 60 present throughout", seed, len(got))
			}
		case !errors.Is(err, ErrInconsistentPages):
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
	atLeastHalf(t, succeeded, seeds)
}

// churnMixes are ways a list changes while it is paged, for newChurn: after each of the first 15
// pages served, records go away or arrive, but never both between the same two pages — that
// leaves every total as it was, and no count can see it (see Fetch).
var churnMixes = []struct {
	name   string
	change func(rng *rand.Rand, a *churnAPI)
}{
	{"arrivals anywhere", func(rng *rand.Rand, a *churnAPI) {
		a.arrive(rng.IntN(3), func(l int) int { return rng.IntN(l + 1) })
	}},
	{"removals or arrivals anywhere", func(rng *rand.Rand, a *churnAPI) {
		if rng.IntN(3) == 0 && len(a.ids) > 0 {
			i := rng.IntN(len(a.ids))
			a.ids = slices.Delete(a.ids, i, i+1)
			return
		}
		a.arrive(rng.IntN(2), func(l int) int { return rng.IntN(l + 1) })
	}},
	{"removals at the front, arrivals at either end", func(rng *rand.Rand, a *churnAPI) {
		if rng.IntN(4) == 0 && len(a.ids) > 2 {
			a.ids = slices.Delete(a.ids, 0, 2)
			return
		}
		a.arrive(1, func(l int) int { return l * rng.IntN(2) })
	}},
	{"sparse removals and arrivals", func(rng *rand.Rand, a *churnAPI) {
		switch {
		case rng.IntN(5) == 0 && len(a.ids) > 0:
			i := rng.IntN(len(a.ids))
			a.ids = slices.Delete(a.ids, i, i+1)
		case rng.IntN(5) == 0:
			a.arrive(1, func(l int) int { return rng.IntN(l + 1) })
		}
	}},
}

// newChurnMix returns a list of 20 to 79 records that changes by mix after each page served.
func newChurnMix(seed uint64, mix func(*rand.Rand, *churnAPI)) *churnAPI {
	rng := rand.New(rand.NewPCG(seed, 7))
	served := 0
	return newChurn(20+rng.IntN(60), func(a *churnAPI) {
		if served++; served <= 15 {
			mix(rng, a)
		}
	})
}

func TestFetchUnderRemovalsAndArrivalsNeverLosesARecord(t *testing.T) {
	// Removals as well as arrivals: a total may fall and rise back, so neither the largest total
	// nor the union of the reads can be trusted once one fell. Whatever Fetch accepts must hold
	// every record present throughout (fetchChurn checks it).
	const seeds = 100
	for _, mix := range churnMixes {
		t.Run(mix.name, func(t *testing.T) {
			succeeded := 0
			for seed := range uint64(seeds) {
				_, err := fetchChurn(t, newChurnMix(seed, mix.change))
				switch {
				case err == nil:
					succeeded++
				case !errors.Is(err, ErrInconsistentPages):
					t.Fatalf("seed %d: %v", seed, err)
				}
			}
			atLeastHalf(t, succeeded, seeds)
		})
	}
}

func TestFetchUnderRemovalsAndArrivalsWithPagesInFlightTogether(t *testing.T) {
	// With four pages in flight, two answers may have been served in either order: totals that
	// disagree between them may hide a removal. Which runs settle depends on the scheduler, so
	// only a loss, or no run settling at all, fails.
	const seeds = 25
	succeeded, overlapped := 0, false
	for _, mix := range churnMixes {
		for seed := range uint64(seeds) {
			api := newChurnMix(seed, mix.change)
			_, err := fetchChurnN(t, api, 4)
			overlapped = overlapped || api.maxInFlight.Load() > 1
			switch {
			case err == nil:
				succeeded++
			case !errors.Is(err, ErrInconsistentPages):
				t.Fatalf("%s, seed %d: %v", mix.name, seed, err)
			}
		}
	}
	if succeeded == 0 {
		t.Fatalf("Fetch settled none of %d runs", seeds*len(churnMixes))
	}
	if !overlapped {
		t.Fatal("no run had two pages in flight together: the test did not test that")
	}
	t.Logf("Fetch settled %d of %d runs", succeeded, seeds*len(churnMixes))
}

func TestAnswerLogFalls(t *testing.T) {
	// Each answer: when its page was asked for, when the answer arrived (one clock), its total.
	tests := []struct {
		name            string
		answers         []answer
		fell, unordered bool
	}{
		{"one page", []answer{{1, 2, 40}}, false, false},
		{"still", []answer{{1, 2, 40}, {3, 4, 40}, {5, 6, 40}}, false, false},
		{"grew, one at a time", []answer{{1, 2, 40}, {3, 4, 41}, {5, 6, 43}}, false, false},
		{"fell, one at a time", []answer{{1, 2, 40}, {3, 4, 39}}, true, false},
		{"fell and came back", []answer{{1, 2, 40}, {3, 4, 38}, {5, 6, 40}}, true, false},
		{"fell below an earlier round", []answer{{1, 2, 40}, {3, 5, 42}, {4, 6, 42}, {7, 8, 41}}, true, false},
		{"in flight together, agreeing", []answer{{1, 2, 40}, {3, 5, 40}, {4, 6, 40}}, false, false},
		{"grew, a round after a round", []answer{{1, 2, 40}, {3, 5, 40}, {4, 6, 40}, {7, 9, 41}, {8, 10, 41}}, false, false},
		// Served in either order: 41 then a removal then 40 is as possible as 40 then an arrival.
		{"in flight together, the smaller answered first", []answer{{1, 2, 40}, {3, 5, 40}, {4, 6, 41}}, false, true},
		{"in flight together, the larger answered first", []answer{{1, 2, 40}, {3, 6, 40}, {4, 5, 41}}, false, true},
		{"in flight together, the larger asked first", []answer{{1, 2, 40}, {3, 6, 41}, {4, 5, 40}}, false, true},
		{"in flight together, then a proven fall", []answer{{1, 2, 40}, {3, 6, 41}, {4, 5, 40}, {7, 8, 39}}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := answerLog{answers: tt.answers}
			fell, unordered := l.falls()
			if fell != tt.fell || unordered != tt.unordered {
				t.Errorf("falls() = fell %v, unordered %v; want %v, %v", fell, unordered, tt.fell, tt.unordered)
			}
		})
	}
}

func TestFetchRejectsAPageSetThatLostRecords(t *testing.T) {
	// A record goes away and another arrives while the pages are read: the total stays put,
	// offsets shift, and counting alone cannot tell; a fallen total must never be trusted.
	served := 0
	api := newChurn(40, func(a *churnAPI) {
		served++
		if served == 2 {
			a.ids = slices.Delete(a.ids, 0, 3) // three records go away: everything shifts forward
		}
	})
	_, err := fetchChurn(t, api)
	if err != nil {
		t.Fatalf("after the deletion the page set is still again, Fetch should succeed: %v", err)
	}
	// Records go away while others keep arriving: the union of the reads proves nothing then, so
	// Fetch either gives up or returns a set that is complete by itself (fetchChurn checks it).
	// Arrivals at the back after a removal at the front after page 1 make the totals 40, 38, 39,
	// 40: the largest total equals the first, and 40 distinct ids were seen, 11..13 not among them.
	runs, succeeded := 0, 0
	for _, at := range []int{1, 2, 3, 5, 8} {
		for _, end := range []string{"front", "back"} {
			served := 0
			api := newChurn(40, func(a *churnAPI) {
				if served++; served == at {
					a.ids = slices.Delete(a.ids, 0, 3)
				}
				a.arrive(1, func(l int) int {
					if end == "back" {
						return l
					}
					return 0
				})
			})
			runs++
			_, err := fetchChurn(t, api)
			switch {
			case err == nil:
				succeeded++
			case !errors.Is(err, ErrInconsistentPages):
				t.Fatalf("removal after page %d, arrivals at the %s: %v", at, end, err)
			}
		}
	}
	atLeastHalf(t, succeeded, runs)
}

// pageFunc is a page reader from a function, for answers no list would give.
type pageFunc func(index, size int) (Page, error)

func (f pageFunc) ReadPage(_ context.Context, _, _ time.Time, index, size int) (Page, error) {
	return f(index, size)
}

// recordsOf returns records with the given ids.
func recordsOf(ids ...int64) []schema.Record {
	out := make([]schema.Record, len(ids))
	for i, id := range ids {
		out[i] = schema.Record{ID: id, FollowTime: id}
	}
	return out
}

func TestFetchGivesUpOnPagesThatRepeatThemselves(t *testing.T) {
	// Every page answers the same records under a large total: not a window to page to its end.
	for _, total := range []int64{50_000, 1 << 40} {
		for _, concurrency := range []int{1, 4} {
			var reads atomic.Int64
			pg := newPager(t, pageFunc(func(int, int) (Page, error) {
				reads.Add(1)
				return Page{Total: total, Records: recordsOf(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)}, nil
			}), func(c *Config) { c.MaxReads = 2; c.Concurrency = concurrency })
			_, err := pg.Fetch(context.Background(), winFrom, winTo)
			if !errors.Is(err, ErrInconsistentPages) || !strings.Contains(err.Error(), "repeats records of other pages") {
				t.Fatalf("total %d, %d in flight: error %v, want ErrInconsistentPages for repeating pages", total, concurrency, err)
			}
			if n := reads.Load(); n > 100 {
				t.Fatalf("total %d, %d in flight: %d page reads before giving up", total, concurrency, n)
			}
		}
	}
}

func TestFetchRejectsAPageSetThatRepeatsOneRecordAndSkipsAnother(t *testing.T) {
	// A still page set of 30 whose pages hold 30 records but 29 ids: one repeats on a later page
	// (of page 1, or of a page read with it) and one is missing. Counting the records instead of
	// the ids would accept it.
	for _, repeated := range []int64{1, 15} {
		for _, concurrency := range []int{1, 4} {
			pg := newPager(t, pageFunc(func(index, _ int) (Page, error) {
				ids := make([]int64, 10)
				for i := range ids {
					ids[i] = int64((index-1)*10 + i + 1)
				}
				if index == 3 {
					ids[9] = repeated // id 30 is never served
				}
				return Page{Total: 30, Records: recordsOf(ids...)}, nil
			}), func(c *Config) { c.MaxReads = 2; c.Concurrency = concurrency })
			got, err := pg.Fetch(context.Background(), winFrom, winTo)
			if !errors.Is(err, ErrInconsistentPages) || !strings.Contains(err.Error(), "29 distinct ids but total 30") {
				t.Fatalf("id %d twice, %d in flight: %d records, error %v; want ErrInconsistentPages for 29 distinct ids", repeated, concurrency, len(got), err)
			}
		}
	}
}

func TestFetchDistrustsTotalsThatDrop(t *testing.T) {
	// 35 records; some answers report a total of 0 (a back end that lost its count) while still
	// sending records. Fetch must never return fewer than the 35, and must settle when the bad
	// answers are rare.
	ids := make([]int64, 35)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	for _, every := range []int{2, 3, 7} {
		var reads atomic.Int64
		pg := newPager(t, pageFunc(func(index, size int) (Page, error) {
			n := reads.Add(1)
			lo := min(len(ids), (index-1)*size)
			hi := min(len(ids), lo+size)
			p := Page{Total: int64(len(ids)), Records: recordsOf(ids[lo:hi]...)}
			if n%int64(every) == 0 {
				p.Total = 0
			}
			return p, nil
		}), nil)
		got, err := pg.Fetch(context.Background(), winFrom, winTo)
		switch {
		case err == nil && len(got) != len(ids):
			t.Fatalf("a total of 0 every %d answers: %d records accepted, want %d", every, len(got), len(ids))
		case err != nil && !errors.Is(err, ErrInconsistentPages):
			t.Fatalf("a total of 0 every %d answers: %v", every, err)
		case err != nil && every >= 7:
			t.Fatalf("a total of 0 every %d answers: Fetch never settled: %v", every, err)
		}
	}
}

func TestFetchReturnsTheReadersError(t *testing.T) {
	boom := errors.New("boom")
	for _, concurrency := range []int{1, 4} {
		pg := newPager(t, pageFunc(func(index, size int) (Page, error) {
			if index == 3 {
				return Page{}, boom
			}
			return Page{Total: 50, Records: recordsOf(int64(index*100+1), int64(index*100+2), int64(index*100+3),
				int64(index*100+4), int64(index*100+5), int64(index*100+6), int64(index*100+7), int64(index*100+8),
				int64(index*100+9), int64(index*100+10))}, nil
		}), func(c *Config) { c.Concurrency = concurrency })
		if _, err := pg.Fetch(context.Background(), winFrom, winTo); !errors.Is(err, boom) || !strings.Contains(err.Error(), "fetching 2024-02-04..2024-02-07") {
			t.Fatalf("%d in flight: error %v, want the reader's, naming the window", concurrency, err)
		}
	}
	if _, err := newPager(t, pageFunc(nil), nil).Fetch(context.Background(), winTo, winFrom); err == nil || !strings.Contains(err.Error(), "ends before it starts") {
		t.Fatalf("a window that ends before it starts: %v", err)
	}
}

func TestFetchNewReadsOnlyWhatADayGained(t *testing.T) {
	// 95 records newest first, of which the caller knows all; then 3 arrive at the front.
	api := newChurn(95, nil)
	slices.Reverse(api.ids)
	pg := newPager(t, api, nil)
	known := map[int64]bool{}
	for _, id := range api.ids {
		known[id] = true
	}
	isKnown := func(id int64) bool { return known[id] }
	api.arrive(3, func(int) int { return 0 })
	before := api.served
	got, err := pg.FetchNew(context.Background(), winTo, len(known), isKnown)
	if err != nil {
		t.Fatal(err)
	}
	if n := api.served - before; n != 1 {
		t.Fatalf("FetchNew read %d pages for three new records on page 1, want 1", n)
	}
	if len(got) != 3 || got[0].ID != 98 || got[1].ID != 97 || got[2].ID != 96 {
		t.Fatalf("FetchNew returned %+v, want ids 98, 97, 96", got)
	}

	// More known than the total: records went away, so the whole day is read.
	before = api.served
	got, err = pg.FetchNew(context.Background(), winTo, len(known)+5, isKnown)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 98 || api.served-before < 10 {
		t.Fatalf("after a removal FetchNew returned %d records in %d pages, want the whole day (98, 10 pages)", len(got), api.served-before)
	}

	// More than a page arrived (a takeover after a session's worth of arrivals), and one more
	// arrives at the front with every page served: two pages down to the known ones, then the
	// first again for what arrived meanwhile; three reads, not the whole day.
	api.arrive(15, func(int) int { return 0 })
	api.change = func(a *churnAPI) { a.arrive(1, func(int) int { return 0 }) }
	for _, r := range got {
		known[r.ID] = true
	}
	before = api.served
	got, err = pg.FetchNew(context.Background(), winTo, len(known), isKnown)
	api.change = nil
	if err != nil {
		t.Fatal(err)
	}
	if n := api.served - before; n != 3 {
		t.Fatalf("FetchNew read %d pages for 15 new records and 2 arriving, want 3", n)
	}
	if want := len(api.ids) - len(known) - 1; len(got) != want { // the last arrival came after the last read
		t.Fatalf("FetchNew returned %d records, want the %d unknown when it last read", len(got), want)
	}
	for _, r := range got {
		if known[r.ID] {
			t.Fatalf("FetchNew returned the known id %d", r.ID)
		}
	}

	// Oldest first: the new records are on the last page, past the pages FetchNew looks at.
	old := newChurn(95, nil)
	knownOld := map[int64]bool{}
	for _, id := range old.ids {
		knownOld[id] = true
	}
	old.arrive(2, func(n int) int { return n })
	got, err = newPager(t, old, nil).FetchNew(context.Background(), winTo, len(knownOld), func(id int64) bool { return knownOld[id] })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 97 {
		t.Fatalf("new records past page %d: FetchNew returned %d records, want the whole day (97) from Fetch", maxIncrementalPages, len(got))
	}
}

// TestFetchNewFindsALateRecordOnPage3: newest first, a late arrival (follow_time up to LOOKBACK
// behind) lands among the known records, not at the head: reading on finds it, without going
// back to the first page or reading the whole day.
func TestFetchNewFindsALateRecordOnPage3(t *testing.T) {
	api := newChurn(95, nil)
	slices.Reverse(api.ids)
	known := map[int64]bool{}
	for _, id := range api.ids {
		known[id] = true
	}
	api.arrive(1, func(int) int { return 25 }) // page 3 at 10 a page
	before := api.served
	got, err := newPager(t, api, nil).FetchNew(context.Background(), winTo, len(known), func(id int64) bool { return known[id] })
	if err != nil {
		t.Fatal(err)
	}
	if n := api.served - before; len(got) != 1 || n != 3 {
		t.Fatalf("a late record on page 3: FetchNew returned %d records in %d page reads, want 1 in 3", len(got), n)
	}
}

// BenchmarkFetchStillWindow reads a still window of 10,000 records in pages of 100, four in flight,
// from memory: the pager's own work (its checks and id maps) without any transport.
func BenchmarkFetchStillWindow(b *testing.B) {
	const total, size = 10_000, 100
	pages := make([]Page, total/size+1)
	for i := 1; i < len(pages); i++ {
		ids := make([]int64, size)
		for j := range ids {
			ids[j] = int64(1e15 + (i-1)*size + j) // snowflake-like ids
		}
		pages[i] = Page{Total: total, Records: recordsOf(ids...)}
	}
	pg, err := New(pageFunc(func(index, _ int) (Page, error) { return pages[index], nil }),
		Config{PageSize: size, Concurrency: 4})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		recs, err := pg.Fetch(context.Background(), winFrom, winTo)
		if err != nil || len(recs) != total {
			b.Fatalf("%d records, %v", len(recs), err)
		}
	}
}
