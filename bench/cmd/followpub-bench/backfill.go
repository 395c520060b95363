package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
)

// backfillSim returns the simulator configuration of the backfills: opts.records records over
// opts.days days ending now, answered after latency.
func (d *driver) backfillSim(latency time.Duration) wshotosim.Config {
	end := time.Now()
	return wshotosim.Config{
		Count: d.opts.records, Start: end.Add(-time.Duration(d.opts.days) * 24 * time.Hour), End: end,
		Location: d.loc, Latency: latency,
	}
}

// backfillVars is the environment of a `run --once` backfill from an empty state into topic.
func (d *driver) backfillVars(a *api, topic, state string) map[string]string {
	start := poller.StartOfDay(a.sim.Config().Start, d.loc)
	return map[string]string{
		"API_BASE_URL":     a.url,
		"API_ACCESS_TOKEN": staticToken,
		"START_FROM":       start.Format(poller.DateLayout),
		"KAFKA_BROKERS":    d.kafka.addrs[0],
		"KAFKA_TOPIC":      topic,
		"STATE_PATH":       state,
		"HTTP_ADDR":        "",
		"LOG_FORMAT":       "json",
	}
}

// settle is how long a backfill or the producer limit waits after setting up its topic before it
// starts: the broker finishes creating it (and deleting the previous run's) in the background, work
// that would otherwise be counted in the run's CPU time.
const settle = 300 * time.Millisecond

// backfillRun is one followpub backfill.
type backfillRun struct {
	wall, cycle time.Duration
	usage       usage
	cpu         cpuSpent // from the start to the exit of the process; self is the simulator's
	bytes       int64
	requests    []request
}

// runBackfill runs `followpub run --once` from an empty state into a fresh topic (of three
// partitions, followpub's default) with the extra variables, checks that every record arrived
// once, and measures it.
func (d *driver) runBackfill(ctx context.Context, a *api, bin binary, extra map[string]string) (backfillRun, error) {
	topic := topicName("followpub")
	state := filepath.Join(d.tmp, topic+".state")
	defer os.Remove(state)
	defer d.kafka.deleteTopic(ctx, topic)
	vars := d.backfillVars(a, topic, state)
	for k, v := range extra {
		vars[k] = v
	}
	// Created beforehand, as the producer limit's is: the broker's work of creating a topic (some
	// 0.4 CPU s here) would otherwise run beside followpub's cycle and be charged to it.
	if err := d.kafka.createTopic(ctx, topic, publisher.DefaultPartitions, nil); err != nil {
		return backfillRun{}, err
	}
	time.Sleep(settle)
	a.takeRequests()
	mark, err := markCPU(d.brokerPID)
	if err != nil {
		return backfillRun{}, err
	}
	p, err := startProc(bin.path, vars, "run", "--once")
	if err != nil {
		return backfillRun{}, err
	}
	if err := p.wait(20 * time.Minute); err != nil {
		return backfillRun{}, err
	}
	r := backfillRun{wall: p.wall, cycle: p.cycleDuration(), usage: p.usage(), requests: a.takeRequests()}
	if r.cpu, err = mark.since(); err != nil {
		return r, err
	}
	n, err := d.kafka.count(ctx, topic)
	if err != nil {
		return r, err
	}
	if n != int64(d.opts.records) {
		return r, fmt.Errorf("topic %s holds %d records after the backfill, want %d", topic, n, d.opts.records)
	}
	if r.bytes, err = d.kafka.logBytes(ctx, topic); err != nil {
		return r, err
	}
	return r, nil
}

// limitRun writes msgs with the plain writer into a fresh topic of three partitions (followpub's
// default) and measures it: the time and CPU the write took (self is the writer's), and the bytes
// on the broker. With a non-nil profile, the write alone is CPU-profiled into it.
func (d *driver) limitRun(ctx context.Context, codec string, msgs []kafka.Message, profile io.Writer) (cpuSpent, int64, error) {
	topic := topicName("limit")
	if err := d.kafka.createTopic(ctx, topic, publisher.DefaultPartitions, nil); err != nil {
		return cpuSpent{}, 0, err
	}
	defer d.kafka.deleteTopic(ctx, topic)
	time.Sleep(settle)
	// Collected now, the driver's heap (the simulator's records, the messages) leaves the writer no
	// collection to pay for that is not the writer's work (docs/BENCHMARKS.md, goal 1).
	runtime.GC()
	mark, err := markCPU(d.brokerPID)
	if err != nil {
		return cpuSpent{}, 0, err
	}
	if profile != nil {
		if err := pprof.StartCPUProfile(profile); err != nil {
			return cpuSpent{}, 0, fmt.Errorf("-profile: profiling the producer limit: %w", err)
		}
	}
	took, err := producerLimit(ctx, d.kafka.addrs, topic, codec, msgs)
	if profile != nil {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return cpuSpent{}, 0, err
	}
	spent, err := mark.since()
	if err != nil {
		return cpuSpent{}, 0, err
	}
	spent.wall = took
	n, err := d.kafka.count(ctx, topic)
	if err != nil {
		return cpuSpent{}, 0, err
	}
	if n != int64(len(msgs)) {
		return cpuSpent{}, 0, fmt.Errorf("limit topic holds %d records, want %d", n, len(msgs))
	}
	size, err := d.kafka.logBytes(ctx, topic)
	return spent, size, err
}

// warmUp runs one producer-limit write and one backfill of each binary, none of them counted: the
// first of a session meets a cold broker and a driver heap kafka-go has never grown, and its goal 1
// ratio was each set's lowest (docs/BENCHMARKS.md).
func (d *driver) warmUp(ctx context.Context, a *api, msgs []kafka.Message) error {
	codec := d.opts.codecs[0]
	progress("backfill warm-up (not counted), %s: producer limit", codec)
	if _, _, err := d.limitRun(ctx, codec, msgs, nil); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	for _, bin := range d.bins {
		progress("backfill warm-up (not counted), %s: %s", codec, bin.name)
		if _, err := d.runBackfill(ctx, a, bin, map[string]string{"API_RATE_LIMIT": fmt.Sprint(d.opts.rateLimit), "KAFKA_COMPRESSION": codec}); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	return nil
}

// backfill measures goals 2 (throughput against the producer limit), 5 (peak RSS of the backfill)
// and 6 (codecs): for each run and codec, the producer limit, then followpub, in the same run.
func (d *driver) backfill(ctx context.Context) ([]*table, error) {
	a, err := startAPI(d.backfillSim(0))
	if err != nil {
		return nil, err
	}
	defer a.close()
	recs := a.sim.Visible()
	pub, err := publisher.New(publisher.Config{Brokers: d.kafka.addrs})
	if err != nil {
		return nil, err
	}
	msgs := pub.Messages(recs)
	_ = pub.Close()
	var raw int64
	for _, r := range recs {
		raw += int64(len(r.Raw))
	}

	type sample struct {
		limitRate, fpRate, cycleRate, ratio float64
		limitBytes, fpBytes                 float64
		rss, cpu                            float64 // followpub's peak RSS (bytes) and CPU time (s)
		faults                              float64 // followpub's page faults
		requests, busiest                   int     // list requests in all, and in the busiest second
		limitCPU, fpCPU                     cpuSpent
	}
	type key struct{ codec, bin string }
	samples := map[key][]sample{}
	if err := d.warmUp(ctx, a, msgs); err != nil {
		return nil, err
	}
	for run := 1; run <= d.opts.runs; run++ {
		for _, codec := range d.opts.codecs {
			progress("backfill run %d/%d, %s: producer limit", run, d.opts.runs, codec)
			lcpu, lbytes, err := d.limitRun(ctx, codec, msgs, nil)
			if err != nil {
				return nil, err
			}
			took := lcpu.wall
			for _, bi := range runOrder(len(d.bins), run) {
				bin := d.bins[bi]
				progress("backfill run %d/%d, %s: %s", run, d.opts.runs, codec, bin.name)
				r, err := d.runBackfill(ctx, a, bin, map[string]string{"API_RATE_LIMIT": fmt.Sprint(d.opts.rateLimit), "KAFKA_COMPRESSION": codec})
				if err != nil {
					return nil, err
				}
				n := float64(d.opts.records)
				s := sample{
					limitRate: n / took.Seconds(), fpRate: n / r.wall.Seconds(), cycleRate: n / r.cycle.Seconds(),
					limitBytes: float64(lbytes), fpBytes: float64(r.bytes),
					rss: float64(r.usage.maxRSS), cpu: r.usage.cpu.Seconds(), faults: float64(r.usage.faults), requests: len(r.requests),
					busiest:  maxInWindow(r.requests, time.Second),
					limitCPU: lcpu, fpCPU: r.cpu,
				}
				s.ratio = s.fpRate / s.limitRate
				progress("  limit %.0f rec/s, %s %.0f rec/s (%.0f%%), cycle %s, peak RSS %.1f MiB, CPU %.2fs",
					s.limitRate, bin.name, s.fpRate, 100*s.ratio, r.cycle.Round(time.Millisecond), mib(s.rss), s.cpu)
				samples[key{codec, bin.name}] = append(samples[key{codec, bin.name}], s)
			}
		}
	}
	med := func(codec, bin string, f func(sample) float64) float64 {
		var xs []float64
		for _, s := range samples[key{codec, bin}] {
			xs = append(xs, f(s))
		}
		return median(xs)
	}
	label := func(bin string) string {
		if bin == d.bins[0].name {
			return ""
		}
		return " [" + bin + "]"
	}

	def := publisher.DefaultCompression
	tp := &table{
		title: fmt.Sprintf("Goal 2 — backfill throughput: %d records over %d days, API latency 0, `run --once`, KAFKA_COMPRESSION=%s", d.opts.records, d.opts.days, def),
		head:  []string{"", "records/s (median)", "of the producer limit (median of per-run ratios)", "goal"},
	}
	if first, ok := samples[key{def, d.bins[0].name}]; ok {
		tp.add("producer limit: plain kafka-go Writer, same messages and settings", med(def, d.bins[0].name, func(s sample) float64 { return s.limitRate }), "100%", "")
		for _, bin := range d.bins {
			tp.add("followpub `run --once`, process start to exit"+label(bin.name), med(def, bin.name, func(s sample) float64 { return s.fpRate }),
				pct(med(def, bin.name, func(s sample) float64 { return s.ratio })), "≥ 80%")
			tp.add("followpub, the cycle alone (from its log)"+label(bin.name), med(def, bin.name, func(s sample) float64 { return s.cycleRate }),
				pct(med(def, bin.name, func(s sample) float64 { return s.cycleRate / s.limitRate })), "")
		}
		busiest := 0
		for _, s := range first {
			busiest = max(busiest, s.busiest)
		}
		tp.note("API_RATE_LIMIT=%g, so that it does not bind: %d list requests, at most %d in any one second. API_CONCURRENCY=4 (default), 3 partitions, acks=all, empty state and a fresh topic each run, created before the run as the limit's is. "+
			"The producer limit writes the same %d pre-built messages (publisher.Messages) in one WriteMessages call with the publisher's producer settings (murmur2, RequireAll, BatchSize %d, BatchBytes %d, BatchTimeout %s, codec, transport).",
			d.opts.rateLimit, first[0].requests, busiest, d.opts.records, publisher.DefaultBatchSize, publisher.DefaultBatchBytes, publisher.DefaultBatchTimeout)
	}

	tu := &table{
		title: fmt.Sprintf("Goal 2 — where the CPU goes, KAFKA_COMPRESSION=%s: CPU ms per 1,000 records (medians)", def),
		head: []string{"", fmt.Sprintf("CPUs busy (of %d)", runtime.NumCPU()), "whole machine", "the producer process",
			"the simulator (driver)", "the broker", "the rest: kernel, other tenants"},
	}
	perK := func(t time.Duration) float64 { return 1000 * t.Seconds() * 1000 / float64(d.opts.records) }
	addShares := func(name string, xs []cpuShares) {
		m := func(f func(cpuShares) float64) float64 {
			var v []float64
			for _, x := range xs {
				v = append(v, f(x))
			}
			return median(v)
		}
		broker := any("unknown")
		if d.brokerPID > 0 {
			broker = m(func(x cpuShares) float64 { return perK(x.broker) })
		}
		tu.add(name, m(func(x cpuShares) float64 { return x.busy }), m(func(x cpuShares) float64 { return perK(x.machine) }),
			m(func(x cpuShares) float64 { return perK(x.producer) }), m(func(x cpuShares) float64 { return perK(x.simulator) }),
			broker, m(func(x cpuShares) float64 { return perK(x.rest) }))
	}
	fpShares := func(s sample) cpuShares {
		return s.fpCPU.shares(time.Duration(s.cpu*float64(time.Second)), s.fpCPU.self)
	}
	if first, ok := samples[key{def, d.bins[0].name}]; ok {
		var limit []cpuShares
		var bound, noSim, budget, left, leftLike []float64
		for _, s := range first {
			l, fp := s.limitCPU.shares(s.limitCPU.self, 0), fpShares(s)
			limit = append(limit, l)
			bound = append(bound, l.machine.Seconds()/fp.machine.Seconds())
			noSim = append(noSim, l.machine.Seconds()/(fp.machine-fp.simulator).Seconds())
			// At 80 % of the limit's rate, with the CPUs as busy as in this run: the whole
			// machine's CPU ms per 1,000 records, and what the others' shares leave followpub, as
			// measured and with the broker spending per record what it spent on the limit's.
			b := fp.busy * 1e6 / (0.8 * s.limitRate)
			budget = append(budget, b)
			left = append(left, b-perK(fp.machine-fp.producer))
			leftLike = append(leftLike, b-perK(fp.simulator+fp.rest+l.broker))
		}
		addShares("producer limit (its writer runs in the driver)", limit)
		for _, bin := range d.bins {
			var fp []cpuShares
			for _, s := range samples[key{def, bin.name}] {
				fp = append(fp, fpShares(s))
			}
			addShares("followpub `run --once`"+label(bin.name), fp)
		}
		tu.note("Over the limit's WriteMessages call and over followpub's process from start to exit, each after its topic was set up and the broker given %s to settle: the machine from /proc/stat (user, nice, system, irq, softirq of all CPUs), the driver from getrusage, followpub from its rusage, the broker from /proc/PID/stat (FOLLOWPUB_TEST_KAFKA_PID). "+
			"Where both runs keep the CPUs busy, throughput goes as CPU time per record: the limit's machine CPU per record over followpub's is %s (median of runs), %s leaving out the simulator, which stands in for an API that runs elsewhere. "+
			"At 80 %% of the limit, with the CPUs as busy as in followpub's runs, the machine has %.2f CPU ms per 1,000 records; the simulator, the broker and the rest leave followpub %.2f of them (medians of runs).",
			settle, pct(median(bound)), pct(median(noSim)), median(budget), median(left))
		if d.brokerPID > 0 {
			tu.note("Were the broker to spend on followpub's records what it spent on the limit's, followpub would have %.2f.", median(leftLike))
		} else {
			tu.note("The broker's pid is unknown: its CPU time is in the rest.")
		}
	}

	tr := ownCPUTable(d, def, func(bin string) []sample { return samples[key{def, bin}] },
		func(s sample) (limit, own spend) {
			return spend{cpu: s.limitCPU.self.Seconds(), faults: float64(s.limitCPU.faults)}, spend{cpu: s.cpu, faults: s.faults}
		})

	tm := &table{title: "Goal 5 — peak RSS of the backfill (VmHWM of the followpub process)", head: []string{"KAFKA_COMPRESSION", "peak RSS MiB (median)", "max of runs", "CPU s per 1,000 records", "goal"}}
	for _, c := range d.opts.codecs {
		for _, bin := range d.bins {
			var mx float64
			for _, s := range samples[key{c, bin.name}] {
				mx = math.Max(mx, s.rss)
			}
			rss := mib(med(c, bin.name, func(s sample) float64 { return s.rss }))
			tm.add(c+label(bin.name), rss, mib(mx),
				1000*med(c, bin.name, func(s sample) float64 { return s.cpu })/float64(d.opts.records), "≤ 64 MiB")
			if c == def && bin.name == d.bins[0].name {
				d.goal(fmt.Sprintf("peak RSS of the %d-record backfill (%s)", d.opts.records, c), "≤ 64 MiB", fmt.Sprintf("%.1f MiB (max of runs %.1f)", rss, mib(mx)), rss <= 64)
			}
		}
	}

	tc := &table{
		title: "Goal 6 — codecs: producer limit, followpub, bytes on the broker",
		head:  []string{"KAFKA_COMPRESSION", "limit records/s", "followpub records/s", "followpub / limit", "broker bytes per record", "of uncompressed values"},
	}
	for _, c := range d.opts.codecs {
		for _, bin := range d.bins {
			b := med(c, bin.name, func(s sample) float64 { return s.fpBytes })
			tc.add(c+label(bin.name), med(c, bin.name, func(s sample) float64 { return s.limitRate }), med(c, bin.name, func(s sample) float64 { return s.fpRate }),
				pct(med(c, bin.name, func(s sample) float64 { return s.ratio })), b/float64(d.opts.records), pct(b/float64(raw)))
		}
	}
	tc.note("Broker bytes: the size of the topic's log segments (DescribeLogDirs) after the run: record batches with keys, headers and values, compressed. "+
		"The values alone average %.0f bytes per record uncompressed.", float64(raw)/float64(d.opts.records))
	tables := []*table{tp, tr, tu, tc, tm}
	if d.opts.profile != "" {
		ts, err := d.profileBackfill(ctx, a, msgs)
		if err != nil {
			return nil, err
		}
		tables = append(tables, ts...)
	}
	if len(d.bins) > 1 {
		tv := &table{
			title: "Variants against followpub, backfill: each variant's figure over followpub's in the same run (median, then run by run)",
			head:  []string{"KAFKA_COMPRESSION", "records/s, start to exit", "records/s, the cycle alone", "CPU s per record (its rusage)", "peak RSS"},
		}
		for _, c := range d.opts.codecs {
			base := samples[key{c, d.bins[0].name}]
			for _, bin := range d.bins[1:] {
				v := samples[key{c, bin.name}]
				f := func(x func(sample) float64) string {
					return ratioCell(mapSamples(base, x), mapSamples(v, x))
				}
				tv.add(c+label(bin.name), f(func(s sample) float64 { return s.fpRate }), f(func(s sample) float64 { return s.cycleRate }),
					f(func(s sample) float64 { return s.cpu }), f(func(s sample) float64 { return s.rss }))
			}
		}
		tv.note("A ratio within one run compares the two binaries under the same load; the order of the binaries alternates from run to run. Above 100%% the variant is faster (records/s) or spends more (CPU, RSS).")
		tables = append(tables, tv)
	}
	return tables, nil
}

// ownCPUTable is goal 1 of issue 18: each binary's own CPU time per 1,000 records (its rusage)
// against the bare producer's (the plain kafka-go Writer writing the same messages in the same
// run), with the ratio as the median of the per-run ratios.
func ownCPUTable[S any](d *driver, codec string, runs func(bin string) []S, cost func(S) (limit, own spend)) *table {
	t := &table{
		title: fmt.Sprintf("Goal 1 — followpub's own CPU per 1,000 records against the bare producer, KAFKA_COMPRESSION=%s (medians)", codec),
		head: []string{"", "bare producer: CPU ms per 1,000 records", "followpub: CPU ms per 1,000 records", "followpub / bare producer (median of per-run ratios; each run)", "goal",
			"bare producer: page faults per 1,000 records", "followpub: page faults per 1,000 records"},
	}
	perK := 1e6 / float64(d.opts.records)
	for _, bin := range d.bins {
		ss := runs(bin.name)
		if len(ss) == 0 {
			continue
		}
		var limit, own, limitFaults, ownFaults []float64
		for _, s := range ss {
			l, o := cost(s)
			limit, own = append(limit, l.cpu*perK), append(own, o.cpu*perK)
			limitFaults, ownFaults = append(limitFaults, l.faults*1000/float64(d.opts.records)), append(ownFaults, o.faults*1000/float64(d.opts.records))
		}
		name := bin.name
		if bin.name == d.bins[0].name {
			name = "followpub `run --once`"
		}
		var xs []float64
		var each []string
		for i := range own {
			xs = append(xs, own[i]/limit[i])
			each = append(each, fmt.Sprintf("%.2f×", own[i]/limit[i]))
		}
		t.add(name, median(limit), median(own), fmt.Sprintf("**%.2f×** (%s)", median(xs), strings.Join(each, ", ")), "≤ 1.5×",
			fmt.Sprintf("%.0f", median(limitFaults)), fmt.Sprintf("%.0f", median(ownFaults)))
		if bin.name == d.bins[0].name {
			d.goal(fmt.Sprintf("followpub's own CPU per 1,000 records ÷ the bare producer's (backfill, %s)", codec), "≤ 1.5×",
				fmt.Sprintf("%.2f× (%.2f vs %.2f CPU ms; runs %s)", median(xs), median(own), median(limit), strings.Join(each, ", ")), median(xs) <= 1.5)
		}
	}
	t.note("The bare producer is the producer limit's run: the same %d messages (publisher.Messages, built before the clock starts) in one WriteMessages call of a plain kafka-go Writer with the publisher's settings; its CPU is the driver's getrusage over that call, started after a garbage collection of the driver's heap (the simulator it also serves is idle then). "+
		"followpub's is its own rusage (user + system) from start to exit of `run --once`: reading the pages, decoding, dedupe, building the messages, kafka-go, the state's commits. The two run seconds apart in each run, after a warm-up round that is not counted. "+
		"Page faults are the same processes' minor and major faults (getrusage): followpub is a new process that touches its heap for the first time, the bare producer writes from the driver's heap, which earlier runs have grown.", d.opts.records)
	return t
}

// spend is what one side of goal 1 spent in a run: CPU seconds and page faults.
type spend struct{ cpu, faults float64 }
