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

// fetchChurn runs one Fetch against api and checks that every id present before it started, and
// still present at the end, is in the result.
func fetchChurn(t *testing.T, api *churnAPI) ([]int64, error) {
	t.Helper()
	before := slices.Clone(api.ids)
	srv := httptest.NewServer(api)
	defer srv.Close()
	c := newClient(t, srv, func(c *Config) { c.AccessToken = "t"; c.PageSize = 10; c.Concurrency = 1 })
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

func TestFetchUnderRandomInsertsNeverLosesARecord(t *testing.T) {
	// Arrivals anywhere in the list: the cheap re-read of the ends does not settle it every time,
	// but whatever Fetch accepts holds every record present throughout (checked by fetchChurn).
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		n := 0
		api := newChurn(60, func(a *churnAPI) {
			if n++; n < 12 {
				a.arrive(1, func(l int) int { return rng.IntN(l + 1) })
			}
		})
		if _, err := fetchChurn(t, api); err != nil && !errors.Is(err, ErrInconsistentPages) {
			t.Fatalf("seed %d: %v", seed, err)
		}
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
	served = 0
	api = newChurn(40, func(a *churnAPI) {
		if served++; served == 2 {
			a.ids = slices.Delete(a.ids, 0, 3)
		}
		a.arrive(1, func(int) int { return 0 })
	})
	if _, err := fetchChurn(t, api); err != nil && !errors.Is(err, ErrInconsistentPages) {
		t.Fatal(err)
	}
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
