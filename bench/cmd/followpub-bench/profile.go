package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/followpub/followpub/internal/modroot"
	"github.com/followpub/followpub/publisher"
)

// profileBackfill runs opts.runs more backfills (default codec) of followpub built with the
// cpuprofile tag, each writing a CPU profile into opts.profile, and returns the merged profile's
// largest functions (`go tool pprof -top`). These runs are apart from the measured ones: the
// profiler's own cost stays out of every other table.
func (d *driver) profileBackfill(ctx context.Context, a *api) (*table, error) {
	root, err := modroot.Dir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.opts.profile, 0o755); err != nil {
		return nil, fmt.Errorf("-profile: %w", err)
	}
	bin := filepath.Join(d.opts.profile, "followpub")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "cpuprofile", "-o", bin, "./cmd/followpub")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building followpub with -tags cpuprofile: %v\n%s", err, out)
	}
	var files []string
	for run := 1; run <= d.opts.runs; run++ {
		progress("backfill profile %d/%d", run, d.opts.runs)
		f := filepath.Join(d.opts.profile, fmt.Sprintf("backfill-%d.pprof", run))
		if _, err := d.runBackfill(ctx, a, binary{name: "followpub (profiled)", path: bin}, map[string]string{
			"API_RATE_LIMIT": fmt.Sprint(d.opts.rateLimit), "KAFKA_COMPRESSION": publisher.DefaultCompression, "BENCH_CPUPROFILE": f,
		}); err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	args := append([]string{"tool", "pprof", "-top", "-nodecount=30", bin}, files...)
	out, err := exec.CommandContext(ctx, "go", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof -top: %w", err)
	}
	t := &table{
		title: fmt.Sprintf("Goal 1 — CPU profile of followpub's backfill, KAFKA_COMPRESSION=%s (%d runs merged; `go tool pprof -top`)", publisher.DefaultCompression, d.opts.runs),
		head:  []string{"flat", "flat %", "sum %", "cum", "cum %", "function"},
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") {
			if strings.Contains(l, "samples") || strings.HasPrefix(l, "Showing") {
				t.note("%s", strings.TrimSpace(l))
			}
			continue
		}
		t.add(f[0], f[1], f[2], f[3], f[4], "`"+strings.Join(f[5:], " ")+"`")
	}
	t.note("Profiles and the profiled binary are in %s: `go tool pprof -top %s %s` gives this table, `-cum` or `-list` more.", d.opts.profile, bin, strings.Join(files, " "))
	return t, nil
}
