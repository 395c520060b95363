package wshoto

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/wshotosim"
)

// BenchmarkFetchDay200k fetches one day (about 10,000 records, 100 pages) from a simulator holding
// 200,000 records over 20 days, over HTTP on loopback.
func BenchmarkFetchDay200k(b *testing.B) {
	end := testNow
	sim, err := wshotosim.New(wshotosim.Config{Count: 200_000, Span: 20 * 24 * time.Hour, End: end,
		Clock: func() time.Time { return end }, StaticToken: "t"})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, AccessToken: "t", RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	day := time.Date(2024, 2, 1, 0, 0, 0, 0, shanghai)
	var n int
	b.ReportAllocs()
	for b.Loop() {
		recs, err := c.Fetch(context.Background(), day, day)
		if err != nil {
			b.Fatal(err)
		}
		n = len(recs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}
