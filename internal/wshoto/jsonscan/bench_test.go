package jsonscan

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/wshotosim"
)

// simPage returns a list answer of 100 generated records, as the simulator renders it.
func simPage(tb testing.TB) []byte {
	tb.Helper()
	now := time.Date(2024, 2, 7, 12, 0, 0, 0, time.FixedZone("CST", 8*3600))
	sim, err := wshotosim.New(wshotosim.Config{Count: 100, Clock: func() time.Time { return now }, StaticToken: "t"})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/openapi/crm/follow/listForSystem?access_token=t", "application/json",
		strings.NewReader(`{"current_index":1,"page_size":100}`))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("simulator page: status %d, %v", resp.StatusCode, err)
	}
	if lb, err := DecodeList(body, 100); err != nil || lb.Code != 0 || len(lb.Records) != 100 {
		tb.Fatalf("simulator page: code %d, %d records, %v: %.200s", lb.Code, len(lb.Records), err, body)
	}
	return body
}

func TestDecodeListAllocations(t *testing.T) {
	body := simPage(t)
	allocs := testing.AllocsPerRun(100, func() {
		lb, err := DecodeList(body, 100)
		if err != nil || len(lb.Records) != 100 {
			t.Fatal(len(lb.Records), err)
		}
	})
	// One slice of records per page, none per record.
	if allocs > 2 {
		t.Errorf("decoding a page of 100 records allocates %v times; want at most 2", allocs)
	}
}

// BenchmarkDecodeList compares the decoders on one simulated page of 100 records: scan is
// DecodeList, jsontext decodeListJSONText.
func BenchmarkDecodeList(b *testing.B) {
	body := simPage(b)
	for _, dec := range listDecoders {
		b.Run(dec.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dec.decode(body, 100); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/record")
		})
	}
}
