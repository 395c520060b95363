package wshoto

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/wshotosim"
)

// simPage returns a list answer of 100 generated records, as the simulator renders it.
func simPage(tb testing.TB) []byte {
	tb.Helper()
	sim, err := wshotosim.New(wshotosim.Config{Count: 100, Clock: func() time.Time { return testNow }, StaticToken: "t"})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, AccessToken: "t", RateLimit: -1})
	if err != nil {
		tb.Fatal(err)
	}
	var body []byte
	err = c.call(context.Background(), c.listEP, []byte(`{"current_index":1,"page_size":100}`), func(b []byte) error {
		body = append([]byte(nil), b...)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

func TestDecodeListAllocations(t *testing.T) {
	body := simPage(t)
	allocs := testing.AllocsPerRun(100, func() {
		lb, err := decodeList(body, 100)
		if err != nil || len(lb.records) != 100 {
			t.Fatal(len(lb.records), err)
		}
	})
	// One slice of records per page, none per record.
	if allocs > 2 {
		t.Errorf("decoding a page of 100 records allocates %v times; want at most 2", allocs)
	}
}

func BenchmarkDecodeList(b *testing.B) {
	body := simPage(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeList(body, 100); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/record")
}

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
