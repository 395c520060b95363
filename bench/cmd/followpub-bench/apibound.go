package main

import (
	"context"
	"fmt"
	"time"

	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/poller"
)

// pagesOf returns the list requests one read of every day from the first to today takes: one per
// page, and one for a day without records.
func (d *driver) pagesOf(a *api) int {
	cfg := a.sim.Config()
	first := poller.StartOfDay(cfg.Start, d.loc)
	today := poller.StartOfDay(time.Now(), d.loc)
	pages := 0
	for day := first; !day.After(today); day = day.AddDate(0, 0, 1) {
		n := len(a.sim.VisibleDays(day, day))
		pages += max(1, (n+wshoto.DefaultPageSize-1)/wshoto.DefaultPageSize)
	}
	return pages
}

// apiBound measures goal 3: the backfill with API latency, at several concurrencies, against the
// bound pages × latency ÷ concurrency, and the request rate against API_RATE_LIMIT.
func (d *driver) apiBound(ctx context.Context) ([]*table, error) {
	a, err := startAPI(d.backfillSim(d.opts.latency))
	if err != nil {
		return nil, err
	}
	defer a.close()
	pages := d.pagesOf(a)
	t := &table{
		title: fmt.Sprintf("Goal 3 — API-bound backfill: %d records over %d days, %s per request, API_RATE_LIMIT=%g", d.opts.records, d.opts.days, d.opts.latency, d.opts.apiRate),
		head: []string{"API_CONCURRENCY", "bound = pages × latency ÷ concurrency", "cycle (median)", "cycle ÷ bound", "process (median)",
			"list requests", "most requests in any 1 s", "goal", "latency as served (mean)", "cycle ÷ bound as served"},
	}
	for _, c := range d.opts.concurrency {
		bound := time.Duration(pages) * d.opts.latency / time.Duration(c)
		type agg struct {
			cycles, walls, ratios []float64
			served, servedRatios  []float64
			reqs, peak            int
		}
		aggs := make([]agg, len(d.bins))
		for run := 1; run <= d.opts.runs; run++ {
			for i, bin := range d.bins {
				progress("API-bound backfill, concurrency %d, run %d/%d, %s (bound %s)", c, run, d.opts.runs, bin.name, bound)
				r, err := d.runBackfill(ctx, a, bin, map[string]string{
					"API_CONCURRENCY": fmt.Sprint(c), "API_RATE_LIMIT": fmt.Sprint(d.opts.apiRate),
				})
				if err != nil {
					return nil, err
				}
				g := &aggs[i]
				g.cycles = append(g.cycles, r.cycle.Seconds())
				g.walls = append(g.walls, r.wall.Seconds())
				g.ratios = append(g.ratios, r.cycle.Seconds()/bound.Seconds())
				sum := served(r.requests)
				g.served = append(g.served, sum.Seconds()/float64(len(r.requests)))
				g.servedRatios = append(g.servedRatios, r.cycle.Seconds()/(sum.Seconds()/float64(c)))
				g.reqs = max(g.reqs, len(r.requests))
				g.peak = max(g.peak, maxInWindow(r.requests, time.Second))
				progress("  cycle %s (%.2f × bound), %d requests, at most %d in 1 s", r.cycle.Round(time.Millisecond), r.cycle.Seconds()/bound.Seconds(), len(r.requests), maxInWindow(r.requests, time.Second))
			}
		}
		for i, bin := range d.bins {
			g := aggs[i]
			name := fmt.Sprint(c)
			if i > 0 {
				name += " [" + bin.name + "]"
			}
			t.add(name, bound, time.Duration(median(g.cycles)*float64(time.Second)), fmt.Sprintf("%.2f", median(g.ratios)),
				time.Duration(median(g.walls)*float64(time.Second)), g.reqs, fmt.Sprintf("%d (limit %g/s)", g.peak, d.opts.apiRate), "≤ 1.10, never above the limit",
				fmt.Sprintf("%.2f ms", median(g.served)*1000), fmt.Sprintf("%.2f", median(g.servedRatios)))
			if i == 0 {
				r := median(g.ratios)
				d.goal(fmt.Sprintf("API-bound backfill at API_CONCURRENCY=%d: cycle ÷ bound", c), fmt.Sprintf("≤ 1.10, never above %g requests/s", d.opts.apiRate),
					fmt.Sprintf("%.2f; at most %d requests in 1 s", r, g.peak), r <= 1.10 && float64(g.peak) <= d.opts.apiRate)
			}
		}
	}
	t.note("pages = %d: one list request per page of 100 records per day of the window, and one for a day without records (the window is every day from START_FROM through today). "+
		"The cycle is the poller's own measure (its `cycle done` log line); the process adds start-up (the topic exists already) and exit. "+
		"Requests are counted and timed as the simulator received them. "+
		"Latency as served: from a request's arrival at the simulator to the end of its answer. The simulator begins the answer at arrival + latency, "+
		"allowing for its timers' lateness, so this exceeds the configured latency by its own work (building and writing the page); the bound as served is the sum of those times ÷ concurrency, the least a cycle can take against this API, "+
		"so its ratio is followpub's own overhead. The goal is judged against the nominal bound.", pages)
	return []*table{t}, nil
}
