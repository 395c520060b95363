package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/publisher"
	"github.com/followpub/followpub/schema"
)

// steadyInterval is the POLL_INTERVAL of the steady state.
const steadyInterval = time.Second

// steadySample is one steady-state run.
type steadySample struct {
	p50, p99, max, cpuPer1000, rss   float64
	published, due, dueWant, visible int
	cycles, failed, requests         int
	perCycle                         []cycleRequests
	lat                              []float64 // each published record's latency (s)
	failures                         []string
}

// steadyState measures the steady state: records arriving at opts.steadyRate per second for opts.steady
// with POLL_INTERVAL=1s and the API defaults (API_RATE_LIMIT 10, API_CONCURRENCY 4).
func (d *driver) steadyState(ctx context.Context) ([]*table, error) {
	samples := make([][]steadySample, len(d.bins))
	for run := 1; run <= d.opts.runs; run++ {
		for _, i := range runOrder(len(d.bins), run) {
			bin := d.bins[i]
			progress("steady state run %d/%d, %s: %g records/s for %s", run, d.opts.runs, bin.name, d.opts.steadyRate, d.opts.steady)
			s, err := d.steadyOnce(ctx, bin)
			if err != nil {
				return nil, err
			}
			progress("  published %d of %d visible; latency p50 %.3fs p99 %.3fs; %d requests, %d cycles ok, %d failed",
				s.published, s.visible, s.p50, s.p99, s.requests, s.cycles, s.failed)
			samples[i] = append(samples[i], s)
		}
	}
	d.steadyLat = make([][]float64, len(d.bins))
	for i := range d.bins {
		for _, s := range samples[i] {
			d.steadyLat[i] = append(d.steadyLat[i], s.lat...)
		}
	}
	head := []string{"figure"}
	for _, bin := range d.bins {
		head = append(head, bin.name+" (median of runs)")
	}
	t := &table{
		title: fmt.Sprintf("Goal 4 — steady state: %g records/s for %s, POLL_INTERVAL=%s, API latency %s, API_RATE_LIMIT=10, API_CONCURRENCY=4 (defaults)",
			d.opts.steadyRate, d.opts.steady, steadyInterval, d.opts.latency),
		head: append(head, "goal"),
	}
	row := func(name, goal string, f func(steadySample) string) {
		cells := []any{name}
		for i := range d.bins {
			cells = append(cells, f(medianSample(samples[i])))
		}
		t.add(append(cells, goal)...)
	}
	secs := func(f func(steadySample) float64) func(steadySample) string {
		return func(s steadySample) string { return cell(f(s)) }
	}
	row("latency p50: visible in the API → appended by Kafka (s)", "", secs(func(s steadySample) float64 { return s.p50 }))
	row("latency p99 (s)", fmt.Sprintf("≤ %.2f", (steadyInterval+250*time.Millisecond).Seconds()), secs(func(s steadySample) float64 { return s.p99 }))
	row("latency max (s)", "", secs(func(s steadySample) float64 { return s.max }))
	row("records due (visible ≥ 2 intervals before the stop): published / visible", "all", func(s steadySample) string { return fmt.Sprintf("%d / %d", s.due, s.dueWant) })
	row("cycles ok / failed", "", func(s steadySample) string { return fmt.Sprintf("%d / %d", s.cycles, s.failed) })
	row("API list requests in the run", "", func(s steadySample) string { return fmt.Sprint(s.requests) })
	row("CPU seconds per 1,000 records published (user + system)", "", secs(func(s steadySample) float64 { return s.cpuPer1000 }))
	row("peak RSS (MiB)", "", secs(func(s steadySample) float64 { return mib(s.rss) }))
	t.note("Latency: from the moment a record became visible in the simulated API (its follow_time: the simulator makes arrival k visible at exactly that millisecond) " +
		"to the broker's LogAppendTime of the message (the topic is created with message.timestamp.type=LogAppendTime), both on this machine's clock, in milliseconds. " +
		"It includes waiting for the next cycle, reading the window, publishing and the broker's append; not the acknowledgement's way back to followpub. " +
		"Percentiles are over the records published; records never published do not count, so read them with the row below.")
	for i, bin := range d.bins {
		var reasons []string
		for _, s := range samples[i] {
			reasons = append(reasons, s.failures...)
		}
		if len(reasons) > 0 {
			t.note("%s: failed cycles said, e.g.: `%s`", bin.name, reasons[0])
		}
	}

	{
		m := medianSample(samples[0])
		var perCycle []float64
		for _, s := range samples[0] {
			for _, c := range s.perCycle {
				if c.result != "failed" {
					perCycle = append(perCycle, float64(c.requests))
				}
			}
		}
		goal := (steadyInterval + 250*time.Millisecond).Seconds()
		reqs := median(perCycle)
		d.goal(fmt.Sprintf("steady state (%g records/s, POLL_INTERVAL=%s): latency p99, list requests per cycle", d.opts.steadyRate, steadyInterval),
			fmt.Sprintf("p99 ≤ %.2f s with one request per cycle", goal),
			fmt.Sprintf("p99 %.2f s; %g request per cycle (median of %d cycles, max %g); %d / %d due published", m.p99, reqs, len(perCycle), percentile(perCycle, 100), m.due, m.dueWant),
			m.p99 <= goal && reqs == 1)
	}
	var tables = []*table{t}
	if len(d.bins) > 1 {
		tv := &table{
			title: "Variants against followpub, steady state: each variant's figure over followpub's in the same run (median, then run by run)",
			head:  []string{"variant", "latency p50", "latency p99", "CPU s per 1,000 records", "peak RSS"},
		}
		for i, bin := range d.bins[1:] {
			f := func(x func(steadySample) float64) string {
				return ratioCell(mapSamples(samples[0], x), mapSamples(samples[i+1], x))
			}
			tv.add(bin.name, f(func(s steadySample) float64 { return s.p50 }), f(func(s steadySample) float64 { return s.p99 }),
				f(func(s steadySample) float64 { return s.cpuPer1000 }), f(func(s steadySample) float64 { return s.rss }))
		}
		tv.note("The order of the binaries alternates from run to run. Above 100%% the variant is slower (latency) or spends more (CPU, RSS).")
		tables = append(tables, tv)
	}
	for i, bin := range d.bins {
		tc := &table{
			title: "Goal 4 — API requests per cycle against the size of today's window, " + bin.name + " (all runs)",
			head:  []string{"records in the window (data.total)", "cycles", "list requests per cycle (median)", "cycle duration (median)", "failed"},
		}
		var all []cycleRequests
		for _, s := range samples[i] {
			all = append(all, s.perCycle...)
		}
		for _, b := range bucketCycles(all) {
			tc.add(b.label, b.n, b.requests, b.duration, b.failed)
		}
		tc.note("Each cycle's list requests are those the simulator received before the cycle's end (its log line); its window size is the largest data.total the simulator answered it.")
		tables = append(tables, tc)
	}
	return tables, nil
}

// medianSample returns a sample whose every figure is the median of that figure over ss.
func medianSample(ss []steadySample) steadySample {
	m := func(f func(steadySample) float64) float64 {
		var xs []float64
		for _, s := range ss {
			xs = append(xs, f(s))
		}
		return median(xs)
	}
	return steadySample{
		p50: m(func(s steadySample) float64 { return s.p50 }), p99: m(func(s steadySample) float64 { return s.p99 }),
		max: m(func(s steadySample) float64 { return s.max }), cpuPer1000: m(func(s steadySample) float64 { return s.cpuPer1000 }),
		rss:       m(func(s steadySample) float64 { return s.rss }),
		published: int(m(func(s steadySample) float64 { return float64(s.published) })),
		due:       int(m(func(s steadySample) float64 { return float64(s.due) })),
		dueWant:   int(m(func(s steadySample) float64 { return float64(s.dueWant) })),
		visible:   int(m(func(s steadySample) float64 { return float64(s.visible) })),
		cycles:    int(m(func(s steadySample) float64 { return float64(s.cycles) })),
		failed:    int(m(func(s steadySample) float64 { return float64(s.failed) })),
		requests:  int(m(func(s steadySample) float64 { return float64(s.requests) })),
	}
}

// steadyOnce runs bin for opts.steady against a simulator where records arrive at
// opts.steadyRate per second, then stops it (SIGTERM) and measures.
func (d *driver) steadyOnce(ctx context.Context, bin binary) (steadySample, error) {
	topic := topicName("steady")
	// The broker stamps each record with the time it appended it (LogAppendTime): that is the time
	// Kafka acknowledged it, to the millisecond, on this machine's clock.
	if err := d.kafka.createTopic(ctx, topic, publisher.DefaultPartitions, map[string]string{"message.timestamp.type": "LogAppendTime"}); err != nil {
		return steadySample{}, err
	}
	defer d.kafka.deleteTopic(ctx, topic)
	state := filepath.Join(d.tmp, topic+".state")
	defer os.Remove(state)
	metricsAddr, err := freeAddr()
	if err != nil {
		return steadySample{}, err
	}
	a, err := startAPI(wshotosim.Config{Count: -1, Rate: d.opts.steadyRate, Latency: d.opts.latency, Location: d.loc})
	if err != nil {
		return steadySample{}, err
	}
	defer a.close()
	t0 := time.Now() // the simulator's start: arrival k becomes visible at t0 + (k+1)/rate
	p, err := startProc(bin.path, map[string]string{
		"API_BASE_URL":     a.url,
		"API_ACCESS_TOKEN": staticToken,
		"START_FROM":       "today",
		"POLL_INTERVAL":    steadyInterval.String(),
		"KAFKA_BROKERS":    d.kafka.addrs[0],
		"KAFKA_TOPIC":      topic,
		"STATE_PATH":       state,
		"HTTP_ADDR":        metricsAddr,
		"LOG_FORMAT":       "json",
	}, "run")
	if err != nil {
		return steadySample{}, err
	}
	time.Sleep(d.opts.steady)
	m, err := scrape("http://" + metricsAddr + "/metrics")
	if err != nil {
		progress("  scraping /metrics: %v", err)
	}
	stop := time.Now()
	visible := a.sim.Stats().Visible
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(60 * time.Second); err != nil {
		return steadySample{}, err
	}
	reqs := a.takeRequests()
	recs, err := d.kafka.consume(ctx, topic)
	if err != nil {
		return steadySample{}, err
	}
	var lat []float64
	due := 0
	for _, r := range recs {
		var ft int64
		for _, h := range r.Headers {
			if h.Key == schema.HeaderTime {
				ft, _ = schema.ParseCETime(string(h.Value))
			}
		}
		lat = append(lat, float64(r.Timestamp.UnixMilli()-ft)/1000)
		if time.UnixMilli(ft).Before(stop.Add(-2 * steadyInterval)) {
			due++
		}
	}
	u := p.usage()
	s := steadySample{
		p50: percentile(lat, 50), p99: percentile(lat, 99), max: percentile(lat, 100),
		published: len(recs), visible: visible, requests: len(reqs), rss: float64(u.maxRSS),
		cycles: int(m[`followpub_cycles_total{result="ok"}`]), failed: int(m[`followpub_cycles_total{result="failed"}`]),
		due: due, dueWant: int(stop.Add(-2*steadyInterval).Sub(t0).Seconds() * d.opts.steadyRate), lat: lat,
	}
	if len(recs) > 0 {
		s.cpuPer1000 = u.cpu.Seconds() / float64(len(recs)) * 1000
	}
	s.perCycle = requestsPerCycle(p, reqs)
	for _, l := range p.logs("cycle ended early") {
		if e := l.str("err"); e != "" && l.str("result") == "failed" {
			s.failures = append(s.failures, e)
		}
	}
	return s, nil
}

// cycleRequests is one cycle of a steady-state run.
type cycleRequests struct {
	window   int64 // the largest data.total answered to the cycle
	requests int
	duration time.Duration
	result   string // ok, failed or interrupted (the shutdown)
}

// requestsPerCycle assigns each list request to the cycle whose end (its log line) follows it.
func requestsPerCycle(p *proc, reqs []request) []cycleRequests {
	lines := p.logs("cycle done", "cycle ended early")
	slices.SortFunc(reqs, func(a, b request) int { return a.at.Compare(b.at) })
	var out []cycleRequests
	i := 0
	for _, l := range lines {
		end := l.time()
		c := cycleRequests{duration: parseLogDuration(l["duration"]), result: l.str("result")}
		for i < len(reqs) && !reqs[i].at.After(end) {
			c.requests++
			c.window = max(c.window, reqs[i].total)
			i++
		}
		if c.requests > 0 {
			out = append(out, c)
		}
	}
	return out
}

type cycleBucket struct {
	label    string
	n        int
	requests float64
	duration time.Duration
	failed   int
}

// bucketCycles groups cycles by the size of their window.
func bucketCycles(cs []cycleRequests) []cycleBucket {
	bounds := []int64{0, 1, 100, 200, 500, 1000, 2000, 3000, 5000, 1 << 62}
	var out []cycleBucket
	for i := 0; i+1 < len(bounds); i++ {
		var reqs, durs []float64
		failed := 0
		for _, c := range cs {
			if c.window >= bounds[i] && c.window < bounds[i+1] {
				reqs = append(reqs, float64(c.requests))
				durs = append(durs, float64(c.duration))
				if c.result == "failed" {
					failed++
				}
			}
		}
		if len(reqs) == 0 {
			continue
		}
		label := fmt.Sprintf("%d–%d", bounds[i], bounds[i+1]-1)
		switch {
		case bounds[i+1] == 1<<62:
			label = fmt.Sprintf("≥ %d", bounds[i])
		case bounds[i+1]-bounds[i] == 1:
			label = fmt.Sprint(bounds[i])
		}
		out = append(out, cycleBucket{label: label, n: len(reqs), requests: median(reqs), duration: time.Duration(median(durs)), failed: failed})
	}
	return out
}
