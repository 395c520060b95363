package wshoto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/wshotosim"
)

// churnAPI serves a list of ids by offset and changes it after every page it serves, as a live
// API does while a client pages through it. change gets the list and the request count.
type churnAPI struct {
	mu     sync.Mutex
	ids    []int64
	next   int64
	served int
	change func(a *churnAPI)
}

func (a *churnAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CurrentIndex int `json:"current_index"`
		PageSize     int `json:"page_size"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	a.mu.Lock()
	defer a.mu.Unlock()
	lo := min(len(a.ids), (req.CurrentIndex-1)*req.PageSize)
	hi := min(len(a.ids), lo+req.PageSize)
	recs := make([]string, 0, hi-lo)
	for _, id := range a.ids[lo:hi] {
		recs = append(recs, fmt.Sprintf(`{"id":%d,"follow_time":%d}`, id, id))
	}
	fmt.Fprintf(w, `{"code":0,"data":{"total":%d,"records":[%s]}}`, len(a.ids), strings.Join(recs, ","))
	a.served++
	if a.change != nil {
		a.change(a)
	}
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
	srv := httptest.NewServer(api)
	defer srv.Close()
	c := newClient(t, srv, func(c *Config) { c.AccessToken = "t"; c.PageSize = 10; c.Concurrency = concurrency })
	recs, err := c.Fetch(context.Background(), winFrom, winTo)
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
			settled := 0
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
			}
			t.Logf("settled %d of %d runs", settled, runs)
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
	succeeded := 0
	for _, mix := range churnMixes {
		for seed := range uint64(seeds) {
			_, err := fetchChurnN(t, newChurnMix(seed, mix.change), 4)
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

func TestFetchSettlesInOrderUnderRandomArrivals(t *testing.T) {
	// One record lands at a random place after every page served, forever: no read ever sees a
	// still page set, and the ends are no help; the in-order read settles it.
	for _, order := range []string{"newest", "oldest", "shuffled"} {
		t.Run(order, func(t *testing.T) {
			sim, srv := newSim(t, wshotosim.Config{InsertBetweenPages: 1, Order: order})
			before := sim.VisibleDays(winFrom, winTo)
			c := newClient(t, srv, func(c *Config) { c.MaxReads = 3 })
			got, err := c.Fetch(context.Background(), winFrom, winTo)
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			ids := map[int64]bool{}
			for _, r := range got {
				ids[r.ID] = true
			}
			for _, r := range before {
				if !ids[r.ID] {
					t.Fatalf("record %d, present for the whole call, is missing", r.ID)
				}
			}
			if len(got) < len(before) {
				t.Fatalf("%d records, fewer than the %d at the start", len(got), len(before))
			}
		})
	}
}

func TestFetchGivesUpOnPagesThatRepeatThemselves(t *testing.T) {
	// Every page answers the same records under a large total: not a window to page to its end.
	for _, total := range []int64{50_000, 1 << 40} {
		var requests atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			recs := make([]string, 10)
			for i := range recs {
				recs[i] = fmt.Sprintf(`{"id":%d,"follow_time":1}`, i+1)
			}
			fmt.Fprintf(w, `{"code":0,"data":{"total":%d,"records":[%s]}}`, total, strings.Join(recs, ","))
		}))
		c := newClient(t, srv, func(c *Config) { c.AccessToken = "t"; c.PageSize = 10; c.MaxReads = 2 })
		_, err := c.Fetch(context.Background(), winFrom, winTo)
		srv.Close()
		if !errors.Is(err, ErrInconsistentPages) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("total %d: error %v, want the answer refused", total, err)
		}
		if n := requests.Load(); n > 100 {
			t.Fatalf("total %d: %d requests before giving up", total, n)
		}
	}
}

func TestFetchNewReadsOnlyWhatADayGained(t *testing.T) {
	day := time.Date(2024, 2, 7, 0, 0, 0, 0, shanghai)
	sim, srv := newSim(t, wshotosim.Config{Count: 500, Span: 12 * time.Hour})
	c := newClient(t, srv, nil)
	all, err := c.Fetch(context.Background(), day, day)
	if err != nil {
		t.Fatal(err)
	}
	known := map[int64]bool{}
	for _, r := range all {
		known[r.ID] = true
	}
	fresh := sim.Insert(testNow.Add(-time.Minute), testNow.Add(-2*time.Minute))
	before := sim.Stats().Requests["listForSystem"]
	got, err := c.FetchNew(context.Background(), day, len(known), func(id int64) bool { return known[id] })
	if err != nil {
		t.Fatal(err)
	}
	if n := sim.Stats().Requests["listForSystem"] - before; n != 1 {
		t.Fatalf("FetchNew made %d list requests for two new records, want 1", n)
	}
	sameRecords(t, got, fresh)

	// Fewer records than known (one went away): the counts prove a removal, so the whole day.
	got, err = c.FetchNew(context.Background(), day, len(known)+5, func(id int64) bool { return known[id] })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all)+2 {
		t.Fatalf("after a removal FetchNew returned %d records, want the whole day (%d)", len(got), len(all)+2)
	}
}
