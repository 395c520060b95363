package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/followpub/followpub/internal/modroot"
)

// goalRow is one goal of issue 18 as this run measured it.
type goalRow struct {
	goal, target, measured string
	met                    bool
}

// goal records a goal's figure for the run's summary table.
func (d *driver) goal(goal, target, measured string, met bool) {
	d.goals = append(d.goals, goalRow{goal: goal, target: target, measured: measured, met: met})
}

// summary is the table of every goal the run measured, met or missed.
func (d *driver) summary() *table {
	t := &table{title: "Summary — every goal this run measured (medians)", head: []string{"goal", "target", "measured", ""}}
	for _, g := range d.goals {
		verdict := "**missed**"
		if g.met {
			verdict = "met"
		}
		t.add(g.goal, g.target, g.measured, verdict)
	}
	if len(d.goals) == 0 {
		t.note("No step with a goal ran.")
	}
	return t
}

// hotPath runs the hot path's testing.B (goal 1 of the first round: decode → dedupe → messages →
// commit to a state in memory, cycle/new) with the machine's CPUs, 5 times, and reports its
// medians.
func (d *driver) hotPath(ctx context.Context) ([]*table, error) {
	root, err := modroot.Dir()
	if err != nil {
		return nil, err
	}
	progress("hot path: go test ./bench -bench BenchmarkHotPath -count 5")
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "BenchmarkHotPath", "-benchmem", "-count", "5",
		"-cpu", strconv.Itoa(runtime.NumCPU()), "./bench")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go test ./bench -bench BenchmarkHotPath: %v\n%s", err, out)
	}
	figures := parseBench(out)
	t := &table{
		title: fmt.Sprintf("Goal 1 (kept) — hot path, `go test ./bench -bench BenchmarkHotPath -benchmem -count 5 -cpu %d` (medians of 5)", runtime.NumCPU()),
		head:  []string{"benchmark", "ns/record (wall)", "cpu-ns/record", "B/record", "allocs/record"},
	}
	for _, name := range []string{"decode", "messages", "cycle/new", "cycle/seen"} {
		f := figures[name]
		t.add(name, median(f["ns/record"]), median(f["cpu-ns/record"]), median(f["B/record"]), median(f["allocs/record"]))
	}
	c := figures["cycle/new"]
	ns, allocs := median(c["ns/record"]), median(c["allocs/record"])
	d.goal("hot path (cycle/new, wall, the machine's CPUs)", "≤ 1.5 µs and ≤ 4 allocations per record",
		fmt.Sprintf("%.2f µs (CPU %.2f µs), %.2f allocations", ns/1000, median(c["cpu-ns/record"])/1000, allocs), ns <= 1500 && allocs <= 4)
	return []*table{t}, nil
}

// parseBench reads `go test -bench` output: for each sub-benchmark of BenchmarkHotPath (without
// the -N CPU suffix), each unit's values over the runs.
func parseBench(out []byte) map[string]map[string][]float64 {
	res := map[string]map[string][]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkHotPath/") {
			continue
		}
		name := strings.TrimPrefix(f[0], "BenchmarkHotPath/")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		if res[name] == nil {
			res[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				res[name][f[i+1]] = append(res[name][f[i+1]], v)
			}
		}
	}
	return res
}
