package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/followpub/followpub/internal/modroot"
	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/schema"
)

// tenantsRate is the new records per second of each tenant (issue 15's load).
const tenantsRate = 1.0

// tenants measures issue 15's performance: opts.tenants tenants in one instance (STATE_STORE=file)
// beside single-tenant processes in the same run, then opts.spreadTenants tenants over three
// instances (STATE_STORE=kafka) with one of them SIGKILLed.
func (d *driver) tenants(ctx context.Context) ([]*table, error) {
	var one []*table
	if d.opts.tenants > 0 {
		var err error
		if one, err = d.tenantsOne(ctx); err != nil {
			return nil, err
		}
	}
	if d.opts.spreadTenants == 0 {
		return one, nil
	}
	spread, err := d.tenantsSpread(ctx)
	if err != nil {
		return nil, err
	}
	return append(one, spread...), nil
}

// runInfo says what a tenants table was measured at: the commit of the repository (with
// "+changes" when the tree differs from it) and the machine's load average as the part began.
func runInfo() string {
	commit := "unknown"
	if root, err := modroot.Dir(); err == nil {
		if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
			commit = strings.TrimSpace(string(out))
		}
		if out, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(out) > 0 {
			commit += "+changes"
		}
	}
	load := "unknown"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("Measured at commit %s, %s UTC, load average %s as the part began (the machine is shared; see the CPUs-busy rows).", commit, time.Now().UTC().Format("2006-01-02 15:04"), load)
}

// fleet is the simulated tenants of one run, served on one address, with a topic each.
type fleet struct {
	multi  *wshotosim.Multi
	srv    *httptest.Server
	ids    []string
	prefix string // KAFKA_TOPIC: tenant id's topic is prefix.id, the tenants file's default
	file   string // the tenants file listing them
	rate   float64
	// ceTenant is the ce_tenant its records must carry: the tenant's id, or schema.DefaultTenant
	// when the one tenant runs without a tenants file.
	ceTenant func(id string) string
	stop     chan struct{}
	stopped  chan struct{}
}

func (f *fleet) topic(id string) string { return f.prefix + "." + id }

func (f *fleet) topics() []string {
	out := make([]string, len(f.ids))
	for i, id := range f.ids {
		out[i] = f.topic(id)
	}
	return out
}

// startFleet creates the topics of n tenants (one partition each, stamped with LogAppendTime),
// then serves the tenants and writes their tenants file into dir. Records arrive once arrive is
// called, rate a second per tenant.
func (d *driver) startFleet(ctx context.Context, n int, rate float64, dir string) (*fleet, error) {
	f := &fleet{ids: wshotosim.TenantIDs(n), prefix: topicName("tenants"), rate: rate,
		ceTenant: func(id string) string { return id }, stop: make(chan struct{}), stopped: make(chan struct{})}
	if err := d.kafka.createTopics(ctx, f.topics(), 1, map[string]string{"message.timestamp.type": "LogAppendTime"}); err != nil {
		return nil, err
	}
	var ts []wshotosim.Tenant
	for _, id := range f.ids {
		ts = append(ts, wshotosim.Tenant{ID: id, Config: wshotosim.TenantConfig(
			wshotosim.Config{Count: -1, Latency: d.opts.latency, Location: d.loc}, id)})
	}
	m, err := wshotosim.NewMulti(ts)
	if err != nil {
		d.kafka.deleteTopics(ctx, f.topics())
		return nil, err
	}
	f.multi, f.srv = m, httptest.NewServer(m) // 127.0.0.1
	f.file = filepath.Join(dir, "tenants.yaml")
	if err := m.WriteTenantsFile(f.file, f.srv.URL); err != nil {
		f.close(ctx, d)
		return nil, err
	}
	return f, nil
}

// arrive makes records arrive for every tenant until halt, each tenant's a Poisson process of
// f.rate a second: independent of POLL_INTERVAL, so that arrivals are not phase-locked to the
// cycles (a fixed 1 s spacing against a 1 s interval would give every record the same wait). A
// record's follow_time is the moment it is inserted, when it becomes visible.
func (f *fleet) arrive() {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 15))
	gap := func() time.Duration { return time.Duration(rng.ExpFloat64() / f.rate * float64(time.Second)) }
	next := make([]time.Time, len(f.ids))
	now := time.Now()
	for i := range next {
		next[i] = now.Add(gap())
	}
	go func() {
		defer close(f.stopped)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
			for i, id := range f.ids {
				for now := time.Now(); !next[i].After(now); next[i] = next[i].Add(gap()) {
					f.multi.Tenant(id).Insert(now)
				}
			}
		}
	}()
}

// halt stops the arrivals (once; arrive must have been called).
func (f *fleet) halt() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
		<-f.stopped
	}
}

func (f *fleet) close(ctx context.Context, d *driver) {
	select {
	case <-f.stop:
	default:
		close(f.stop) // arrive may not have been called: nothing to wait for then
	}
	f.srv.Close()
	d.kafka.deleteTopics(ctx, f.topics())
}

// listRequests returns the list requests every tenant of the fleet has served so far.
func (f *fleet) listRequests() int64 {
	var n int64
	for _, id := range f.ids {
		n += f.multi.Tenant(id).Stats().Requests["listForSystem"]
	}
	return n
}

// check reads every tenant's topic and counts, by key, what the fleet's simulator made visible
// before due against what was published: lost (due and absent), duplicated (copies beyond the
// first), foreign (a key not the tenant's, or a ce_tenant not its id). It returns the records too.
func (d *driver) check(ctx context.Context, f *fleet, due time.Time) (map[string][]*kgo.Record, onceCount, error) {
	recs, err := d.kafka.consumeTopics(ctx, f.topics())
	if err != nil {
		return nil, onceCount{}, err
	}
	var c onceCount
	byTenant := map[string][]*kgo.Record{}
	for _, id := range f.ids {
		own := map[string]schema.Record{}
		for _, r := range f.multi.Tenant(id).Visible() {
			own[string(r.Key())] = r
		}
		seen := map[string]int{}
		for _, r := range recs[f.topic(id)] {
			seen[string(r.Key)]++
			if _, ok := own[string(r.Key)]; !ok || header(r, schema.HeaderTenant) != f.ceTenant(id) {
				c.foreign++
			}
		}
		for k, r := range own {
			if r.Time().Before(due) {
				c.due++
				if seen[k] == 0 {
					c.lost++
				}
			}
		}
		for _, n := range seen {
			c.published += n
			c.duplicated += n - 1
		}
		byTenant[id] = recs[f.topic(id)]
	}
	return byTenant, c, nil
}

// onceCount is the exactly-once check of a run's topics.
type onceCount struct {
	published, due, lost, duplicated, foreign int
}

func (c onceCount) String() string {
	return fmt.Sprintf("%d lost of %d due, %d duplicated, %d foreign", c.lost, c.due, c.duplicated, c.foreign)
}

func (c onceCount) ok() bool { return c.lost == 0 && c.duplicated == 0 && c.foreign == 0 }

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// visibleToAck is the steady measurement's latency of r: from its follow_time (the simulator makes
// it visible then) to the broker's LogAppendTime, in seconds.
func visibleToAck(r *kgo.Record) (lat float64, visible time.Time) {
	ft, _ := schema.ParseCETime(header(r, schema.HeaderTime))
	return float64(r.Timestamp.UnixMilli()-ft) / 1000, time.UnixMilli(ft)
}

// labelValue returns the value of label name in a scraped series key (name{a="x",b="y"}).
func labelValue(key, name string) string {
	_, v, ok := strings.Cut(key, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, `"`)
	return v
}

// sumSeries sums the scraped series of metric name whose labels include every one of labels
// (each as written: result="ok").
func sumSeries(m map[string]float64, name string, labels ...string) float64 {
	var sum float64
	for k, v := range m {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		if !slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(k, l) }) {
			sum += v
		}
	}
	return sum
}

// tenantsWithCycle returns how many tenants have completed a cycle (result ok) in m.
func tenantsWithCycle(m map[string]float64) int {
	n := 0
	for k, v := range m {
		if strings.HasPrefix(k, "followpub_cycles_total{") && strings.Contains(k, `result="ok"`) && v > 0 {
			n++
		}
	}
	return n
}

// oneSample is one process of the one-instance measurement.
type oneSample struct {
	p50, p99, max, rss, cpuPer1000 float64
	perTenantCycle, cyclesPerSec   float64 // list requests per tenant per cycle; cycles per tenant per second
	warmup                         time.Duration
	records                        int // published within the measured window
	once                           onceCount
	// Where the time goes, in the window: CPUs busy (the machine, followpub, the broker), and the
	// mean of followpub's own histograms (cycle, API request, Kafka write, state commit) and the
	// p99 of its cycles (from the log), in seconds.
	machineCPUs, ownCPUs, brokerCPUs        float64
	cycleMean, cycleP99, apiMean, kafkaMean float64
	commitMean                              float64
	apiP99, kafkaP99, commitP99             float64 // bucket bounds of followpub's histograms
}

// histQuantile returns the q-quantile (0–1) of histogram name between two scrapes (every series
// summed by bucket): the upper bound of the first bucket that holds it, as Prometheus' buckets allow.
func histQuantile(m0, m1 map[string]float64, name string, q float64) float64 {
	counts := map[float64]float64{}
	for k, v := range m1 {
		if strings.HasPrefix(k, name+"_bucket{") {
			le, err := strconv.ParseFloat(labelValue(k, "le"), 64)
			if err == nil {
				counts[le] += v - m0[k]
			}
		}
	}
	les := slices.Sorted(maps.Keys(counts))
	if len(les) == 0 {
		return math.NaN()
	}
	total := counts[les[len(les)-1]] // the +Inf bucket holds every observation
	for _, le := range les {
		if counts[le] >= q*total {
			return le
		}
	}
	return math.Inf(1)
}

// histMean returns the mean of histogram name between two scrapes (every series summed).
func histMean(m0, m1 map[string]float64, name string) float64 {
	n := sumSeries(m1, name+"_count") - sumSeries(m0, name+"_count")
	return (sumSeries(m1, name+"_sum") - sumSeries(m0, name+"_sum")) / n
}

// oneKind is a process the one-instance measurement runs: n tenants at rate records/s each, from a
// tenants file or (single) as the ordinary single-tenant configuration.
type oneKind struct {
	name   string
	n      int
	rate   float64
	single bool
}

// tenantsOne measures opts.tenants tenants in one process against one tenant at the same load per
// tenant, in the same run. (One tenant at the same total load is no reference: with LOOKBACK=1h
// each of its cycles reads the last hour again, hundreds of pages at 500 records/s.)
func (d *driver) tenantsOne(ctx context.Context) ([]*table, error) {
	n := d.opts.tenants
	kinds := []oneKind{
		{name: fmt.Sprintf("%d tenants, one instance", n), n: n, rate: tenantsRate},
		{name: fmt.Sprintf("1 tenant at %g record/s", tenantsRate), n: 1, rate: tenantsRate, single: true},
	}
	info := runInfo()
	samples := make([][]oneSample, len(kinds))
	for run := 1; run <= d.opts.runs; run++ {
		for _, i := range runOrder(len(kinds), run) {
			k := kinds[i]
			progress("tenants run %d/%d: %s for %s", run, d.opts.runs, k.name, d.opts.tenantsFor)
			s, err := d.tenantsOnce(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k.name, err)
			}
			progress("  warm after %s; %d records; p99 %.3fs; %.2f requests per tenant per cycle; %.3f CPU s per 1,000; peak RSS %.0f MiB; %s",
				s.warmup.Round(100*time.Millisecond), s.records, s.p99, s.perTenantCycle, s.cpuPer1000, mib(s.rss), s.once)
			progress("  cycle mean %.3fs p99 %.3fs, API %.3fs (p99 ≤ %gs), Kafka write %.3fs (p99 ≤ %gs), commit %.4fs (p99 ≤ %gs); CPUs busy: machine %.2f, followpub %.2f, broker %.2f; %.2f cycles per tenant per second",
				s.cycleMean, s.cycleP99, s.apiMean, s.apiP99, s.kafkaMean, s.kafkaP99, s.commitMean, s.commitP99, s.machineCPUs, s.ownCPUs, s.brokerCPUs, s.cyclesPerSec)
			samples[i] = append(samples[i], s)
		}
	}
	med := func(i int, f func(oneSample) float64) float64 { return median(mapSamples(samples[i], f)) }
	runs := func(i int, f func(oneSample) float64) string {
		var cs []string
		for _, s := range samples[i] {
			cs = append(cs, cell(f(s)))
		}
		return fmt.Sprintf("%s (%s)", cell(med(i, f)), strings.Join(cs, ", "))
	}
	goal := func(ok bool) string {
		if ok {
			return "met"
		}
		return "missed"
	}
	t := &table{
		title: fmt.Sprintf("Tenants (issue 15) — %d tenants in one instance (STATE_STORE=file), %g new record/s each, POLL_INTERVAL=%s, API latency %s, measured for %s after every tenant's first cycle",
			n, tenantsRate, steadyInterval, d.opts.latency, d.opts.tenantsFor),
		head: []string{"figure", kinds[0].name, kinds[1].name + " (same load per tenant)", "goal", ""},
	}
	t.note("%s", info)
	p99 := med(0, func(s oneSample) float64 { return s.p99 })
	bound := (steadyInterval + time.Second).Seconds()
	rss := med(0, func(s oneSample) float64 { return mib(s.rss) })
	reqRatio := med(0, func(s oneSample) float64 { return s.perTenantCycle }) / med(1, func(s oneSample) float64 { return s.perTenantCycle })
	cpuRatio := med(0, func(s oneSample) float64 { return s.cpuPer1000 }) / med(1, func(s oneSample) float64 { return s.cpuPer1000 })
	row := func(name string, f func(oneSample) float64, goalText, met string) {
		t.add(name, runs(0, f), runs(1, f), goalText, met)
	}
	row("peak RSS (MiB)", func(s oneSample) float64 { return mib(s.rss) }, "≤ 256", goal(rss <= 256))
	row("latency p50: visible in the API → appended by Kafka (s)", func(s oneSample) float64 { return s.p50 }, "", "")
	row("latency p99 (s)", func(s oneSample) float64 { return s.p99 }, fmt.Sprintf("≤ POLL_INTERVAL + 1 s = %.2f", bound), goal(p99 <= bound))
	row("latency max (s)", func(s oneSample) float64 { return s.max }, "", "")
	row("API list requests per tenant per cycle", func(s oneSample) float64 { return s.perTenantCycle },
		"unchanged from 1 tenant (same load)", fmt.Sprintf("%s: %s", goal(reqRatio <= 1.05), pct(reqRatio)))
	row("cycles per tenant per second", func(s oneSample) float64 { return s.cyclesPerSec }, "", "")
	row("CPU seconds per 1,000 records (user + system)", func(s oneSample) float64 { return s.cpuPer1000 },
		"≤ 1.5 × 1 tenant (same load)", fmt.Sprintf("%s: %s", goal(cpuRatio <= 1.5), pct(cpuRatio)))
	row("cycle duration mean (s)", func(s oneSample) float64 { return s.cycleMean }, "", "")
	row("cycle duration p99 (s)", func(s oneSample) float64 { return s.cycleP99 }, "", "")
	row("API request mean (s)", func(s oneSample) float64 { return s.apiMean }, "", "")
	row("Kafka write mean: publish until acknowledged (s)", func(s oneSample) float64 { return s.kafkaMean }, "", "")
	row("state commit mean (s)", func(s oneSample) float64 { return s.commitMean }, "", "")
	row("p99 (bucket bound, s): API request", func(s oneSample) float64 { return s.apiP99 }, "", "")
	row("p99 (bucket bound, s): Kafka write", func(s oneSample) float64 { return s.kafkaP99 }, "", "")
	row("p99 (bucket bound, s): state commit", func(s oneSample) float64 { return s.commitP99 }, "", "")
	row("CPUs busy: the machine (of 2)", func(s oneSample) float64 { return s.machineCPUs }, "", "")
	row("CPUs busy: followpub", func(s oneSample) float64 { return s.ownCPUs }, "", "")
	row("CPUs busy: the broker", func(s oneSample) float64 { return s.brokerCPUs }, "", "")
	row("records published in the window", func(s oneSample) float64 { return float64(s.records) }, "", "")
	row("start until every tenant completed a cycle (s)", func(s oneSample) float64 { return s.warmup.Seconds() }, "", "")
	onceOK := true
	for i, k := range kinds {
		var cs []string
		for _, s := range samples[i] {
			cs = append(cs, s.once.String())
			onceOK = onceOK && s.once.ok()
		}
		t.note("Exactly once, %s, run by run (every tenant's topic counted by key): %s.", k.name, strings.Join(cs, "; "))
	}
	t.add("exactly once (every topic, by key)", "see below", "", "0 lost, 0 duplicated", goal(onceOK))
	t.note("Cells: the median of the runs, then each run. The ratios in the last column are of the medians, against the single tenant at the same load per tenant (%g record/s, the same POLL_INTERVAL), "+
		"run as an ordinary single-tenant deployment (no tenants file).", tenantsRate)
	t.note("The window: from the moment every tenant had completed a cycle to the SIGTERM. Latency is the steady measurement's (follow_time → the broker's LogAppendTime) over the records that became visible in it; " +
		"CPU is the process's user + system time in the window over the records Kafka appended in it; requests are those the simulator served in it over the cycles followpub counted in it (followpub_cycles_total). " +
		"Peak RSS is VmHWM over the whole life of the process, start included. Due: visible at least 2 × POLL_INTERVAL before the SIGTERM.")
	return []*table{t}, nil
}

// tenantsOnce runs one process of kind k for opts.tenantsFor after it is warm, then stops it
// (SIGTERM) and measures.
func (d *driver) tenantsOnce(ctx context.Context, k oneKind) (oneSample, error) {
	dir, err := os.MkdirTemp(d.tmp, "tenants-")
	if err != nil {
		return oneSample{}, err
	}
	defer os.RemoveAll(dir)
	f, err := d.startFleet(ctx, k.n, k.rate, dir)
	if err != nil {
		return oneSample{}, err
	}
	defer f.close(ctx, d)
	addr, err := freeAddr()
	if err != nil {
		return oneSample{}, err
	}
	vars := map[string]string{
		"START_FROM":    "today",
		"POLL_INTERVAL": steadyInterval.String(),
		"KAFKA_BROKERS": d.kafka.addrs[0],
		"KAFKA_TOPIC":   f.prefix,
		"STATE_PATH":    filepath.Join(dir, "followpub.state"),
		"HTTP_ADDR":     addr,
		"LOG_FORMAT":    "json",
	}
	if k.single {
		appID, secret, _ := wshotosim.TenantCredentials(f.ids[0])
		vars["API_BASE_URL"], vars["API_APP_ID"], vars["API_APP_SECRET"] = f.srv.URL, appID, secret
		vars["KAFKA_TOPIC"] = f.topic(f.ids[0])
		f.ceTenant = func(string) string { return schema.DefaultTenant }
	} else {
		vars["TENANTS_FILE"] = f.file
	}
	f.arrive()
	p, err := startProc(d.bins[0].path, vars, "run")
	if err != nil {
		return oneSample{}, err
	}
	defer func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}()
	var m0 map[string]float64
	deadline := time.Now().Add(2 * time.Minute)
	for {
		m0, err = scrape("http://" + addr + "/metrics")
		if err == nil && tenantsWithCycle(m0) == k.n {
			break
		}
		if time.Now().After(deadline) {
			return oneSample{}, fmt.Errorf("not every tenant completed a cycle within 2 minutes (%d of %d); output:\n%s", tenantsWithCycle(m0), k.n, tail(p.out.String(), 20))
		}
		select {
		case <-p.done:
			return oneSample{}, p.wait(0)
		case <-time.After(100 * time.Millisecond):
		}
	}
	warm := time.Now()
	cpu0, err := pidCPU(p.cmd.Process.Pid)
	if err != nil {
		return oneSample{}, err
	}
	req0 := f.listRequests()
	mark, err := markCPU(d.brokerPID)
	if err != nil {
		return oneSample{}, err
	}
	time.Sleep(d.opts.tenantsFor)
	spent, err := mark.since()
	if err != nil {
		return oneSample{}, err
	}
	m1, err := scrape("http://" + addr + "/metrics")
	if err != nil {
		return oneSample{}, fmt.Errorf("scraping /metrics: %w", err)
	}
	req1 := f.listRequests()
	cpu1, err := pidCPU(p.cmd.Process.Pid)
	if err != nil {
		return oneSample{}, err
	}
	f.halt()
	stop := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(60 * time.Second); err != nil {
		return oneSample{}, err
	}
	recs, once, err := d.check(ctx, f, stop.Add(-2*steadyInterval))
	if err != nil {
		return oneSample{}, err
	}
	var lat []float64
	inWindow := 0
	for _, rs := range recs {
		for _, r := range rs {
			l, vis := visibleToAck(r)
			if !vis.Before(warm) {
				lat = append(lat, l)
			}
			if !r.Timestamp.Before(warm) && !r.Timestamp.After(stop) {
				inWindow++
			}
		}
	}
	cycles := sumSeries(m1, "followpub_cycles_total") - sumSeries(m0, "followpub_cycles_total")
	s := oneSample{
		p50: percentile(lat, 50), p99: percentile(lat, 99), max: percentile(lat, 100),
		rss: float64(p.usage().maxRSS), warmup: warm.Sub(p.start), records: inWindow, once: once,
		perTenantCycle: float64(req1-req0) / cycles, cyclesPerSec: cycles / float64(k.n) / stop.Sub(warm).Seconds(),
	}
	if inWindow > 0 {
		s.cpuPer1000 = (cpu1 - cpu0).Seconds() / float64(inWindow) * 1000
	}
	w := spent.wall.Seconds()
	s.machineCPUs, s.ownCPUs, s.brokerCPUs = spent.machine.Seconds()/w, (cpu1-cpu0).Seconds()/w, spent.broker.Seconds()/w
	s.cycleMean = histMean(m0, m1, "followpub_cycle_duration_seconds")
	s.apiMean = histMean(m0, m1, "followpub_api_request_duration_seconds")
	s.kafkaMean = histMean(m0, m1, "followpub_kafka_write_duration_seconds")
	s.commitMean = histMean(m0, m1, "followpub_state_commit_duration_seconds")
	s.apiP99 = histQuantile(m0, m1, "followpub_api_request_duration_seconds", 0.99)
	s.kafkaP99 = histQuantile(m0, m1, "followpub_kafka_write_duration_seconds", 0.99)
	s.commitP99 = histQuantile(m0, m1, "followpub_state_commit_duration_seconds", 0.99)
	var durs []float64
	for _, l := range p.logs("cycle done") {
		if at := l.time(); !at.Before(warm) && !at.After(stop) {
			durs = append(durs, parseLogDuration(l["duration"]).Seconds())
		}
	}
	s.cycleP99 = percentile(durs, 99)
	return s, nil
}

// pidCPU returns the user + system time process pid has spent so far.
func pidCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading followpub's CPU time: %w", err)
	}
	return procTime(string(b))
}

// Spread measurement's timing: the broker's minimum session timeout, as the ha measurement.
const (
	spreadInstances = 3
	spreadSettle    = 5 * time.Second // ownership unchanged this long counts as settled
)

// spreadSample is one run of the spread measurement.
type spreadSample struct {
	before, after           []int         // tenants per instance before the kill and after it
	settle                  time.Duration // from the start until the three instances owned every tenant, settled
	killedTenants           int
	recoverMax, recoverMed  time.Duration // SIGKILL → each of the killed instance's tenants' first record appended after it
	stateWritesPerTenantSec float64       // records written to STATE_TOPIC per tenant per second, steady
	stateBytesPerWrite      float64       // bytes on the broker's disk per state record
	outBytesPerRecord       float64       // bytes on the broker's disk per output record
	once                    onceCount
	// Where the recovery goes, from the survivors' logs: SIGKILL → the last survivor's "group
	// generation joined"; each of the killed instance's tenants' load of its state (median, max);
	// SIGKILL → the last of those loads done.
	rejoined, loadMed, loadMax, lastLoaded time.Duration
}

// recoveryFromLogs reads, from the survivors' logs, when the group re-formed after killed and how
// long the loads of the tenants in moved took.
func (s *spreadSample) recoveryFromLogs(live []*haInstance, moved []string, killed time.Time) {
	var loads []float64
	for _, in := range live {
		for _, l := range in.p.logs("group generation joined") {
			if at := l.time(); at.After(killed) {
				s.rejoined = max(s.rejoined, at.Sub(killed))
				break
			}
		}
		for _, l := range in.p.logs("tenant owned: state loaded") {
			if at := l.time(); at.After(killed) && slices.Contains(moved, l.str("tenant")) {
				loads = append(loads, parseLogDuration(l["load_duration"]).Seconds())
				s.lastLoaded = max(s.lastLoaded, at.Sub(killed))
			}
		}
	}
	s.loadMed = time.Duration(median(loads) * float64(time.Second))
	s.loadMax = time.Duration(percentile(loads, 100) * float64(time.Second))
}

// tenantsSpread runs opts.spreadTenants tenants over three instances (STATE_STORE=kafka) per run,
// SIGKILLs one once they are settled, and measures the spread and the recovery.
func (d *driver) tenantsSpread(ctx context.Context) ([]*table, error) {
	info := runInfo()
	var ss []spreadSample
	for run := 1; run <= d.opts.runs; run++ {
		progress("tenants spread run %d/%d: %d tenants over %d instances, STATE_STORE=kafka", run, d.opts.runs, d.opts.spreadTenants, spreadInstances)
		s, err := d.spreadOnce(ctx, run)
		if err != nil {
			return nil, err
		}
		progress("  %v before the kill, %v after; the killed instance's %d tenants all published again %s after the SIGKILL (median %s); %s",
			s.before, s.after, s.killedTenants, s.recoverMax.Round(time.Millisecond), s.recoverMed.Round(time.Millisecond), s.once)
		progress("  group re-formed %s after the SIGKILL; their state loads took %s (median) to %s, the last done %s after the SIGKILL",
			s.rejoined.Round(time.Millisecond), s.loadMed.Round(time.Millisecond), s.loadMax.Round(time.Millisecond), s.lastLoaded.Round(time.Millisecond))
		ss = append(ss, s)
	}
	t := &table{
		title: fmt.Sprintf("Tenants (issue 15) — %d tenants over %d instances (STATE_STORE=kafka, a new STATE_TOPIC of the default 12 partitions), %g new record/s each, POLL_INTERVAL=%s, GROUP_SESSION_TIMEOUT=%s; one instance SIGKILLed per run",
			d.opts.spreadTenants, spreadInstances, tenantsRate, haInterval, haSession),
		head: []string{"run", "tenants per instance (max/min)", "after the kill (max/min)", "the killed instance's tenants", "SIGKILL → all of them published again", "median tenant",
			"SIGKILL → group re-formed", "their state loads: median / max", "SIGKILL → last load done", "exactly once", "state writes per tenant per second", "bytes per state record", "bytes per output record"},
	}
	t.note("%s", info)
	var maxes, meds []float64
	for i, s := range ss {
		ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
		t.add(i+1, spreadCell(s.before), spreadCell(s.after), s.killedTenants, ms(s.recoverMax), ms(s.recoverMed),
			ms(s.rejoined), ms(s.loadMed)+" / "+ms(s.loadMax), ms(s.lastLoaded), s.once.String(), fmt.Sprintf("%.3f", s.stateWritesPerTenantSec), fmt.Sprintf("%.0f", s.stateBytesPerWrite), fmt.Sprintf("%.0f", s.outBytesPerRecord))
		maxes = append(maxes, s.recoverMax.Seconds())
		meds = append(meds, s.recoverMed.Seconds())
	}
	t.note("Over the runs: SIGKILL → all of the killed instance's tenants published again, median %.2f s, max %.2f s (the median tenant: median %.2f s).",
		median(maxes), percentile(maxes, 100), median(meds))
	t.note("Tenants per instance from each instance's followpub_tenants_owned once the three owned every tenant and nothing had moved for %s. "+
		"Published again: the first record of each of the killed instance's tenants that the broker appended (LogAppendTime) after the SIGKILL; records arrive every second for every tenant, so each tenant has one waiting. "+
		"State writes and bytes: records and log bytes STATE_TOPIC gained between the settled moment and the kill, over the tenants and the seconds; output bytes: the output topics' log bytes over their records (on disk, after compression). "+
		"Exactly once: every record visible 2 × POLL_INTERVAL before the survivors' SIGTERM is in its tenant's topic, once, with its ce_tenant.", spreadSettle)
	return []*table{t}, nil
}

func spreadCell(per []int) string {
	if len(per) == 0 {
		return "–"
	}
	return fmt.Sprintf("%v (%d/%d)", per, slices.Max(per), slices.Min(per))
}

// spreadOnce is one run of the spread measurement.
func (d *driver) spreadOnce(ctx context.Context, run int) (spreadSample, error) {
	dir, err := os.MkdirTemp(d.tmp, "spread-")
	if err != nil {
		return spreadSample{}, err
	}
	defer os.RemoveAll(dir)
	n := d.opts.spreadTenants
	f, err := d.startFleet(ctx, n, tenantsRate, dir)
	if err != nil {
		return spreadSample{}, err
	}
	defer f.close(ctx, d)
	stateTopic, group := topicName("tenantstate"), topicName("tenantgroup")
	defer d.kafka.deleteTopic(ctx, stateTopic)
	f.arrive()
	began := time.Now()
	var all []*haInstance
	defer func() {
		for _, i := range all {
			if i.p.cmd.ProcessState == nil {
				_ = i.p.cmd.Process.Kill()
				<-i.p.done
			}
		}
	}()
	for range spreadInstances {
		addr, err := freeAddr()
		if err != nil {
			return spreadSample{}, err
		}
		p, err := startProc(d.bins[0].path, map[string]string{
			"TENANTS_FILE":          f.file,
			"START_FROM":            "today",
			"POLL_INTERVAL":         haInterval.String(),
			"KAFKA_BROKERS":         d.kafka.addrs[0],
			"KAFKA_TOPIC":           f.prefix,
			"STATE_STORE":           "kafka",
			"STATE_TOPIC":           stateTopic,
			"GROUP_ID":              group,
			"GROUP_SESSION_TIMEOUT": haSession.String(),
			"STATE_PATH":            filepath.Join(dir, "unused.state"), // STATE_STORE=kafka never opens it
			"HTTP_ADDR":             addr,
			"LOG_FORMAT":            "json",
		}, "run")
		if err != nil {
			return spreadSample{}, err
		}
		all = append(all, &haInstance{p: p, addr: addr})
	}
	var s spreadSample
	if s.before, err = settled(all, n, 3*time.Minute); err != nil {
		return s, err
	}
	s.settle = time.Since(began)
	mark, err := d.kafka.topicSize(ctx, stateTopic)
	if err != nil {
		return s, err
	}
	markAt := time.Now()
	time.Sleep(10 * time.Second)
	at, err := d.kafka.topicSize(ctx, stateTopic)
	if err != nil {
		return s, err
	}
	s.stateWritesPerTenantSec = float64(at.records-mark.records) / float64(n) / time.Since(markAt).Seconds()
	if at.records > mark.records {
		s.stateBytesPerWrite = float64(at.bytes-mark.bytes) / float64(at.records-mark.records)
	}

	victim := all[(run-1)%spreadInstances]
	m, err := scrape("http://" + victim.addr + "/metrics")
	if err != nil {
		return s, fmt.Errorf("scraping the instance to kill: %w", err)
	}
	var owned []string
	for k, v := range m {
		if strings.HasPrefix(k, "followpub_tenant_owned{") && v == 1 {
			owned = append(owned, labelValue(k, "tenant"))
		}
	}
	s.killedTenants = len(owned)
	killed := time.Now()
	_ = victim.p.cmd.Process.Signal(syscall.SIGKILL)
	<-victim.p.done
	var live []*haInstance
	for _, i := range all {
		if i != victim {
			live = append(live, i)
		}
	}
	if s.after, err = settled(live, n, 2*time.Minute); err != nil {
		return s, err
	}
	// Wait until every tenant of the killed instance has a record appended after the kill.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		waiting := 0
		for _, id := range owned {
			if last, err := d.kafka.lastAppend(ctx, f.topic(id)); err != nil || !last.After(killed) {
				waiting++
			}
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("%d of the killed instance's %d tenants published nothing within 2 minutes of the kill", waiting, len(owned))
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(3 * haInterval)
	f.halt()
	stop := time.Now()
	for _, i := range live {
		_ = i.p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, i := range live {
		if err := i.p.wait(60 * time.Second); err != nil {
			return s, err
		}
	}
	s.recoveryFromLogs(live, owned, killed)
	recs, once, err := d.check(ctx, f, stop.Add(-2*haInterval))
	if err != nil {
		return s, err
	}
	s.once = once
	var firsts []float64
	for _, id := range owned {
		first := time.Time{}
		for _, r := range recs[id] {
			if r.Timestamp.After(killed) && (first.IsZero() || r.Timestamp.Before(first)) {
				first = r.Timestamp
			}
		}
		if first.IsZero() {
			return s, fmt.Errorf("tenant %s: no record appended after the kill", id)
		}
		firsts = append(firsts, first.Sub(killed).Seconds())
	}
	s.recoverMax = time.Duration(percentile(firsts, 100) * float64(time.Second))
	s.recoverMed = time.Duration(median(firsts) * float64(time.Second))
	var outBytes int64
	for _, t := range f.topics() {
		b, err := d.kafka.logBytes(ctx, t)
		if err != nil {
			return s, err
		}
		outBytes += b
	}
	if once.published > 0 {
		s.outBytesPerRecord = float64(outBytes) / float64(once.published)
	}
	return s, nil
}

// settled waits until the instances own n tenants between them (followpub_tenants_owned), each at
// least one, and no instance's count has changed for spreadSettle, and returns each one's count.
func settled(live []*haInstance, n int, within time.Duration) ([]int, error) {
	deadline := time.Now().Add(within)
	var last []int
	var since time.Time
	for {
		per := make([]int, len(live))
		sum := 0
		for i, in := range live {
			if m, err := scrape("http://" + in.addr + "/metrics"); err == nil {
				per[i] = int(m["followpub_tenants_owned"])
			}
			sum += per[i]
		}
		switch {
		case sum != n || !slices.Equal(per, last) || slices.Min(per) == 0: // an instance owning none has not joined yet
			last, since = per, time.Now()
		case time.Since(since) >= spreadSettle:
			return per, nil
		}
		if time.Now().After(deadline) {
			var out strings.Builder
			for _, in := range live {
				fmt.Fprintf(&out, "%s\n", tail(in.p.out.String(), 10))
			}
			return nil, fmt.Errorf("the instances did not settle on owning the %d tenants between them within %s (last %v); output:\n%s", n, within, per, out.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// deleteTopics deletes topics in one request (best effort, as deleteTopic).
func (b *broker) deleteTopics(ctx context.Context, topics []string) {
	req := kmsg.NewPtrDeleteTopicsRequest()
	for _, name := range topics {
		dt := kmsg.NewDeleteTopicsRequestTopic()
		dt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, dt)
	}
	req.TopicNames = topics
	req.TimeoutMillis = 60_000
	_, _ = req.RequestWith(ctx, b.admin)
}

// size is a topic's record count and bytes on the broker's disk.
type size struct{ records, bytes int64 }

func (b *broker) topicSize(ctx context.Context, topic string) (size, error) {
	n, err := b.count(ctx, topic)
	if err != nil {
		return size{}, err
	}
	by, err := b.logBytes(ctx, topic)
	return size{records: n, bytes: by}, err
}

// lastAppend returns the LogAppendTime of the last record of a one-partition topic (zero when
// empty): the broker's max timestamp of partition 0 (ListOffsets with timestamp -3).
func (b *broker) lastAppend(ctx context.Context, topic string) (time.Time, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Partition, lp.Timestamp = 0, -3 // the record with the largest timestamp (KIP-734)
	lt.Partitions = append(lt.Partitions, lp)
	req.Topics = append(req.Topics, lt)
	resp, err := req.RequestWith(ctx, b.admin)
	if err != nil {
		return time.Time{}, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return time.Time{}, fmt.Errorf("last record of %s: the broker answered for %d topics", topic, len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return time.Time{}, fmt.Errorf("last record of %s: %w", topic, err)
	}
	if p.Offset < 0 || p.Timestamp < 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(p.Timestamp), nil
}

// consumeTopics reads every record of topics with one client, up to the end offsets of the
// moment of the call, and returns them by topic.
func (b *broker) consumeTopics(ctx context.Context, topics []string) (map[string][]*kgo.Record, error) {
	want := map[string]int64{}
	var total int64
	for _, t := range topics {
		n, err := b.count(ctx, t)
		if err != nil {
			return nil, err
		}
		want[t] = n
		total += n
	}
	out := make(map[string][]*kgo.Record, len(topics))
	if total == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var got int64
	for got < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, fmt.Errorf("consumed %d of %d records of %d topics: %w", got, total, len(topics), ctx.Err())
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = errors.Join(ferr, fmt.Errorf("%s/%d: %w", t, p, err)) })
		if ferr != nil {
			return out, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if int64(len(out[r.Topic])) < want[r.Topic] {
				out[r.Topic] = append(out[r.Topic], r)
				got++
			}
		})
	}
	return out, nil
}
