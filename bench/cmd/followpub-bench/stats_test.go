package main

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestMedianAndPercentile(t *testing.T) {
	tests := []struct {
		xs          []float64
		median, p50 float64
		p99, p100   float64
	}{
		{[]float64{3, 1, 2}, 2, 2, 3, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 2, 4, 4},
		{[]float64{7}, 7, 7, 7, 7},
	}
	for _, tt := range tests {
		if got := median(tt.xs); got != tt.median {
			t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.median)
		}
		for _, c := range []struct{ p, want float64 }{{50, tt.p50}, {99, tt.p99}, {100, tt.p100}} {
			if got := percentile(tt.xs, c.p); got != c.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.xs, c.p, got, c.want)
			}
		}
	}
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1
	}
	if got := percentile(hundred, 99); got != 99 {
		t.Errorf("p99 of 1..100 = %v, want 99", got)
	}
	if !math.IsNaN(median(nil)) || !math.IsNaN(percentile(nil, 50)) {
		t.Error("no values: want NaN")
	}
}

func TestMaxInWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var reqs []request
	// 5 requests in the first 100 ms, then one every 300 ms, given out of order.
	for _, ms := range []int{900, 0, 20, 40, 60, 80, 300, 600, 1000} {
		reqs = append(reqs, request{at: t0.Add(time.Duration(ms) * time.Millisecond)})
	}
	if got := maxInWindow(reqs, time.Second); got != 8 {
		t.Errorf("most in 1 s = %d, want 8 (0–900 ms; the window excludes its end)", got)
	}
	if got := maxInWindow(reqs, 100*time.Millisecond); got != 5 {
		t.Errorf("most in 100 ms = %d, want 5", got)
	}
}

func TestBucketCycles(t *testing.T) {
	cs := []cycleRequests{
		{window: 0, requests: 1, result: "ok"},
		{window: 150, requests: 2, result: "ok"},
		{window: 180, requests: 4, result: "failed"},
		{window: 6000, requests: 61, result: "ok"},
	}
	got := bucketCycles(cs)
	want := []cycleBucket{{label: "0", n: 1, requests: 1}, {label: "100–199", n: 2, requests: 3, failed: 1}, {label: "≥ 5000", n: 1, requests: 61}}
	if len(got) != len(want) {
		t.Fatalf("buckets %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].label != want[i].label || got[i].n != want[i].n || got[i].requests != want[i].requests || got[i].failed != want[i].failed {
			t.Errorf("bucket %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestSnifferTotal(t *testing.T) {
	for body, want := range map[string]int64{
		`{"code":0,"msg":"ok","data":{"total":1234,"records":[]}}`: 1234,
		`{"code":3,"msg":"busy","data":null}`:                      -1,
	} {
		s := &sniffer{head: []byte(body)}
		if got := s.total(); got != want {
			t.Errorf("total of %s = %d, want %d", body, got, want)
		}
	}
}

func TestServed(t *testing.T) {
	reqs := []request{{took: 21 * time.Millisecond}, {took: 20 * time.Millisecond}, {took: 22 * time.Millisecond}}
	if got := served(reqs); got != 63*time.Millisecond {
		t.Fatalf("served = %v, want 63ms", got)
	}
	if got := served(nil); got != 0 {
		t.Fatalf("served(nil) = %v, want 0", got)
	}
}

func TestBusyTime(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := busyTime("cpu  100 2 30 5000 40 5 6 700 9 0\ncpu0 50 1 15 2500 20 2 3 350 4 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := 143 * clockTick; got != want { // 100+2+30+5+6: not idle, iowait, steal or guest
		t.Fatalf("busyTime = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, err := busyTime(bad); err == nil {
			t.Errorf("busyTime(%q) succeeded, want an error", bad)
		}
	}
}

func TestProcTime(t *testing.T) {
	line := "2351 (java thread) S 1 2351 2351 0 -1 4194560 80000 0 12 0 1234 567 0 0 20 0 60 0 900 4000000000 90000\n"
	got, err := procTime(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := (1234 + 567) * clockTick; got != want {
		t.Fatalf("procTime = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "2351 (java) S 1 2", "2351 (java) S 1 2351 2351 0 -1 4194560 80000 0 12 0 x 567 0"} {
		if _, err := procTime(bad); err == nil {
			t.Errorf("procTime(%q) succeeded, want an error", bad)
		}
	}
}

func TestRatioCellAndRunOrder(t *testing.T) {
	if got, want := ratioCell([]float64{100, 200, 50}, []float64{110, 180, 50}), "100% (110%, 90%, 100%)"; got != want {
		t.Errorf("ratioCell = %q, want %q", got, want)
	}
	if got := runOrder(3, 1); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("runOrder(3, 1) = %v, want [0 1 2]", got)
	}
	if got := runOrder(3, 2); !slices.Equal(got, []int{2, 1, 0}) {
		t.Errorf("runOrder(3, 2) = %v, want [2 1 0]", got)
	}
}
