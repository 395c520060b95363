package bench_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/followpub/followpub/bench"
	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/schema"
)

// TestPagesAnswersAsTheSimulator reads a day through Pages twice: the first read asks the
// simulator, the second is answered from memory alone, and both return every record of the day.
func TestPagesAnswersAsTheSimulator(t *testing.T) {
	loc := schema.APILocation()
	day := time.Date(2024, 2, 7, 0, 0, 0, 0, loc)
	sim, err := wshotosim.New(wshotosim.Config{
		Count: 450, Start: day, End: day.Add(23 * time.Hour), StaticToken: "t0ken-for-pages",
		Location: loc, Clock: func() time.Time { return day.Add(48 * time.Hour) },
	})
	if err != nil {
		t.Fatal(err)
	}
	pages := bench.NewPages(sim)
	c, err := wshoto.New(wshoto.Config{
		BaseURL: "http://127.0.0.1:9", AccessToken: "t0ken-for-pages", Location: loc, RateLimit: -1,
		HTTPClient: &http.Client{Transport: pages},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := sim.VisibleDays(day, day)
	for read := 1; read <= 2; read++ {
		recs, err := c.Fetch(context.Background(), day, day)
		if err != nil {
			t.Fatalf("read %d: %v", read, err)
		}
		if len(recs) != len(want) {
			t.Fatalf("read %d: %d records, want %d", read, len(recs), len(want))
		}
		byID := map[int64]string{}
		for _, r := range recs {
			byID[r.ID] = string(r.Raw)
		}
		for _, w := range want {
			if byID[w.ID] != string(w.Raw) {
				t.Fatalf("read %d: record %d differs from the simulator's", read, w.ID)
			}
		}
		if got := sim.Stats().Requests["listForSystem"]; got != 5 {
			t.Fatalf("after read %d the simulator served %d list requests, want 5 (the first read's pages only)", read, got)
		}
		if pages.Len() != 5 {
			t.Fatalf("Pages remembers %d answers, want 5", pages.Len())
		}
	}
}
