package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/modroot"
	"github.com/followpub/followpub/publisher"
)

// profileBackfill runs opts.runs more backfills (default codec) of followpub built with the
// cpuprofile tag, each writing a CPU profile into opts.profile, and returns the merged profile's
// largest functions (`go tool pprof -top`). These runs are apart from the measured ones: the
// profiler's own cost stays out of every other table.
func (d *driver) profileBackfill(ctx context.Context, a *api, msgs []kafka.Message) ([]*table, error) {
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
	var files, allocs, limits []string
	for run := 1; run <= d.opts.runs; run++ {
		progress("backfill profile %d/%d: the bare producer", run, d.opts.runs)
		lf := filepath.Join(d.opts.profile, fmt.Sprintf("limit-%d.pprof", run))
		if err := d.profileLimit(ctx, lf, msgs); err != nil {
			return nil, err
		}
		limits = append(limits, lf)
		progress("backfill profile %d/%d: followpub", run, d.opts.runs)
		f := filepath.Join(d.opts.profile, fmt.Sprintf("backfill-%d.pprof", run))
		af := filepath.Join(d.opts.profile, fmt.Sprintf("backfill-%d.allocs.pprof", run))
		if _, err := d.runBackfill(ctx, a, binary{name: "followpub (profiled)", path: bin}, map[string]string{
			"API_RATE_LIMIT": fmt.Sprint(d.opts.rateLimit), "KAFKA_COMPRESSION": publisher.DefaultCompression,
			"BENCH_CPUPROFILE": f, "BENCH_ALLOCSPROFILE": af,
		}); err != nil {
			return nil, err
		}
		files, allocs = append(files, f), append(allocs, af)
	}
	t, err := pprofTop(ctx, fmt.Sprintf("Goal 1 — CPU profile of followpub's backfill, KAFKA_COMPRESSION=%s (%d runs merged; `go tool pprof -top`)", publisher.DefaultCompression, d.opts.runs),
		append([]string{"-nodecount=30", bin}, files...))
	if err != nil {
		return nil, err
	}
	t.note("Profiles and the profiled binary are in %s: `go tool pprof -top %s %s` gives this table, `-cum` or `-list` more.", d.opts.profile, bin, strings.Join(files, " "))
	ta, err := pprofTop(ctx, fmt.Sprintf("Goal 1 — what followpub's backfill allocates, KAFKA_COMPRESSION=%s (%d runs merged; `go tool pprof -sample_index=alloc_space -top`)", publisher.DefaultCompression, d.opts.runs),
		append([]string{"-sample_index=alloc_space", "-nodecount=15", bin}, allocs...))
	if err != nil {
		return nil, err
	}
	ta.note("Every byte allocated is work for the garbage collector. `go tool pprof -sample_index=alloc_space -top %s %s` gives this table.", bin, strings.Join(allocs, " "))
	parts, err := d.partsTable(files, limits)
	if err != nil {
		return nil, err
	}
	return []*table{t, ta, parts}, nil
}

// pprofTop runs `go tool pprof -top args…` and returns its rows as a table.
func pprofTop(ctx context.Context, title string, args []string) (*table, error) {
	out, err := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof", "-top"}, args...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof -top %s: %w", strings.Join(args, " "), err)
	}
	t := &table{title: title, head: []string{"flat", "flat %", "sum %", "cum", "cum %", "function"}}
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
	return t, nil
}

// profileLimit runs the producer limit once more with this process's CPU profile written to path:
// the bare producer's side of the parts table.
func (d *driver) profileLimit(ctx context.Context, path string, msgs []kafka.Message) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("-profile: %w", err)
	}
	_, _, err = d.limitRun(ctx, publisher.DefaultCompression, msgs, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("-profile: %w", cerr)
	}
	return err
}

// A part of a backfill's CPU: the samples whose stack holds a function of one of the prefixes.
// The first part that matches a sample takes it, so the order matters.
type cpuPart struct {
	name     string
	prefixes []string
}

var cpuParts = []cpuPart{
	{"kafka-go: encoding and compressing the produce requests (its connection goroutines)", []string{"github.com/segmentio/kafka-go.(*conn).run"}},
	{"kafka-go: WriteMessages (partitioning, batching) and its other goroutines", []string{"github.com/segmentio/kafka-go"}},
	{"reading the pages: HTTP and decoding", []string{"github.com/followpub/followpub/internal/wshoto", "net/http."}},
	{"the state's commits", []string{"github.com/followpub/followpub/internal/state", "go.etcd.io/bbolt", "github.com/followpub/followpub/poller.(*Poller).commit"}},
	{"building the messages", []string{"github.com/followpub/followpub/publisher.(*Publisher).messages"}},
	{"the garbage collector's background work", []string{"runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge"}},
	{"the poller: dedupe, ordering, the floor", []string{"github.com/followpub/followpub/poller"}},
	{"start-up and configuration (before the cycle)", []string{"main.main", "runtime.doInit"}},
}

// partsTable splits followpub's profiled backfills and the bare producer's profiled writes into
// cpuParts, each as CPU ms of samples per 1,000 records, so that what followpub spends beyond the
// producer shows part by part.
func (d *driver) partsTable(followpub, limit []string) (*table, error) {
	fp, err := splitProfiles(followpub)
	if err != nil {
		return nil, err
	}
	lp, err := splitProfiles(limit)
	if err != nil {
		return nil, err
	}
	perK := func(ns int64, files int) float64 {
		return float64(ns) / 1e6 * 1000 / float64(d.opts.records*files)
	}
	t := &table{
		title: fmt.Sprintf("Goal 1 — where followpub's CPU goes beyond the bare producer's, KAFKA_COMPRESSION=%s: CPU ms of profile samples per 1,000 records (%d runs of each merged)", publisher.DefaultCompression, d.opts.runs),
		head:  []string{"part", "bare producer", "followpub", "followpub − bare producer"},
	}
	var fsum, lsum int64
	for i := 0; i <= len(cpuParts); i++ {
		name := "the rest: the runtime's scheduler, timers, other goroutines"
		if i < len(cpuParts) {
			name = cpuParts[i].name
		}
		fsum, lsum = fsum+fp[i], lsum+lp[i]
		t.add(name, perK(lp[i], len(limit)), perK(fp[i], len(followpub)), perK(fp[i], len(followpub))-perK(lp[i], len(limit)))
	}
	t.add("**all samples**", perK(lsum, len(limit)), perK(fsum, len(followpub)), perK(fsum, len(followpub))-perK(lsum, len(limit)))
	t.note("Each sample goes to the first part whose functions are on its stack. The bare producer's profile is of the benchmark driver's process during the producer limit's WriteMessages call (its simulator idle); followpub's of the whole process, start to exit. Samples miss some of the CPU time rusage counts, so the totals are below the goal table's.")
	return t, nil
}

// splitProfiles reads CPU profiles and returns the sampled CPU time (ns) of each cpuPart, with the
// samples that match none last.
func splitProfiles(files []string) ([]int64, error) {
	sums := make([]int64, len(cpuParts)+1)
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("reading the profile: %w", err)
		}
		p, err := profile.Parse(f)
		_ = f.Close() // read only
		if err != nil {
			return nil, fmt.Errorf("reading the profile %s: %w", name, err)
		}
		cpu := slices.IndexFunc(p.SampleType, func(t *profile.ValueType) bool { return t.Type == "cpu" })
		if cpu < 0 {
			return nil, fmt.Errorf("the profile %s has no cpu samples", name)
		}
		for _, s := range p.Sample {
			sums[partOf(s)] += s.Value[cpu]
		}
	}
	return sums, nil
}

// partOf returns the index in cpuParts of the first part with a function on the sample's stack, or
// len(cpuParts).
func partOf(s *profile.Sample) int {
	for i, part := range cpuParts {
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				for _, pre := range part.prefixes {
					if line.Function != nil && strings.HasPrefix(line.Function.Name, pre) {
						return i
					}
				}
			}
		}
	}
	return len(cpuParts)
}
