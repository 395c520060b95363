package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/followpub/followpub/internal/modroot"
	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
)

// The peers measurement (issue 18, goal 2): followpub beside the benthos core of Redpanda Connect
// (bench/peers, a module of its own), same simulator, same broker, interleaved runs.
const (
	peerRecords    = 100_000
	peerDays       = 20
	peerStream     = 60 * time.Second
	peerStreamRate = 20.0
	peerPageSize   = 100
)

// peerConfig is the benthos pipeline: the days to read come from a generate input (once for a
// backfill; today's, every interval, for a stream); page 1 of each day gives data.total, from which
// the page requests are generated; each page's records are split, deduplicated by id against a file
// cache, and written to stdout as "id<TAB>record" lines for kcat to produce (-K '\t').
var peerConfig = template.Must(template.New("peer").Parse(`http:
  enabled: false
logger:
  level: WARN
  format: logfmt
input:
  generate:
{{- if .Stream}}
    interval: "{{.Interval}}"
    mapping: 'root = [now().ts_format("2006-01-02", "{{.Zone}}")]'
{{- else}}
    count: 1
    interval: ""
    mapping: 'root = [{{.Days}}]'
{{- end}}
cache_resources:
  - label: seen
    file:
      directory: '{{.Cache}}'
pipeline:
  threads: 1
  processors:
    - unarchive:
        format: json_array
    - mapping: 'root = {"current_index": 1, "page_size": {{.PageSize}}, "follow_time_start": this, "follow_time_end": this}'
    - branch:
        request_map: 'root = this'
        processors:
          - http:
              url: '{{.URL}}'
              verb: POST
              headers:
                Content-Type: application/json
        result_map: 'root.total = this.data.total'
    - mapping: |
        let day = this.follow_time_start
        let pages = (this.total / {{.PageSize}}).ceil()
        root = if $pages < 1 { deleted() } else { range(1, $pages + 1).map_each(p -> {"current_index": p, "page_size": {{.PageSize}}, "follow_time_start": $day, "follow_time_end": $day}) }
    - unarchive:
        format: json_array
    - http:
        url: '{{.URL}}'
        verb: POST
        headers:
          Content-Type: application/json
    - mapping: 'root = this.data.records'
    - unarchive:
        format: json_array
    - dedupe:
        cache: seen
        key: '${! json("id") }'
    - mapping: 'root = this.id.string() + "\t" + content().string()'
output:
  stdout:
    codec: lines
`))

// peerTool is one run of the peer: benthos piping into kcat.
type peerTool struct {
	benthos, kcat *proc
}

// run returns what the tool's processes used: CPU time and peak RSS, each the sum of benthos's
// and kcat's, and each part.
func (t peerTool) run() peerRun {
	b, k := t.benthos.usage(), t.kcat.usage()
	return peerRun{
		cpu: (b.cpu + k.cpu).Seconds(), rss: float64(b.maxRSS + k.maxRSS),
		benthosCPU: b.cpu.Seconds(), kcatCPU: k.cpu.Seconds(), benthosRSS: float64(b.maxRSS), kcatRSS: float64(k.maxRSS),
	}
}

// startPeer writes the pipeline's configuration into dir and starts benthos with its stdout piped
// into kcat, which produces to topic with the publisher's settings where kcat has them (acks=all,
// murmur2, lz4).
func (d *driver) startPeer(benthos, dir, topic string, a *api, stream bool) (peerTool, error) {
	var days []string
	if !stream {
		start := poller.StartOfDay(a.sim.Config().Start, d.loc)
		for day := start; !day.After(time.Now()); day = day.AddDate(0, 0, 1) {
			days = append(days, strconv.Quote(day.Format(poller.DateLayout)))
		}
	}
	var cfg strings.Builder
	if err := peerConfig.Execute(&cfg, map[string]any{
		"Stream": stream, "Interval": steadyInterval.String(), "Zone": d.loc.String(), "Days": strings.Join(days, ", "),
		"Cache": filepath.Join(dir, "cache"), "PageSize": peerPageSize,
		"URL": a.url + wshotosim.ListPath + "?access_token=" + staticToken,
	}); err != nil {
		return peerTool{}, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "cache"), 0o755); err != nil {
		return peerTool{}, err
	}
	conf := filepath.Join(dir, "benthos.yaml")
	if err := os.WriteFile(conf, []byte(cfg.String()), 0o644); err != nil {
		return peerTool{}, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return peerTool{}, err
	}
	// The children hold their own copies of the pipe's ends; these close once both started.
	defer func() { _, _ = r.Close(), w.Close() }()
	kc := exec.Command("kcat", "-P", "-b", d.kafka.addrs[0], "-t", topic, "-K", "\t",
		"-z", publisher.DefaultCompression, "-X", "acks=all", "-X", "partitioner=murmur2_random")
	kc.Stdin = r
	k, err := startCmd(kc)
	if err != nil {
		return peerTool{}, fmt.Errorf("%w (kcat: the Debian package kcat)", err)
	}
	bc := exec.Command(benthos, "-c", conf)
	bc.Stdout = w
	bc.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	b, err := startCmd(bc)
	if err != nil {
		_ = k.cmd.Process.Kill()
		return peerTool{}, err
	}
	return peerTool{benthos: b, kcat: k}, nil
}

// wait waits for benthos to end (a backfill ends when its one generated message is done), then
// for kcat to deliver what it was given and exit at the end of its input.
func (t peerTool) wait(timeout time.Duration) error {
	if err := t.benthos.wait(timeout); err != nil {
		_ = t.kcat.cmd.Process.Kill()
		<-t.kcat.done
		return fmt.Errorf("benthos: %w", err)
	}
	if err := t.kcat.wait(time.Minute); err != nil {
		return fmt.Errorf("kcat: %w", err)
	}
	return nil
}

// kill SIGKILLs both processes at once, as a lost container would lose them.
func (t peerTool) kill() {
	_ = t.benthos.cmd.Process.Signal(syscall.SIGKILL)
	_ = t.kcat.cmd.Process.Signal(syscall.SIGKILL)
	<-t.benthos.done
	<-t.kcat.done
}

// buildPeer builds bench/peers (benthos) into dir.
func buildPeer(ctx context.Context, dir string) (string, error) {
	root, err := modroot.Dir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "benthos")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(root, "bench", "peers")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building bench/peers (benthos): %v\n%s", err, out)
	}
	return bin, nil
}

// peerRun is one tool's figures in one run.
type peerRun struct {
	cpu, wall, rss float64 // CPU s, wall s, peak RSS bytes
	// the peer's parts: benthos's and kcat's CPU s and peak RSS bytes
	benthosCPU, kcatCPU, benthosRSS, kcatRSS float64
	records                                  int     // records in the topic
	p50, p99                                 float64 // stream: visible → appended (s)
	lost, dups                               int     // kill round
}

func (r peerRun) perCPU() float64 { return float64(r.records) / r.cpu }

// peers measures issue 18's goal 2: each run interleaves followpub and the peer on a backfill of
// 100,000 records over 20 days and a 60 s stream at 20 records/s; then one round kills each tool
// in the middle of its backfill and starts it again.
func (d *driver) peers(ctx context.Context) ([]*table, error) {
	if _, err := exec.LookPath("kcat"); err != nil {
		return nil, fmt.Errorf("the peer produces through kcat, which is not on PATH: apt-get install kcat")
	}
	progress("building bench/peers (benthos)")
	benthos, err := buildPeer(ctx, d.tmp)
	if err != nil {
		return nil, err
	}
	bd := *d
	bd.opts.records, bd.opts.days = peerRecords, peerDays
	a, err := startAPI(bd.backfillSim(0))
	if err != nil {
		return nil, err
	}
	defer a.close()
	want := map[string]bool{}
	for _, r := range a.sim.Visible() {
		want[strconv.FormatInt(r.ID, 10)] = true
	}
	const fp, peer = 0, 1
	names := []string{"followpub", "benthos + kcat"}
	var backfills, streams [2][]peerRun
	for run := 1; run <= d.opts.runs; run++ {
		for _, tool := range runOrder(2, run) {
			progress("peers run %d/%d: %s backfill of %d records over %d days", run, d.opts.runs, names[tool], peerRecords, peerDays)
			var r peerRun
			if tool == fp {
				r, err = bd.fpPeerBackfill(ctx, a)
			} else {
				r, err = bd.peerBackfill(ctx, a, benthos, want)
			}
			if err != nil {
				return nil, err
			}
			progress("  %d records, %.2f CPU s, %.0f records per CPU-second, peak RSS %.1f MiB", r.records, r.cpu, r.perCPU(), mib(r.rss))
			backfills[tool] = append(backfills[tool], r)
		}
		for _, tool := range runOrder(2, run) {
			progress("peers run %d/%d: %s stream, %g records/s for %s", run, d.opts.runs, names[tool], peerStreamRate, peerStream)
			var r peerRun
			if tool == fp {
				r, err = bd.fpPeerStream(ctx)
			} else {
				r, err = bd.peerStream(ctx, benthos)
			}
			if err != nil {
				return nil, err
			}
			progress("  %d records, %.2f CPU s, latency p50 %.2fs p99 %.2fs", r.records, r.cpu, r.p50, r.p99)
			streams[tool] = append(streams[tool], r)
		}
	}
	var kills [2]peerRun
	for tool := range 2 {
		progress("peers kill round: %s, SIGKILL at half its backfill, then started again", names[tool])
		r, err := bd.killRound(ctx, a, tool == peer, benthos, want)
		if err != nil {
			return nil, err
		}
		progress("  lost %d, duplicated %d", r.lost, r.dups)
		kills[tool] = r
	}
	d.peerFigures = &peerFigures{names: names, backfills: backfills, streams: streams}
	var rs []float64
	for i := range min(len(backfills[fp]), len(backfills[peer])) {
		rs = append(rs, backfills[fp][i].perCPU()/backfills[peer][i].perCPU())
	}
	d.goal("peers: followpub's records per CPU-second ÷ benthos + kcat's (backfill)", "≥ 10×",
		fmt.Sprintf("%.1f× (%.0f vs %.0f)", median(rs), median(mapSamples(backfills[fp], peerRun.perCPU)), median(mapSamples(backfills[peer], peerRun.perCPU))), median(rs) >= 10)
	d.goal("peers: SIGKILL in the middle of the backfill, then a restart", "followpub the only one with 0 lost and 0 duplicated",
		fmt.Sprintf("followpub %d lost, %d duplicated; benthos + kcat %d lost, %d duplicated", kills[fp].lost, kills[fp].dups, kills[peer].lost, kills[peer].dups),
		kills[fp].lost == 0 && kills[fp].dups == 0 && kills[peer].lost+kills[peer].dups > 0)
	return peerTables(d.opts.runs, names, backfills, streams, kills), nil
}

// peerFigures keeps the peers' runs for the pictures.
type peerFigures struct {
	names              []string
	backfills, streams [2][]peerRun
}

func peerTables(runs int, names []string, backfills, streams [2][]peerRun, kills [2]peerRun) []*table {
	t := &table{
		title: fmt.Sprintf("Goal 2 — the peers side by side: backfill of %d records over %d days, a %s stream at %g records/s, a SIGKILL in the middle of a backfill (medians of %d interleaved runs)",
			peerRecords, peerDays, peerStream, peerStreamRate, runs),
		head: []string{"figure", names[0], names[1], "followpub / peer", "goal"},
	}
	med := func(rs []peerRun, f func(peerRun) float64) float64 { return median(mapSamples(rs, f)) }
	ratio := func(f func(peerRun) float64) string {
		var xs []float64
		for i := range min(len(backfills[0]), len(backfills[1])) {
			xs = append(xs, f(backfills[0][i])/f(backfills[1][i]))
		}
		return fmt.Sprintf("%.3g×", median(xs))
	}
	sratio := func(f func(peerRun) float64) string {
		var xs []float64
		for i := range min(len(streams[0]), len(streams[1])) {
			xs = append(xs, f(streams[0][i])/f(streams[1][i]))
		}
		return fmt.Sprintf("%.3g×", median(xs))
	}
	row := func(name, goal string, rs [2][]peerRun, f func(peerRun) float64, r string) {
		t.add(name, med(rs[0], f), med(rs[1], f), r, goal)
	}
	cpu := func(r peerRun) float64 { return r.cpu }
	per := func(r peerRun) float64 { return r.perCPU() }
	rss := func(r peerRun) float64 { return mib(r.rss) }
	row("backfill: records in the topic", "", backfills, func(r peerRun) float64 { return float64(r.records) }, "")
	row("backfill: CPU s (user + system)", "", backfills, cpu, ratio(cpu))
	parts := func(rs []peerRun, b, k func(peerRun) float64) string {
		return fmt.Sprintf("%s + %s", cell(med(rs, b)), cell(med(rs, k)))
	}
	t.add("backfill: of which benthos + kcat", "", parts(backfills[1], func(r peerRun) float64 { return r.benthosCPU }, func(r peerRun) float64 { return r.kcatCPU }), "", "")
	row("backfill: records per CPU-second", "followpub ≥ 10 × peer", backfills, per, "**"+ratio(per)+"**")
	row("backfill: wall s", "", backfills, func(r peerRun) float64 { return r.wall }, ratio(func(r peerRun) float64 { return r.wall }))
	row("backfill: peak RSS MiB", "", backfills, rss, ratio(rss))
	t.add("backfill: of which benthos + kcat", "", parts(backfills[1], func(r peerRun) float64 { return mib(r.benthosRSS) }, func(r peerRun) float64 { return mib(r.kcatRSS) }), "", "")
	row("stream: records in the topic", "", streams, func(r peerRun) float64 { return float64(r.records) }, "")
	row("stream: CPU s", "", streams, cpu, sratio(cpu))
	t.add("stream: of which benthos + kcat", "", parts(streams[1], func(r peerRun) float64 { return r.benthosCPU }, func(r peerRun) float64 { return r.kcatCPU }), "", "")
	row("stream: records per CPU-second", "", streams, per, "**"+sratio(per)+"**")
	row("stream: latency p50, visible → appended (s)", "", streams, func(r peerRun) float64 { return r.p50 }, "")
	row("stream: latency p99 (s)", "", streams, func(r peerRun) float64 { return r.p99 }, "")
	row("stream: peak RSS MiB", "", streams, rss, sratio(rss))
	t.add("SIGKILL at half the backfill, then a restart: lost", kills[0].lost, kills[1].lost, "", "0, followpub only")
	t.add("SIGKILL at half the backfill, then a restart: duplicated", kills[0].dups, kills[1].dups, "", "0, followpub only")
	t.note("Same simulator (internal/wshotosim, the code of `followpub sim`, served by the driver on 127.0.0.1), same broker, fresh topics of %d partitions. "+
		"followpub: `run --once` from an empty state for the backfill (API_RATE_LIMIT high enough not to bind, KAFKA_COMPRESSION=%s); `run` with POLL_INTERVAL=%s for the stream, stopped by SIGTERM. "+
		"The peer: the benthos core of Redpanda Connect v4.60.0 (bench/peers, its own module: `generate` of the days, `http` page 1 of each day, page requests generated from data.total, `http` each page, `dedupe` on the id with a `file` cache) "+
		"writing `id<TAB>record` lines to kcat (`-P -K '\\t' -z %s -X acks=all -X partitioner=murmur2_random`), which produces to the topic: Redpanda Connect's Kafka outputs are in github.com/redpanda-data/connect/v4, whose licence keeps it out of this project. "+
		"The peer's CPU and peak RSS are benthos's plus kcat's (what it takes to get the records into Kafka; followpub's include its producer). "+
		"Stream latency: each record's follow_time (the moment the simulator made it visible) to the broker's LogAppendTime. "+
		"Kill round: each tool is SIGKILLed (benthos and kcat together, as a lost container) when the topic holds half the records, started again %s later with the same state (followpub's state file; the peer's cache directory), and run to its end; the topic is then read and counted by key.",
		publisher.DefaultPartitions, publisher.DefaultCompression, steadyInterval, publisher.DefaultCompression, recoveryRestartDelay)
	t.note("Kafka Connect is not run here. Issue 18 quotes an earlier measurement on this machine (not dated in the issue; quoted 2026-12-04): Kafka Connect 4.4 with castorm's HTTP source delivered 100 of the 100,000 records (it cannot page) with 1.1 GiB of RSS.")
	tr := &table{title: "Goal 2 — the peers, run by run", head: []string{"run", "tool", "backfill CPU s", "records per CPU-second", "peak RSS MiB", "stream CPU s", "stream records per CPU-second"}}
	for i := range runs {
		for tool := range 2 {
			if i < len(backfills[tool]) && i < len(streams[tool]) {
				b, s := backfills[tool][i], streams[tool][i]
				tr.add(i+1, names[tool], b.cpu, b.perCPU(), mib(b.rss), s.cpu, s.perCPU())
			}
		}
	}
	return []*table{t, tr}
}

// fpPeerBackfill is followpub's backfill of the peers measurement.
func (d *driver) fpPeerBackfill(ctx context.Context, a *api) (peerRun, error) {
	r, err := d.runBackfill(ctx, a, d.bins[0], map[string]string{"API_RATE_LIMIT": fmt.Sprint(d.opts.rateLimit), "KAFKA_COMPRESSION": publisher.DefaultCompression})
	if err != nil {
		return peerRun{}, err
	}
	return peerRun{cpu: r.usage.cpu.Seconds(), wall: r.wall.Seconds(), rss: float64(r.usage.maxRSS), records: d.opts.records}, nil
}

// peerBackfill is the peer's backfill: every record once in the topic, or an error saying what
// differs.
func (d *driver) peerBackfill(ctx context.Context, a *api, benthos string, want map[string]bool) (peerRun, error) {
	topic := topicName("peer")
	dir, err := os.MkdirTemp(d.tmp, "peer-")
	if err != nil {
		return peerRun{}, err
	}
	defer os.RemoveAll(dir)
	defer d.kafka.deleteTopic(ctx, topic)
	if err := d.kafka.createTopic(ctx, topic, publisher.DefaultPartitions, nil); err != nil {
		return peerRun{}, err
	}
	time.Sleep(settle)
	t, err := d.startPeer(benthos, dir, topic, a, false)
	if err != nil {
		return peerRun{}, err
	}
	if err := t.wait(20 * time.Minute); err != nil {
		return peerRun{}, err
	}
	r := t.run()
	r.wall = time.Since(t.benthos.start).Seconds()
	lost, dups, n, err := d.countKeys(ctx, topic, want)
	if err != nil {
		return r, err
	}
	if lost != 0 || dups != 0 {
		return r, fmt.Errorf("the peer's backfill left %d records in %s: %d lost, %d duplicated; benthos said:\n%s", n, topic, lost, dups, tail(t.benthos.out.String(), 20))
	}
	r.records = n
	return r, nil
}

// countKeys reads topic and counts its records against the ids the API showed.
func (d *driver) countKeys(ctx context.Context, topic string, want map[string]bool) (lost, dups, n int, err error) {
	recs, err := d.kafka.consume(ctx, topic)
	if err != nil {
		return 0, 0, 0, err
	}
	copies := map[string]int{}
	for _, r := range recs {
		copies[string(r.Key)]++
	}
	for id := range want {
		if copies[id] == 0 {
			lost++
		}
	}
	for id, c := range copies {
		if !want[id] {
			return 0, 0, 0, fmt.Errorf("topic %s holds key %q, which the API never showed", topic, id)
		}
		dups += c - 1
	}
	return lost, dups, len(recs), nil
}

// fpPeerStream is followpub's stream: the steady state at the peers' rate and length.
func (d *driver) fpPeerStream(ctx context.Context) (peerRun, error) {
	sd := *d
	sd.opts.steady, sd.opts.steadyRate = peerStream, peerStreamRate
	s, err := sd.steadyOnce(ctx, d.bins[0])
	if err != nil {
		return peerRun{}, err
	}
	return peerRun{cpu: s.cpuPer1000 * float64(s.published) / 1000, rss: s.rss, records: s.published, p50: s.p50, p99: s.p99}, nil
}

// peerStream is the peer's stream: today's day read every POLL_INTERVAL while records arrive,
// then SIGTERM to benthos (kcat then delivers what it holds and exits).
func (d *driver) peerStream(ctx context.Context, benthos string) (peerRun, error) {
	topic := topicName("peer-stream")
	if err := d.kafka.createTopic(ctx, topic, publisher.DefaultPartitions, map[string]string{"message.timestamp.type": "LogAppendTime"}); err != nil {
		return peerRun{}, err
	}
	defer d.kafka.deleteTopic(ctx, topic)
	dir, err := os.MkdirTemp(d.tmp, "peer-")
	if err != nil {
		return peerRun{}, err
	}
	defer os.RemoveAll(dir)
	a, err := startAPI(wshotosim.Config{Count: -1, Rate: peerStreamRate, Latency: d.opts.latency, Location: d.loc})
	if err != nil {
		return peerRun{}, err
	}
	defer a.close()
	t, err := d.startPeer(benthos, dir, topic, a, true)
	if err != nil {
		return peerRun{}, err
	}
	time.Sleep(peerStream)
	_ = t.benthos.cmd.Process.Signal(syscall.SIGTERM)
	if err := t.wait(time.Minute); err != nil {
		return peerRun{}, err
	}
	r := t.run()
	recs, err := d.kafka.consume(ctx, topic)
	if err != nil {
		return peerRun{}, err
	}
	var lat []float64
	for _, r := range recs {
		i := strings.Index(string(r.Value), `"follow_time":`)
		if i < 0 {
			continue
		}
		v := string(r.Value[i+len(`"follow_time":`):])
		j := strings.IndexAny(v, ",}")
		ft, err := strconv.ParseInt(strings.Trim(v[:j], `"`), 10, 64)
		if err != nil {
			continue
		}
		lat = append(lat, float64(r.Timestamp.UnixMilli()-ft)/1000)
	}
	r.records, r.p50, r.p99 = len(recs), percentile(lat, 50), percentile(lat, 99)
	return r, nil
}

// killRound runs one tool's backfill into a fresh topic, SIGKILLs it when the topic holds half the
// records, starts it again with the same state, and counts what the topic holds at the end.
func (d *driver) killRound(ctx context.Context, a *api, isPeer bool, benthos string, want map[string]bool) (peerRun, error) {
	topic := topicName("peer-kill")
	dir, err := os.MkdirTemp(d.tmp, "kill-")
	if err != nil {
		return peerRun{}, err
	}
	defer os.RemoveAll(dir)
	defer d.kafka.deleteTopic(ctx, topic)
	if err := d.kafka.createTopic(ctx, topic, publisher.DefaultPartitions, nil); err != nil {
		return peerRun{}, err
	}
	time.Sleep(settle)
	vars := d.backfillVars(a, topic, filepath.Join(dir, "state"))
	vars["API_RATE_LIMIT"] = fmt.Sprint(d.opts.rateLimit)
	start := func() (kill func(), wait func() error, done <-chan struct{}, err error) {
		if isPeer {
			t, err := d.startPeer(benthos, dir, topic, a, false)
			if err != nil {
				return nil, nil, nil, err
			}
			return t.kill, func() error { return t.wait(20 * time.Minute) }, t.benthos.done, nil
		}
		p, err := startProc(d.bins[0].path, vars, "run", "--once")
		if err != nil {
			return nil, nil, nil, err
		}
		return func() { _ = p.cmd.Process.Signal(syscall.SIGKILL); <-p.done }, func() error { return p.wait(20 * time.Minute) }, p.done, nil
	}
	kill, _, done, err := start()
	if err != nil {
		return peerRun{}, err
	}
	half := int64(len(want) / 2)
	for deadline := time.Now().Add(10 * time.Minute); ; {
		n, err := d.kafka.count(ctx, topic)
		if err != nil {
			kill()
			return peerRun{}, err
		}
		if n >= half {
			break
		}
		select {
		case <-done:
			return peerRun{}, fmt.Errorf("the backfill ended with %d of %d records in the topic, before the kill at half", n, len(want))
		default:
		}
		if time.Now().After(deadline) {
			kill()
			return peerRun{}, fmt.Errorf("the topic did not reach half the records (%d of %d) within 10 minutes", n, len(want))
		}
		time.Sleep(5 * time.Millisecond)
	}
	kill()
	time.Sleep(recoveryRestartDelay)
	_, wait, _, err := start()
	if err != nil {
		return peerRun{}, err
	}
	if err := wait(); err != nil {
		return peerRun{}, fmt.Errorf("after the restart: %w", err)
	}
	var r peerRun
	r.lost, r.dups, r.records, err = d.countKeys(ctx, topic, want)
	return r, err
}
