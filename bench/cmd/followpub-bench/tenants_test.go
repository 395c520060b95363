package main

import (
	"math"
	"testing"
)

// TestScrapedSeries checks the readings of a scraped /metrics page the tenants measurement relies
// on: sums over tenants, label values, tenants with a completed cycle, and a histogram's quantile
// between two scrapes.
func TestScrapedSeries(t *testing.T) {
	m0 := map[string]float64{
		`followpub_cycles_total{result="ok",tenant="t1"}`:                      2,
		`followpub_cycles_total{result="failed",tenant="t1"}`:                  1,
		`followpub_kafka_write_duration_seconds_bucket{le="0.1",tenant="t1"}`:  1,
		`followpub_kafka_write_duration_seconds_bucket{le="1",tenant="t1"}`:    1,
		`followpub_kafka_write_duration_seconds_bucket{le="+Inf",tenant="t1"}`: 1,
	}
	m1 := map[string]float64{
		`followpub_cycles_total{result="ok",tenant="t1"}`:                      5,
		`followpub_cycles_total{result="failed",tenant="t1"}`:                  1,
		`followpub_cycles_total{result="ok",tenant="t2"}`:                      4,
		`followpub_cycles_total{result="ok",tenant="t3"}`:                      0,
		`followpub_cycles_totalx{result="ok",tenant="t1"}`:                     100, // another metric
		`followpub_kafka_write_duration_seconds_bucket{le="0.1",tenant="t1"}`:  91,
		`followpub_kafka_write_duration_seconds_bucket{le="1",tenant="t1"}`:    100,
		`followpub_kafka_write_duration_seconds_bucket{le="+Inf",tenant="t1"}`: 101,
	}
	if got := sumSeries(m1, "followpub_cycles_total", `result="ok"`); got != 9 {
		t.Errorf("ok cycles = %v, want 9", got)
	}
	if got := sumSeries(m1, "followpub_cycles_total") - sumSeries(m0, "followpub_cycles_total"); got != 7 {
		t.Errorf("cycles between the scrapes = %v, want 7", got)
	}
	if got := tenantsWithCycle(m1); got != 2 {
		t.Errorf("tenants with a cycle = %d, want 2 (t3 has none)", got)
	}
	if got := labelValue(`followpub_tenant_owned{tenant="t042"}`, "tenant"); got != "t042" {
		t.Errorf("labelValue = %q", got)
	}
	// Between the scrapes: 90 writes ≤ 0.1 s, 9 more ≤ 1 s, 1 slower.
	for _, tc := range []struct{ q, want float64 }{{0.5, 0.1}, {0.9, 0.1}, {0.99, 1}, {1, math.Inf(1)}} {
		if got := histQuantile(m0, m1, "followpub_kafka_write_duration_seconds", tc.q); got != tc.want {
			t.Errorf("quantile %v = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := histQuantile(m0, m1, "followpub_none", 0.99); !math.IsNaN(got) {
		t.Errorf("quantile of a histogram not scraped = %v, want NaN", got)
	}
}
