package main

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
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
	files, err = d.writeImages(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int{"steady-latency.png": {768, 384}, "peers-records-per-cpu-second.png": {864, 384}}
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
