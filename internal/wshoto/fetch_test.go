package wshoto

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/wshotosim"
)

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

func TestListReaderRefusesWhatNoChangeExplains(t *testing.T) {
	// More records than a page holds, on any page, or a total too large to page through: the
	// answer is malformed, whatever the list did meanwhile.
	tests := []struct {
		name      string
		total     int64
		badPage   int
		records   int
		says      string
		wantPages int64
	}{
		{"page 2 over page_size", 30, 2, 11, "page 2 has 11 records, more than page_size 10", 2},
		{"implausible total", maxPlausibleTotal + 1, 1, 10, "not plausible", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := requests.Add(1)
				count := 10
				if n == int64(tt.badPage) {
					count = tt.records
				}
				recs := make([]string, count)
				for i := range recs {
					recs[i] = fmt.Sprintf(`{"id":%d,"follow_time":1}`, n*100+int64(i))
				}
				fmt.Fprintf(w, `{"code":0,"data":{"total":%d,"records":[%s]}}`, tt.total, strings.Join(recs, ","))
			}))
			defer srv.Close()
			c := newClient(t, srv, func(c *Config) { c.AccessToken = "t"; c.PageSize = 10; c.Concurrency = 1 })
			_, err := c.Fetch(context.Background(), winFrom, winTo)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("error %v; want ErrMalformed saying %q", err, tt.says)
			}
			if n := requests.Load(); n != tt.wantPages {
				t.Fatalf("%d requests; want %d (a refused answer is not retried, nor paged past)", n, tt.wantPages)
			}
		})
	}
}
