package main

import (
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestWriteImages draws both pictures from made-up figures and checks that each is a PNG of the
// size asked for; a measurement that did not run gets no picture.
func TestWriteImages(t *testing.T) {
	dir := t.TempDir()
	d := &driver{opts: options{runs: 2, steadyRate: 50}}
	files, err := d.writeImages(dir)
	if err != nil || len(files) != 0 {
		t.Fatalf("nothing measured: got %v, %v; want no picture", files, err)
	}
	d.steadyLat = [][]float64{{0.1, 0.4, 0.5, 0.5, 0.6, 0.9, 1.0}}
	run := func(cpu float64) peerRun { return peerRun{cpu: cpu, records: 1000} }
	d.peerFigures = &peerFigures{names: []string{"followpub", "peer"},
		backfills: [2][]peerRun{{run(0.01), run(0.02)}, {run(0.2), run(0.3)}},
		streams:   [2][]peerRun{{run(0.3)}, {run(2)}}}
	d.failoverRates = []failoverRate{{kind: "SIGKILL", counts: []float64{20, 20, 0, 0, 40, 20}}, {kind: "SIGTERM", counts: []float64{20, 21, 19, 20}}}
	files, err = d.writeImages(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int{"steady-latency.png": {768, 384}, "peers-records-per-cpu-second.png": {864, 384}, "failover-timeline.png": {768, 384}}
	if len(files) != len(want) {
		t.Fatalf("wrote %v, want %d pictures", files, len(want))
	}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(r)
		_ = r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		size, ok := want[filepath.Base(f)]
		if !ok || cfg.Width != size[0] || cfg.Height != size[1] {
			t.Errorf("%s: %d×%d, want %v", f, cfg.Width, cfg.Height, size)
		}
	}
}

func TestRateAround(t *testing.T) {
	signal := time.Unix(1000, 0)
	at := func(s float64) time.Time { return signal.Add(time.Duration(s * float64(time.Second))) }
	r := rateAround([]time.Time{at(-6), at(-5), at(-0.5), at(-0.1), at(0), at(3.2), at(11.9), at(12)}, "SIGKILL", signal)
	want := make([]float64, rateBefore+rateAfter)
	want[0], want[rateBefore-1], want[rateBefore], want[rateBefore+3], want[rateBefore+11] = 1, 2, 1, 1, 1
	if r.kind != "SIGKILL" || !slices.Equal(r.counts, want) {
		t.Fatalf("rateAround = %v %v, want SIGKILL %v", r.kind, r.counts, want)
	}
}
