package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
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

// backfillRun is one followpub backfill.
type backfillRun struct {
	wall, cycle time.Duration
	usage       usage
	bytes       int64
	requests    []request
}

// runBackfill runs `followpub run --once` from an empty state into a fresh topic with the extra
// variables, checks that every record arrived once, and measures it.
func (d *driver) runBackfill(ctx context.Context, a *api, bin binary, extra map[string]string) (backfillRun, error) {
	topic := topicName("followpub")
	state := filepath.Join(d.tmp, topic+".state")
	defer os.Remove(state)
	defer d.kafka.deleteTopic(ctx, topic)
	vars := d.backfillVars(a, topic, state)
	for k, v := range extra {
		vars[k] = v
	}
	a.takeRequests()
	p, err := startProc(bin.path, vars, "run", "--once")
	if err != nil {
		return backfillRun{}, err
	}
	if err := p.wait(20 * time.Minute); err != nil {
		return backfillRun{}, err
	}
	r := backfillRun{wall: p.wall, cycle: p.cycleDuration(), usage: p.usage(), requests: a.takeRequests()}
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
// default) and measures it.
func (d *driver) limitRun(ctx context.Context, codec string, msgs []kafka.Message) (time.Duration, int64, error) {
	topic := topicName("limit")
	if err := d.kafka.createTopic(ctx, topic, publisher.DefaultPartitions, nil); err != nil {
		return 0, 0, err
	}
	defer d.kafka.deleteTopic(ctx, topic)
	took, err := producerLimit(ctx, d.kafka.addrs, topic, codec, msgs)
	if err != nil {
		return 0, 0, err
	}
	n, err := d.kafka.count(ctx, topic)
	if err != nil {
		return 0, 0, err
	}
	if n != int64(len(msgs)) {
		return 0, 0, fmt.Errorf("limit topic holds %d records, want %d", n, len(msgs))
	}
	size, err := d.kafka.logBytes(ctx, topic)
	return took, size, err
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
		rss, cpu                            float64
		requests, busiest                   int // list requests in all, and in the busiest second
	}
	type key struct{ codec, bin string }
	samples := map[key][]sample{}
	for run := 1; run <= d.opts.runs; run++ {
		for _, codec := range d.opts.codecs {
			progress("backfill run %d/%d, %s: producer limit", run, d.opts.runs, codec)
			took, lbytes, err := d.limitRun(ctx, codec, msgs)
			if err != nil {
				return nil, err
			}
			for _, bin := range d.bins {
				progress("backfill run %d/%d, %s: %s", run, d.opts.runs, codec, bin.name)
				r, err := d.runBackfill(ctx, a, bin, map[string]string{"API_RATE_LIMIT": fmt.Sprint(d.opts.rateLimit), "KAFKA_COMPRESSION": codec})
				if err != nil {
					return nil, err
				}
				n := float64(d.opts.records)
				s := sample{
					limitRate: n / took.Seconds(), fpRate: n / r.wall.Seconds(), cycleRate: n / r.cycle.Seconds(),
					limitBytes: float64(lbytes), fpBytes: float64(r.bytes),
					rss: float64(r.usage.maxRSS), cpu: r.usage.cpu.Seconds(), requests: len(r.requests),
					busiest: maxInWindow(r.requests, time.Second),
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
		tp.note("API_RATE_LIMIT=%g, so that it does not bind: %d list requests, at most %d in any one second. API_CONCURRENCY=4 (default), 3 partitions, acks=all, fresh topic and empty state each run. "+
			"The producer limit writes the same %d pre-built messages (publisher.Messages) in one WriteMessages call with the publisher's producer settings (murmur2, RequireAll, BatchSize %d, BatchBytes %d, BatchTimeout %s, codec, transport).",
			d.opts.rateLimit, first[0].requests, busiest, d.opts.records, publisher.DefaultBatchSize, publisher.DefaultBatchBytes, publisher.DefaultBatchTimeout)
	}

	tm := &table{title: "Goal 5 — peak RSS of the backfill (VmHWM of the followpub process)", head: []string{"KAFKA_COMPRESSION", "peak RSS MiB (median)", "max of runs", "CPU s per 1,000 records", "goal"}}
	for _, c := range d.opts.codecs {
		for _, bin := range d.bins {
			var mx float64
			for _, s := range samples[key{c, bin.name}] {
				mx = math.Max(mx, s.rss)
			}
			tm.add(c+label(bin.name), mib(med(c, bin.name, func(s sample) float64 { return s.rss })), mib(mx),
				1000*med(c, bin.name, func(s sample) float64 { return s.cpu })/float64(d.opts.records), "≤ 64 MiB")
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
	return []*table{tp, tc, tm}, nil
}
