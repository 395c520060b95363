package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/followpub/followpub/internal/kafkastate"
	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
)

// The failover measurement's timing (docs/DESIGN.md §7): the broker's minimum session timeout and
// a short poll interval, under a live stream.
const (
	haSession  = 6 * time.Second
	haInterval = time.Second
	haRate     = 20 // records per second arriving
)

// ha measures high availability (STATE_STORE=kafka): failover after SIGKILL and SIGTERM, a
// takeover of a state with opts.ids remembered ids, and the kafka store's backfill and steady
// state beside the file store's.
func (d *driver) ha(ctx context.Context) ([]*table, error) {
	var out []*table
	if d.opts.haParts["failover"] {
		failover, err := d.haFailover(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, failover)
	}
	if d.opts.haParts["takeover"] {
		takeover, err := d.haTakeover(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, takeover)
	}
	if d.opts.haParts["stores"] {
		stores, err := d.haStores(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, stores...)
	}
	return out, nil
}

// haInstance is one `followpub run` of a failover run.
type haInstance struct {
	p    *proc
	addr string // its HTTP_ADDR
}

// owns reports whether the instance says (on /metrics) that it polls the tenant now.
func (i *haInstance) owns() bool {
	m, err := scrape("http://" + i.addr + "/metrics")
	return err == nil && m["followpub_tenants_owned"] == 1
}

// assigned returns the time of the instance's first "group generation joined" line after t that
// gave it the tenant, and whether there is one.
func (i *haInstance) assigned(after time.Time) (time.Time, bool) {
	for _, l := range i.p.logs("group generation joined") {
		if owned, _ := l["owned"].([]any); len(owned) > 0 && l.time().After(after) {
			return l.time(), true
		}
	}
	return time.Time{}, false
}

// publishedSince reports whether the instance logged a cycle that published something after t.
func (i *haInstance) publishedSince(t time.Time) bool {
	for _, l := range i.p.logs("cycle done") {
		if n, _ := l["published"].(float64); n > 0 && l.time().After(t) {
			return true
		}
	}
	return false
}

// joined reports whether the instance has joined a generation of the group.
func (i *haInstance) joined() bool { return len(i.p.logs("group generation joined")) > 0 }

// takeover is one move of the tenant: the signal to the owner, the standby's assignment, and the
// first record Kafka appended after it.
type takeover struct {
	kind                     string // SIGKILL or SIGTERM
	signal, assigned, loaded time.Time
	firstAppend              time.Time // zero until the topic is read back
	owner, old               *haInstance
}

// timeline prints the old and the new owner's log lines from the signal to the first record,
// each at its offset from the signal (-ha-timeline).
func (m takeover) timeline() {
	progress("  timeline of a %s takeover (offsets from the signal; first record at +%.3fs):", m.kind, m.firstAppend.Sub(m.signal).Seconds())
	var lines []string
	for _, who := range []struct {
		name string
		i    *haInstance
	}{{"old", m.old}, {"new", m.owner}} {
		for _, l := range who.i.p.logs() {
			at := l.time()
			if at.Before(m.signal.Add(-100*time.Millisecond)) || at.After(m.firstAppend.Add(100*time.Millisecond)) {
				continue
			}
			var extra []string
			for _, k := range []string{"owned", "load_duration", "records", "reads", "read", "reason", "published", "fetched", "duration", "days"} {
				if v, ok := l[k]; ok {
					extra = append(extra, fmt.Sprintf("%s=%v", k, v))
				}
			}
			lines = append(lines, fmt.Sprintf("%+8.3fs %s %s %s", at.Sub(m.signal).Seconds(), who.name, l.str("msg"), strings.Join(extra, " ")))
		}
	}
	slices.Sort(lines) // offsets are fixed-width only while positive: good enough to read
	for _, l := range lines {
		progress("    %s", l)
	}
}

// haTopics creates an output topic stamped with LogAppendTime (the time Kafka appended each
// record, on this machine's clock) and names a state topic for followpub to create; cleanup
// deletes both.
func (d *driver) haTopics(ctx context.Context, what string) (topic, stateTopic string, cleanup func(), err error) {
	topic, stateTopic = topicName(what), topicName("hastate")
	if err := d.kafka.createTopic(ctx, topic, publisher.DefaultPartitions, map[string]string{"message.timestamp.type": "LogAppendTime"}); err != nil {
		return "", "", nil, err
	}
	return topic, stateTopic, func() {
		d.kafka.deleteTopic(ctx, topic)
		d.kafka.deleteTopic(ctx, stateTopic)
	}, nil
}

// haGroup is the environment of an instance of one failover run's deployment.
func (d *driver) haGroup(a *api, topic, stateTopic, group, addr string) map[string]string {
	return map[string]string{
		"API_BASE_URL":          a.url,
		"API_ACCESS_TOKEN":      staticToken,
		"START_FROM":            "today",
		"POLL_INTERVAL":         haInterval.String(),
		"KAFKA_BROKERS":         d.kafka.addrs[0],
		"KAFKA_TOPIC":           topic,
		"STATE_STORE":           "kafka",
		"STATE_TOPIC":           stateTopic,
		"GROUP_ID":              group,
		"GROUP_SESSION_TIMEOUT": haSession.String(),
		"STATE_PATH":            filepath.Join(d.tmp, "unused.state"), // STATE_STORE=kafka never opens it
		"HTTP_ADDR":             addr,
		"LOG_FORMAT":            "json",
		"LOG_LEVEL":             map[bool]string{false: "info", true: "debug"}[d.opts.haTimeline],
	}
}

// haFailover runs two instances per run under a live stream and moves the tenant opts.haMoves
// times per kind in all (SIGKILL, SIGTERM, alternating), restarting the signalled one each time
// as the new standby; then it reads the topic back for lost and duplicated records.
func (d *driver) haFailover(ctx context.Context) (*table, error) {
	perRun := (d.opts.haMoves + d.opts.runs - 1) / d.opts.runs
	var moves []takeover
	var visible, lost, dups, published, started int
	for run := 1; run <= d.opts.runs; run++ {
		progress("ha failover run %d/%d: 2 instances, %d records/s, %d SIGKILL and %d SIGTERM", run, d.opts.runs, haRate, perRun, perRun)
		r, err := d.failoverOnce(ctx, perRun)
		if err != nil {
			return nil, err
		}
		moves = append(moves, r.moves...)
		visible, lost, dups, published, started = visible+r.due, lost+r.lost, dups+r.dups, published+r.published, started+r.started
		progress("  %d records due, %d lost, %d duplicate copies", r.due, r.lost, r.dups)
	}
	t := &table{
		title: fmt.Sprintf("High availability — failover: 2 × `followpub run`, STATE_STORE=kafka, GROUP_SESSION_TIMEOUT=%s, POLL_INTERVAL=%s, %d records/s arriving", haSession, haInterval, haRate),
		head:  []string{"signal to the owner", "takeovers", "signal → standby assigned (median / max)", "signal → state loaded (median / max)", "signal → its first record appended by Kafka (median / max)", "goal (first record)"},
	}
	for _, kind := range []string{"SIGKILL", "SIGTERM"} {
		var as, ls, fs []float64
		for _, m := range moves {
			if m.kind == kind {
				as = append(as, m.assigned.Sub(m.signal).Seconds())
				ls = append(ls, m.loaded.Sub(m.signal).Seconds())
				fs = append(fs, m.firstAppend.Sub(m.signal).Seconds())
			}
		}
		goal := fmt.Sprintf("≤ %s", haSession+time.Second)
		if kind == "SIGTERM" {
			goal = "≤ 2s"
		}
		t.add(kind, len(as), fmt.Sprintf("%.2f s / %.2f s", median(as), percentile(as, 100)), fmt.Sprintf("%.2f s / %.2f s", median(ls), percentile(ls, 100)), fmt.Sprintf("%.2f s / %.2f s", median(fs), percentile(fs, 100)), goal)
	}
	t.note("Each takeover: the owner (the instance whose /metrics says followpub_tenants_owned 1) is signalled once the standby has joined the group and the owner has published for at least 2 s; "+
		"assigned is the standby's next `group generation joined` log line that gives it the tenant, state loaded its next `tenant owned: state loaded` line; first record is the smallest LogAppendTime (the topic is created with message.timestamp.type=LogAppendTime) at or after that line, on this machine's clock. "+
		"The signalled instance is started again as the new standby once the new owner has logged a cycle that published. %d runs, %d instances started in all.", d.opts.runs, started)
	t.note("Over all runs: %d records were due (visible at least 2 × POLL_INTERVAL before the end of a run), %d of them never appeared in the topic (lost), %d duplicate copies among the %d records read back.",
		visible, lost, dups, published)
	return t, nil
}

// failoverRun is what one failover run measured.
type failoverRun struct {
	moves                               []takeover
	due, lost, dups, published, started int
}

func (d *driver) failoverOnce(ctx context.Context, perKind int) (failoverRun, error) {
	var res failoverRun
	topic, stateTopic, cleanup, err := d.haTopics(ctx, "ha")
	if err != nil {
		return res, err
	}
	defer cleanup()
	a, err := startAPI(wshotosim.Config{Count: -1, Rate: haRate, Latency: d.opts.latency, Location: d.loc})
	if err != nil {
		return res, err
	}
	defer a.close()
	t0 := time.Now()
	var live []*haInstance
	var all []*haInstance
	defer func() {
		for _, i := range all {
			_ = i.p.cmd.Process.Kill()
			<-i.p.done
		}
	}()
	start := func() (*haInstance, error) {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p, err := startProc(d.bins[0].path, d.haGroup(a, topic, stateTopic, topic, addr), "run")
		if err != nil {
			return nil, err
		}
		i := &haInstance{p: p, addr: addr}
		all = append(all, i)
		live = append(live, i)
		return i, nil
	}
	for range 2 {
		if _, err := start(); err != nil {
			return res, err
		}
	}
	// settled waits until every live instance has joined and exactly one owns the tenant.
	settled := func(timeout time.Duration) (*haInstance, error) {
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			var owners []*haInstance
			joined := true
			for _, i := range live {
				joined = joined && i.joined()
				if i.owns() {
					owners = append(owners, i)
				}
			}
			if joined && len(owners) == 1 {
				return owners[0], nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		var logs []string
		for _, i := range live {
			logs = append(logs, tail(i.p.out.String(), 10))
		}
		return nil, fmt.Errorf("no single owner of the tenant within %s:\n%s", timeout, strings.Join(logs, "\n---\n"))
	}
	kinds := []syscall.Signal{}
	for range perKind {
		kinds = append(kinds, syscall.SIGKILL, syscall.SIGTERM)
	}
	for _, sig := range kinds {
		o, err := settled(60 * time.Second)
		if err != nil {
			return res, err
		}
		time.Sleep(2 * time.Second) // the owner publishing for a while
		var standby *haInstance
		for _, i := range live {
			if i != o {
				standby = i
			}
		}
		m := takeover{kind: map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGTERM: "SIGTERM"}[sig], signal: time.Now(), owner: standby, old: o}
		_ = o.p.cmd.Process.Signal(sig)
		if sig == syscall.SIGTERM {
			if err := o.p.wait(30 * time.Second); err != nil {
				return res, fmt.Errorf("after SIGTERM: %w", err)
			}
		} else {
			<-o.p.done
		}
		live = slices.DeleteFunc(live, func(i *haInstance) bool { return i == o })
		deadline := time.Now().Add(4 * haSession)
		for {
			if at, ok := standby.assigned(m.signal); ok {
				m.assigned = at
				break
			}
			if time.Now().After(deadline) {
				return res, fmt.Errorf("the standby was not given the tenant within %s of %s:\n%s", 4*haSession, m.kind, tail(standby.p.out.String(), 15))
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The signalled one comes back only once the new owner has published: its joining the
		// group starts a rebalance, which would otherwise interrupt the takeover being measured.
		for !standby.publishedSince(m.assigned) {
			if time.Now().After(deadline) {
				return res, fmt.Errorf("the new owner published nothing within %s of %s:\n%s", 4*haSession, m.kind, tail(standby.p.out.String(), 15))
			}
			time.Sleep(20 * time.Millisecond)
		}
		progress("  %s: standby assigned after %s", m.kind, m.assigned.Sub(m.signal).Round(time.Millisecond))
		res.moves = append(res.moves, m)
		if _, err := start(); err != nil {
			return res, err
		}
	}
	if _, err := settled(60 * time.Second); err != nil {
		return res, err
	}
	stop := time.Now()
	time.Sleep(3 * haInterval)
	for _, i := range live {
		_ = i.p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, i := range live {
		if err := i.p.wait(30 * time.Second); err != nil {
			return res, err
		}
	}
	res.started = len(all)
	recs, err := d.kafka.consume(ctx, topic)
	if err != nil {
		return res, err
	}
	res.published = len(recs)
	seen := map[int64]bool{}
	var appends []time.Time
	for _, r := range recs {
		id, err := strconv.ParseInt(string(r.Key), 10, 64)
		if err != nil {
			return res, fmt.Errorf("topic %s: key %q is not a follow id", topic, r.Key)
		}
		if seen[id] {
			res.dups++
		}
		seen[id] = true
		appends = append(appends, r.Timestamp)
	}
	slices.SortFunc(appends, func(a, b time.Time) int { return a.Compare(b) })
	for i := range res.moves {
		m := &res.moves[i]
		for _, l := range m.owner.p.logs("tenant owned: state loaded") {
			if !l.time().Before(m.assigned) {
				m.loaded = l.time()
				break
			}
		}
		j, _ := slices.BinarySearchFunc(appends, m.assigned, func(a, t time.Time) int { return a.Compare(t) })
		if j == len(appends) {
			return res, fmt.Errorf("no record appended after the %s takeover at %s", m.kind, m.assigned.Format(time.StampMilli))
		}
		m.firstAppend = appends[j]
		if d.opts.haTimeline {
			m.timeline()
		}
	}
	due := stop.Add(-2 * haInterval)
	for _, r := range a.sim.Visible() {
		if r.Time().Before(due) && !r.Time().Before(t0) {
			res.due++
			if !seen[r.ID] {
				res.lost++
			}
		}
	}
	return res, nil
}

// haTakeover builds a state of opts.ids remembered ids in a fresh state topic with
// internal/kafkastate, starts one instance, and measures from its assignment to its first record
// appended by Kafka; and the state topic's bytes.
func (d *driver) haTakeover(ctx context.Context) (*table, error) {
	var build, toLoaded, load, toFirst []float64
	var size int64
	for run := 1; run <= d.opts.runs; run++ {
		progress("ha takeover run %d/%d: a state of %d remembered ids", run, d.opts.runs, d.opts.ids)
		s, err := d.takeoverOnce(ctx)
		if err != nil {
			return nil, err
		}
		progress("  built in %.1fs, %.1f MiB; assigned → loaded %.2fs, → first record %.2fs", s.build, mib(float64(s.bytes)), s.toLoaded, s.toFirst)
		build, toLoaded, load, toFirst = append(build, s.build), append(toLoaded, s.toLoaded), append(load, s.load), append(toFirst, s.toFirst)
		size = s.bytes
	}
	t := &table{
		title: fmt.Sprintf("High availability — takeover of a state with %d remembered ids in the window, STATE_STORE=kafka", d.opts.ids),
		head:  []string{"figure", "median of runs", "max of runs", "goal"},
	}
	t.add("assigned (`group generation joined`) → first record appended by Kafka", fmt.Sprintf("%.2f s", median(toFirst)), fmt.Sprintf("%.2f s", percentile(toFirst, 100)), "≤ 10 s")
	t.add("assigned → state loaded (`tenant owned: state loaded`)", fmt.Sprintf("%.2f s", median(toLoaded)), fmt.Sprintf("%.2f s", percentile(toLoaded, 100)), "")
	t.add("of which the load (its load_duration)", fmt.Sprintf("%.2f s", median(load)), fmt.Sprintf("%.2f s", percentile(load, 100)), "")
	t.add("building the state with internal/kafkastate (10 commits of 100,000 ids)", fmt.Sprintf("%.2f s", median(build)), fmt.Sprintf("%.2f s", percentile(build, 100)), "")
	t.note("State topic: %d bytes on the broker (DescribeLogDirs, before compaction) for %d ids as built: %.1f bytes per id, %.1f MiB per 1,000,000 ids. "+
		"The ids grow by uneven steps (seeded random gaps below 2,000,000), their follow_times spread over yesterday and today, the floor and the watermark at yesterday's start (all of them stay in the window); the instance finds %d records/s arriving in the API.",
		size, d.opts.ids, float64(size)/float64(max(d.opts.ids, 1)), mib(float64(size))*1e6/float64(max(d.opts.ids, 1)), haRate)
	return t, nil
}

type takeoverSample struct {
	build, toLoaded, load, toFirst float64 // seconds
	bytes                          int64
}

func (d *driver) takeoverOnce(ctx context.Context) (takeoverSample, error) {
	var s takeoverSample
	topic, stateTopic, cleanup, err := d.haTopics(ctx, "takeover")
	if err != nil {
		return s, err
	}
	defer cleanup()
	began := time.Now()
	if err := buildKafkaState(ctx, d.kafka.addrs, stateTopic, d.opts.ids, d.loc); err != nil {
		return s, err
	}
	s.build = time.Since(began).Seconds()
	if s.bytes, err = d.kafka.logBytes(ctx, stateTopic); err != nil {
		return s, err
	}
	a, err := startAPI(wshotosim.Config{Count: -1, Rate: haRate, Latency: d.opts.latency, Location: d.loc})
	if err != nil {
		return s, err
	}
	defer a.close()
	p, err := startProc(d.bins[0].path, d.haGroup(a, topic, stateTopic, stateTopic, ""), "run")
	if err != nil {
		return s, err
	}
	defer func() { _ = p.cmd.Process.Kill(); <-p.done }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n, err := d.kafka.count(ctx, topic)
		if err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("nothing published within 2 minutes of the start over %d remembered ids:\n%s", d.opts.ids, tail(p.out.String(), 15))
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(30 * time.Second); err != nil {
		return s, err
	}
	i := &haInstance{p: p}
	assigned, ok := i.assigned(time.Time{})
	loaded := p.logs("tenant owned: state loaded")
	if !ok || len(loaded) == 0 {
		return s, fmt.Errorf("no assignment or no state loaded in the log:\n%s", tail(p.out.String(), 15))
	}
	if seen, _ := loaded[0]["seen"].(float64); int(seen) < d.opts.ids {
		return s, fmt.Errorf("the instance loaded %v remembered ids, want at least %d", loaded[0]["seen"], d.opts.ids)
	}
	recs, err := d.kafka.consume(ctx, topic)
	if err != nil {
		return s, err
	}
	first := recs[0].Timestamp
	for _, r := range recs {
		if r.Timestamp.Before(first) {
			first = r.Timestamp
		}
	}
	s.toLoaded = loaded[0].time().Sub(assigned).Seconds()
	s.load = parseLogDuration(loaded[0]["load_duration"]).Seconds()
	s.toFirst = first.Sub(assigned).Seconds()
	return s, nil
}

// buildKafkaState writes a state of n remembered ids into the default tenant of a new state topic,
// as buildState does into a file: follow_times spread over yesterday and today, commits of
// 100,000 ids, ids growing by uneven steps.
func buildKafkaState(ctx context.Context, brokers []string, topic string, n int, loc *time.Location) (err error) {
	store, err := kafkastate.Open(ctx, kafkastate.Config{Brokers: brokers, Topic: topic})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := store.Load(ctx); err != nil {
		return err
	}
	now := time.Now()
	floor := poller.StartOfDay(now, loc).AddDate(0, 0, -1).UnixMilli()
	hi := now.Add(-time.Minute).UnixMilli()
	if err := store.Replace(ctx, floor, floor); err != nil {
		return err
	}
	// Uneven gaps between ids and follow_times, as real ones have: even ones would compress to
	// almost nothing in the store's lz4 batches and understate the topic's bytes.
	rng := rand.New(rand.NewPCG(1, 2))
	id := int64(1_700_000_000_000_000)
	const chunk = 100_000
	add := make([]poller.Published, 0, chunk)
	for i := range n {
		id += 1 + rng.Int64N(2_000_000)
		ft := floor + (hi-floor)*int64(i)/int64(max(n, 1)) + rng.Int64N(1000)
		add = append(add, poller.Published{ID: id, FollowTime: min(ft, hi)})
		if len(add) == chunk || i == n-1 {
			if err := store.Commit(ctx, poller.Change{Add: add, Floor: floor, Watermark: floor}); err != nil {
				return fmt.Errorf("building a state of %d ids in %s: %w", n, topic, err)
			}
			add = add[:0]
		}
	}
	return nil
}

// haStores runs the backfill and steady-state measurements with followpub on each store in the
// same runs: the file store (the default) and STATE_STORE=kafka, with opts.haRecords records and
// opts.haSteady of steady state.
func (d *driver) haStores(ctx context.Context) ([]*table, error) {
	var b [4]byte
	_, _ = crand.Read(b[:])
	prefix := "bench-hastore-" + hex.EncodeToString(b[:])
	defer d.deleteTopicsWithPrefix(ctx, prefix)
	// A wrapper gives each process a state topic and a group of its own: every run starts empty.
	wrapper := filepath.Join(d.tmp, "followpub-kafka-store")
	script := fmt.Sprintf("#!/bin/sh\nid=%s-$$\nexport FOLLOWPUB_STATE_STORE=kafka FOLLOWPUB_STATE_TOPIC=$id FOLLOWPUB_GROUP_ID=$id\nexec %s \"$@\"\n", prefix, d.bins[0].path)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		return nil, err
	}
	hd := *d
	hd.bins = []binary{{name: "file store", path: d.bins[0].path}, {name: "kafka store", path: wrapper}}
	hd.opts.records, hd.opts.steady = d.opts.haRecords, d.opts.haSteady
	hd.opts.codecs = []string{publisher.DefaultCompression}
	backfill, err := hd.backfill(ctx)
	if err != nil {
		return nil, fmt.Errorf("backfill of the stores: %w", err)
	}
	steady, err := hd.steadyState(ctx)
	if err != nil {
		return nil, fmt.Errorf("steady state of the stores: %w", err)
	}
	var out []*table
	for _, t := range []*table{backfill[0], backfill[3], steady[0]} {
		t.title = "High availability — file and kafka stores in the same runs: " + t.title
		out = append(out, t)
	}
	return out, nil
}

// deleteTopicsWithPrefix deletes every topic whose name starts with prefix (best effort).
func (d *driver) deleteTopicsWithPrefix(ctx context.Context, prefix string) {
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, d.kafka.admin)
	if err != nil {
		return
	}
	for _, t := range resp.Topics {
		if t.Topic != nil && strings.HasPrefix(*t.Topic, prefix) {
			d.kafka.deleteTopic(ctx, *t.Topic)
		}
	}
}
