package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/followpub/followpub/internal/state"
	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/poller"
)

// memory measures goal 5's second half: the process holding opts.ids remembered ids in its window,
// and the size of the state file.
func (d *driver) memory(ctx context.Context) ([]*table, error) {
	a, err := startAPI(wshotosim.Config{Count: -1, Location: d.loc}) // an API without records
	if err != nil {
		return nil, err
	}
	defer a.close()
	now := time.Now()
	floor := poller.StartOfDay(now, d.loc).AddDate(0, 0, -1) // where the poller keeps it: a day behind the window
	type sample struct{ rss, wall, cpu float64 }
	type key struct {
		bin string
		ids int
	}
	samples := map[key][]sample{}
	var size, sizeAfter int64
	var seen int
	for run := 1; run <= d.opts.runs; run++ {
		for _, bin := range d.bins {
			for _, ids := range []int{0, d.opts.ids} {
				path := filepath.Join(d.tmp, fmt.Sprintf("memory-%d-%d.state", run, ids))
				progress("memory run %d/%d, %s: state with %d remembered ids", run, d.opts.runs, bin.name, ids)
				if err := buildState(ctx, path, ids, floor, now); err != nil {
					return nil, err
				}
				fi, err := os.Stat(path)
				if err != nil {
					return nil, err
				}
				topic := topicName("memory")
				p, err := startProc(bin.path, map[string]string{
					"API_BASE_URL": a.url, "API_ACCESS_TOKEN": staticToken, "KAFKA_BROKERS": d.kafka.addrs[0],
					"KAFKA_TOPIC": topic, "STATE_PATH": path, "HTTP_ADDR": "", "LOG_FORMAT": "json",
				}, "run", "--once")
				if err != nil {
					return nil, err
				}
				err = p.wait(5 * time.Minute)
				d.kafka.deleteTopic(ctx, topic)
				if err != nil {
					return nil, err
				}
				u := p.usage()
				s := sample{rss: float64(u.maxRSS), wall: p.wall.Seconds(), cpu: u.cpu.Seconds()}
				progress("  peak RSS %.1f MiB, %s", mib(s.rss), p.wall.Round(time.Millisecond))
				samples[key{bin.name, ids}] = append(samples[key{bin.name, ids}], s)
				if ids == 0 {
					os.Remove(path)
					continue
				}
				size = fi.Size()
				if fi, err := os.Stat(path); err == nil {
					sizeAfter = fi.Size()
				}
				if seen, err = seenIDs(bin.path, path); err != nil {
					return nil, err
				}
				os.Remove(path)
			}
		}
	}
	med := func(ss []sample, f func(sample) float64) float64 {
		var xs []float64
		for _, s := range ss {
			xs = append(xs, f(s))
		}
		return median(xs)
	}
	t := &table{
		title: fmt.Sprintf("Goal 5 — %d remembered ids in the window: `run --once` against an API day without records", d.opts.ids),
		head:  []string{"state", "peak RSS MiB (median)", "process wall (median)", "CPU s (median)", "goal"},
	}
	for i, bin := range d.bins {
		label := ""
		if i > 0 {
			label = " [" + bin.name + "]"
		}
		empty, full := samples[key{bin.name, 0}], samples[key{bin.name, d.opts.ids}]
		t.add("empty (no ids)"+label, mib(med(empty, func(s sample) float64 { return s.rss })), time.Duration(med(empty, func(s sample) float64 { return s.wall })*1e9), med(empty, func(s sample) float64 { return s.cpu }), "")
		rss := mib(med(full, func(s sample) float64 { return s.rss }))
		t.add(fmt.Sprintf("%d ids (watermark show: seen %d)%s", d.opts.ids, seen, label), rss, time.Duration(med(full, func(s sample) float64 { return s.wall })*1e9), med(full, func(s sample) float64 { return s.cpu }), "≤ 128 MiB")
		if i == 0 {
			d.goal(fmt.Sprintf("peak RSS with %d remembered ids", d.opts.ids), "≤ 128 MiB", fmt.Sprintf("%.1f MiB", rss), rss <= 128)
		}
	}
	t.note("State file: %.1f MiB for %d ids as built (%.1f bytes per id), %.1f MiB after the run. "+
		"The state is built with internal/state directly (commits of 100,000 ids, follow_times spread over yesterday and today, the floor at yesterday's start: all of them stay in the window).",
		mib(float64(size)), d.opts.ids, float64(size)/float64(max(d.opts.ids, 1)), mib(float64(sizeAfter)))
	return []*table{t}, nil
}

// buildState writes a state at path with n ids whose follow_times are spread over [floor, now).
func buildState(ctx context.Context, path string, n int, floor, now time.Time) (err error) {
	st, err := state.Open(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()
	lo, hi := floor.UnixMilli(), now.Add(-time.Minute).UnixMilli()
	if err := st.Replace(ctx, lo, hi); err != nil {
		return err
	}
	const chunk = 100_000
	add := make([]poller.Published, 0, chunk)
	for i := range n {
		ft := lo + (hi-lo)*int64(i)/int64(max(n, 1))
		add = append(add, poller.Published{ID: 1_700_000_000_000_000 + int64(i)*7, FollowTime: ft})
		if len(add) == chunk || i == n-1 {
			if err := st.Commit(ctx, poller.Change{Add: add, Floor: lo, Watermark: hi}); err != nil {
				return err
			}
			add = add[:0]
		}
	}
	return nil
}

// seenIDs returns the number of remembered ids `followpub watermark show` reports.
func seenIDs(bin, path string) (int, error) {
	cmd := exec.Command(bin, "watermark", "show")
	cmd.Env = env(map[string]string{"STATE_PATH": path})
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("watermark show: %w", err)
	}
	var s struct {
		Seen int `json:"seen"`
	}
	if err := json.Unmarshal(out, &s); err != nil {
		return 0, fmt.Errorf("watermark show: %w: %s", err, out)
	}
	return s.Seen, nil
}
