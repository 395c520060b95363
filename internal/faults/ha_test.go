package faults

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/kafkastate"
	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/poller"
)

// The HA tests' timing: the session timeout is the broker's minimum, so that a takeover is
// seconds. A takeover after SIGKILL itself takes about the session timeout plus a second of
// rejoining, loading and reading back, so the bound's 2 × POLL_INTERVAL is its margin: 2 s of
// interval leave room for a CI machine under load (1 s missed the bound by 0.4 s at load 22).
const (
	haSession  = 6 * time.Second
	haInterval = 2 * time.Second
	// haBound is how soon every record must be published after it became visible, even across a
	// takeover: GROUP_SESSION_TIMEOUT + 2 × POLL_INTERVAL.
	haBound = haSession + 2*haInterval
	// haWatchEvery is how often the test reads the topic: a record's measured latency includes up
	// to this much of the test's own lag.
	haWatchEvery = 100 * time.Millisecond
)

// haRig is a world where `followpub run` instances share one tenant through STATE_STORE=kafka,
// each in its own empty working directory, while records arrive at 20 a second; it measures when
// each record became visible and when it appeared in the topic.
type haRig struct {
	t     *testing.T
	w     *e2etest.World
	extra []string
	ta    *tally

	mu       sync.Mutex
	visible  map[int64]time.Time
	appeared map[int64]time.Time
	stop     chan struct{}
	done     sync.WaitGroup
	all      []*haInstance
}

// haInstance is one `followpub run`.
type haInstance struct {
	name string
	addr string
	p    *proc
	// signalled is set when the test ends the instance; any other end is a failure.
	signalled bool
}

func (i *haInstance) signal(sig syscall.Signal) {
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		i.signalled = true
	}
	i.p.Signal(sig)
}

func newHARig(t *testing.T, opts ...e2etest.WorldOption) *haRig {
	e2etest.Binary(t) // built before the clock starts
	from, to := pastDays(1)
	w := e2etest.NewWorld(t, wshotosim.Config{Count: 3000, Start: from, End: to}, from.Add(-time.Minute), opts...)
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	r := &haRig{
		t: t, w: w, ta: newTally(t, w.Brokers, w.Topic),
		extra: []string{
			"FOLLOWPUB_STATE_STORE=kafka", "FOLLOWPUB_STATE_TOPIC=followpub-ha-state-" + id, "FOLLOWPUB_GROUP_ID=followpub-ha-" + id,
			"FOLLOWPUB_GROUP_SESSION_TIMEOUT=" + haSession.String(), "FOLLOWPUB_POLL_INTERVAL=" + haInterval.String(),
			// Relative: each instance's own (empty) working directory; STATE_STORE=kafka never opens it.
			"FOLLOWPUB_STATE_PATH=followpub.state",
		},
		visible: map[int64]time.Time{}, appeared: map[int64]time.Time{}, stop: make(chan struct{}),
	}
	for _, rec := range w.Want() {
		r.visible[rec.ID] = time.Now()
	}
	t.Cleanup(r.halt)
	return r
}

// start starts an instance in a new empty directory, with the rig's variables and env.
func (r *haRig) start(name string, env ...string) *haInstance {
	addr := e2etest.FreeAddr(r.t)
	env = r.w.Env(append(append(slices.Clone(r.extra), env...), "FOLLOWPUB_HTTP_ADDR="+addr)...)
	i := &haInstance{name: fmt.Sprintf("%s#%d", name, len(r.all)+1), addr: addr, p: e2etest.StartIn(r.t, r.t.TempDir(), env, "run")}
	r.all = append(r.all, i)
	return i
}

// logs returns the group and ownership lines of every instance's log, for a failure message.
func (r *haRig) logs() string {
	var b strings.Builder
	for _, i := range r.all {
		fmt.Fprintf(&b, "%s:\n", i.name)
		for _, l := range lines(i.p.Output(), "") {
			if !strings.Contains(l, `"cycle done"`) && !strings.Contains(l, `"level":"DEBUG"`) {
				fmt.Fprintf(&b, "  %s\n", l)
			}
		}
	}
	return b.String()
}

// stream inserts a record every 50 ms (follow_time now) and reads the topic every haWatchEvery,
// until halt.
func (r *haRig) stream() {
	r.done.Add(2)
	go func() {
		defer r.done.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-tick.C:
				now := time.Now()
				recs := r.w.Sim.Insert(now)
				r.mu.Lock()
				r.visible[recs[0].ID] = now
				r.mu.Unlock()
			}
		}
	}()
	go func() {
		defer r.done.Done()
		for {
			select {
			case <-r.stop:
				return
			case <-time.After(haWatchEvery):
				r.watch()
			}
		}
	}()
}

func (r *haRig) watch() {
	msgs := r.ta.sync(r.t)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		id := mustID(r.t, m.Key)
		if _, ok := r.appeared[id]; !ok {
			r.appeared[id] = now
		}
	}
}

func (r *haRig) halt() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
		r.done.Wait()
	}
}

// owner waits until exactly one of the running instances reports that it owns the tenant.
func (r *haRig) owner(timeout time.Duration, in ...*haInstance) *haInstance {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var owners []*haInstance
		for _, i := range in {
			if i.p.Exited() {
				continue
			}
			if v, ok := metric(scrape(i.addr), "followpub_tenants_owned"); ok && v == 1 {
				owners = append(owners, i)
			}
		}
		if len(owners) == 1 {
			return owners[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	var logs []string
	for _, i := range in {
		logs = append(logs, i.name+":\n"+tail(i.p.Output(), 15))
	}
	r.t.Fatalf("no single owner of the tenant within %v:\n%s", timeout, strings.Join(logs, "\n"))
	return nil
}

// event is a kill, a stop or a pause of the owner.
type event struct {
	what string
	at   time.Time
}

// finish stops the stream, waits until every record visible is in the topic, and checks: none
// lost, none twice, each within haBound of becoming visible; it returns the latencies.
func (r *haRig) finish(timeout time.Duration) map[int64]time.Duration {
	r.t.Helper()
	r.halt()
	deadline := time.Now().Add(timeout)
	var lost []int64
	for {
		r.watch()
		lost = lost[:0]
		for id := range r.visible {
			if _, ok := r.appeared[id]; !ok {
				lost = append(lost, id)
			}
		}
		if len(lost) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		r.t.Errorf("%d of %d records never appeared in the topic, e.g. %v", len(lost), len(r.visible), lost[:min(10, len(lost))])
	}
	for _, i := range r.all {
		if i.p.Exited() && !i.signalled {
			r.t.Errorf("%s exited by itself (status %d):\n%s", i.name, i.p.ExitCode(), tail(i.p.Output(), 20))
		}
	}
	copies, keys := r.ta.dups()
	if copies > 0 {
		r.t.Errorf("%d duplicate copies of %d records in the topic", copies, keys)
	}
	lat := map[int64]time.Duration{}
	for id, v := range r.visible {
		if a, ok := r.appeared[id]; ok {
			lat[id] = a.Sub(v)
		}
	}
	return lat
}

// after returns the largest latency of the records that became visible within d after at: how
// long the records that arrived just after an event waited for a new owner.
func (r *haRig) after(lat map[int64]time.Duration, at time.Time, d time.Duration) time.Duration {
	var worst time.Duration
	for id, v := range r.visible {
		if !v.Before(at) && v.Before(at.Add(d)) {
			worst = max(worst, lat[id])
		}
	}
	return worst
}

// TestHAFailover runs two `followpub run` instances with STATE_STORE=kafka, each in its own empty
// working directory, on one real broker under a stream of 20 records a second, and moves the
// tenant every way it can move: the owner SIGKILLed six times about every 10 s (each time a fresh
// instance on a brand-new directory replaces it), handed over by SIGTERM three times, SIGSTOPped
// for 3 × GROUP_SESSION_TIMEOUT and then continued, and the only instance left SIGKILLed and
// replaced by a fresh one. Then: no record lost, none twice, and every record in the topic within
// GROUP_SESSION_TIMEOUT + 2 × POLL_INTERVAL of becoming visible.
func TestHAFailover(t *testing.T) { haFailover(t, 2, 6, 3) }

// TestHAFailoverThree is TestHAFailover with three instances (two standbys), fewer moves.
func TestHAFailoverThree(t *testing.T) { haFailover(t, 3, 3, 1) }

func haFailover(t *testing.T, instances, kills, terms int) {
	t.Parallel()
	began := time.Now()
	r := newHARig(t)
	r.stream()
	var live []*haInstance
	for i := range instances {
		live = append(live, r.start(string(rune('a'+i))))
	}
	replace := func(gone *haInstance) {
		live = slices.DeleteFunc(live, func(i *haInstance) bool { return i == gone })
		live = append(live, r.start("fresh"))
	}
	r.owner(60*time.Second, live...)
	var events []event
	var lastKill time.Time
	for range kills {
		o := r.owner(30*time.Second, live...)
		time.Sleep(time.Until(lastKill.Add(10 * time.Second)))
		time.Sleep(2 * time.Second) // the new owner publishing for a while
		lastKill = time.Now()
		o.signal(syscall.SIGKILL)
		o.p.Wait(10 * time.Second)
		events = append(events, event{"sigkill", lastKill})
		t.Logf("%s SIGKILLed at %s", o.name, lastKill.Format(time.StampMilli))
		replace(o)
	}
	for range terms {
		o := r.owner(30*time.Second, live...)
		time.Sleep(3 * time.Second)
		at := time.Now()
		o.signal(syscall.SIGTERM)
		if code := o.p.Wait(30 * time.Second); code != 0 {
			t.Fatalf("%s exited %d after SIGTERM:\n%s", o.name, code, tail(o.p.Output(), 30))
		}
		events = append(events, event{"sigterm", at})
		t.Logf("%s SIGTERMed at %s", o.name, at.Format(time.StampMilli))
		replace(o)
	}
	o := r.owner(30*time.Second, live...)
	time.Sleep(3 * time.Second)
	pausedAt := time.Now()
	o.signal(syscall.SIGSTOP)
	events = append(events, event{"sigstop", pausedAt})
	t.Logf("%s SIGSTOPped at %s", o.name, pausedAt.Format(time.StampMilli))
	time.Sleep(3 * haSession)
	o.signal(syscall.SIGCONT)
	time.Sleep(2 * haSession) // the woken one rejoins; it must publish nothing meanwhile
	if o.p.Exited() {
		t.Fatalf("%s exited after SIGCONT:\n%s", o.name, tail(o.p.Output(), 30))
	}
	// The only instance left is killed; a fresh one on a new directory takes over.
	for _, i := range slices.Clone(live) {
		if i != o {
			i.signal(syscall.SIGTERM)
			i.p.Wait(30 * time.Second)
			live = slices.DeleteFunc(live, func(x *haInstance) bool { return x == i })
		}
	}
	r.owner(30*time.Second, live...)
	time.Sleep(3 * time.Second)
	at := time.Now()
	o.signal(syscall.SIGKILL)
	o.p.Wait(10 * time.Second)
	events = append(events, event{"only-one-sigkill", at})
	live = []*haInstance{r.start("fresh")}
	r.owner(30*time.Second, live...)
	time.Sleep(3 * time.Second)

	lat := r.finish(60 * time.Second)
	var all []time.Duration
	late := 0
	for _, d := range lat {
		all = append(all, d)
		if d > haBound+haWatchEvery {
			late++
		}
	}
	slices.Sort(all)
	if late > 0 || t.Failed() {
		t.Log(r.logs())
		t.Errorf("%d records appeared more than %v (+ the test's %v read lag) after becoming visible; the slowest took %v", late, haBound, haWatchEvery, all[len(all)-1])
	}
	byKind := map[string][]time.Duration{}
	for _, e := range events {
		byKind[e.what] = append(byKind[e.what], r.after(lat, e.at, time.Second))
	}
	for _, k := range []string{"sigkill", "sigterm", "sigstop", "only-one-sigkill"} {
		d := byKind[k]
		slices.Sort(d)
		figures(t, "event=%s count=%d wait_of_records_arriving_just_after_median_ms=%d max_ms=%d",
			k, len(d), d[len(d)/2].Milliseconds(), d[len(d)-1].Milliseconds())
	}
	copies, _ := r.ta.dups()
	figures(t, "records=%d lost=%d duplicate_copies=%d latency_p50_ms=%d latency_p99_ms=%d latency_max_ms=%d bound_ms=%d instances_started=%d test_duration_s=%.0f",
		len(r.visible), len(r.visible)-len(lat), copies, all[len(all)/2].Milliseconds(), all[len(all)*99/100].Milliseconds(),
		all[len(all)-1].Milliseconds(), haBound.Milliseconds(), len(r.all), time.Since(began).Seconds())
}

// haEnv is the environment of a one-off `followpub` command in r's deployment.
func (r *haRig) haEnv(extra ...string) []string {
	return r.w.Env(append(slices.Clone(r.extra), extra...)...)
}

// TestHAWatermarkWhileRunning: with two instances running, both are ready (/readyz of the standby
// is 200), `watermark show` names the owner (by FOLLOWPUB_INSTANCE_ID or host/pid), and
// `watermark set`, then `watermark reset`, are applied by the owner at its next cycle: every record
// is published once more each time (a replay), without a restart.
func TestHAWatermarkWhileRunning(t *testing.T) {
	t.Parallel()
	r := newHARig(t)
	// a names itself (FOLLOWPUB_INSTANCE_ID), b goes by its host and pid.
	a, b := r.start("a", "FOLLOWPUB_INSTANCE_ID=replica-a"), r.start("b")
	live := []*haInstance{a, b}
	r.owner(60*time.Second, live...)
	want := r.w.Want()
	if lost := r.ta.syncUntil(t, want, 60*time.Second); len(lost) > 0 {
		t.Fatalf("%d records not published before the replay", len(lost))
	}
	// The standby is ready too: a healthy member that owns nothing.
	for _, i := range live {
		if !e2etest.WaitFor(10*time.Second, func() bool { return ready(i.addr) == 200 }) {
			t.Errorf("%s: /readyz = %d, want 200 (owner or standby)", i.name, ready(i.addr))
		}
		if v, _ := metric(scrape(i.addr), "followpub_group_member"); v != 1 {
			t.Errorf("%s: followpub_group_member = %v, want 1", i.name, v)
		}
	}
	// The second member's join can move the tenant once more (the assignment is not sticky): ask
	// again, now that both are members.
	o := r.owner(30*time.Second, live...)
	dir := t.TempDir()
	code, out := e2etest.RunIn(t, dir, time.Minute, r.haEnv(), "watermark", "show")
	if code != 0 {
		t.Fatalf("watermark show exited %d:\n%s", code, out)
	}
	var st struct {
		Exists bool    `json:"exists"`
		Seen   int     `json:"seen"`
		Tenant string  `json:"tenant"`
		Owner  *string `json:"owner"`
	}
	if err := json.Unmarshal([]byte(lines(out, `"tenant"`)[0]), &st); err != nil {
		t.Fatalf("watermark show printed %q: %v", out, err)
	}
	named := func(owner string) bool { return strings.HasSuffix(owner, fmt.Sprintf("/%d", o.p.Pid())) }
	if o == a {
		named = func(owner string) bool { return owner == "replica-a" }
	}
	if !st.Exists || st.Seen < len(want) || st.Tenant != "default" || st.Owner == nil || !named(*st.Owner) {
		t.Fatalf("watermark show: %+v, want the state with %d ids, owned by %s (pid %d, FOLLOWPUB_INSTANCE_ID=replica-a for a)", st, len(want), o.name, o.p.Pid())
	}
	// copies waits until every record is in the topic n times, and fails if one is there more often.
	copies := func(n int, what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			r.ta.sync(t)
			done := 0
			for id := range want {
				if r.ta.counts[id] == n {
					done++
				}
			}
			if done == len(want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d records in the topic %d times within a minute of %s:\n%s", done, len(want), n, what, r.logs())
			}
			time.Sleep(200 * time.Millisecond)
		}
		for id, c := range r.ta.counts {
			if c > n {
				t.Errorf("id %d is in the topic %d times after %s, want %d", id, c, what, n)
			}
		}
		for _, i := range live {
			if i.p.Exited() {
				t.Errorf("%s exited (status %d) after %s", i.name, i.p.ExitCode(), what)
			}
		}
	}
	began := time.Now()
	code, out = e2etest.RunIn(t, dir, time.Minute, r.haEnv(), "watermark", "set", r.w.Start.Format(time.RFC3339))
	if code != 0 {
		t.Fatalf("watermark set exited %d:\n%s", code, out)
	}
	applied := time.Since(began)
	copies(2, "watermark set")
	replayed := time.Since(began)
	// reset while running: the owner deletes the state, and its next cycle starts from START_FROM,
	// publishing every record once more.
	began = time.Now()
	code, out = e2etest.RunIn(t, dir, time.Minute, r.haEnv(), "watermark", "reset")
	if code != 0 || !strings.Contains(out, "reset") {
		t.Fatalf("watermark reset exited %d:\n%s", code, out)
	}
	resetApplied := time.Since(began)
	copies(3, "watermark reset")
	figures(t, "records=%d replayed=%d set_applied_ms=%d replay_done_ms=%d reset_applied_ms=%d reset_replay_done_ms=%d", len(want), len(want),
		applied.Milliseconds(), replayed.Milliseconds(), resetApplied.Milliseconds(), time.Since(began).Milliseconds())
}

// TestHABadInput: a state topic that is not compacted, a session timeout outside the broker's
// range and a second deployment on the same group and state topic exit 2 naming the variables; a
// state record that does not decode exits 1 naming the tenant and the offset, publishing nothing.
func TestHABadInput(t *testing.T) {
	t.Parallel()
	r := newHARig(t)
	dir := t.TempDir()
	t.Run("state topic not compacted", func(t *testing.T) {
		topic := kafkatest.Topic(t, r.w.Brokers, 1)
		code, out := e2etest.RunIn(t, dir, time.Minute, r.haEnv("FOLLOWPUB_STATE_TOPIC="+topic), "run", "--once")
		if code != 2 || !strings.Contains(out, "FOLLOWPUB_STATE_TOPIC="+topic) || !strings.Contains(out, "cleanup.policy=compact") {
			t.Fatalf("exit %d, want 2 naming FOLLOWPUB_STATE_TOPIC and the fix:\n%s", code, tail(out, 10))
		}
	})
	t.Run("session timeout out of range", func(t *testing.T) {
		code, out := e2etest.RunIn(t, dir, time.Minute, r.haEnv("FOLLOWPUB_GROUP_SESSION_TIMEOUT=1s"), "run", "--once")
		if code != 2 || !strings.Contains(out, "FOLLOWPUB_GROUP_SESSION_TIMEOUT=1s") {
			t.Fatalf("exit %d, want 2 naming FOLLOWPUB_GROUP_SESSION_TIMEOUT:\n%s", code, tail(out, 10))
		}
	})
	t.Run("another deployment", func(t *testing.T) {
		a := r.start("a")
		r.owner(60*time.Second, a)
		gen, _ := metric(scrape(a.addr), "followpub_group_generation")
		other := kafkatest.Topic(t, r.w.Brokers, 3)
		code, out := e2etest.RunIn(t, dir, time.Minute, r.haEnv("FOLLOWPUB_KAFKA_TOPIC="+other), "run")
		if code != 2 || !strings.Contains(out, "FOLLOWPUB_GROUP_ID=") || !strings.Contains(out, "FOLLOWPUB_STATE_TOPIC=") {
			t.Fatalf("exit %d, want 2 naming FOLLOWPUB_GROUP_ID and FOLLOWPUB_STATE_TOPIC:\n%s", code, tail(out, 10))
		}
		if after, _ := metric(scrape(a.addr), "followpub_group_generation"); after != gen {
			t.Errorf("the first deployment's generation moved from %v to %v: it was touched", gen, after)
		}
		if n := len(e2etest.ReadTopic(t, r.w.Brokers, other)); n != 0 {
			t.Errorf("the refused deployment published %d records", n)
		}
		a.signal(syscall.SIGTERM)
		a.p.Wait(30 * time.Second)
	})
	t.Run("undecodable state", func(t *testing.T) {
		stateTopic := strings.TrimPrefix(r.extra[1], "FOLLOWPUB_STATE_TOPIC=")
		part := kafkastate.PartitionOf(kafkastate.DefaultTenant, kafkastate.DefaultPartitions)
		offset := produceTo(t, r.w.Brokers, stateTopic, part, "default/meta", []byte("{not json"))
		before := len(e2etest.ReadTopic(t, r.w.Brokers, r.w.Topic))
		code, out := e2etest.RunIn(t, dir, time.Minute, r.haEnv(), "run", "--once")
		if code != 1 || !strings.Contains(out, "tenant default") || !strings.Contains(out, fmt.Sprintf("offset %d", offset)) || !strings.Contains(out, "START_FROM") {
			t.Fatalf("exit %d, want 1 naming the tenant and offset %d:\n%s", code, offset, tail(out, 10))
		}
		if after := len(e2etest.ReadTopic(t, r.w.Brokers, r.w.Topic)); after != before {
			t.Errorf("%d records published over an undecodable state", after-before)
		}
	})
}

// produceTo writes one record to partition part of topic and returns its offset.
func produceTo(t *testing.T, brokers []string, topic string, part int, key string, value []byte) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, part)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	offset, err := conn.ReadLastOffset()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.WriteMessages(kafka.Message{Key: []byte(key), Value: value}); err != nil {
		t.Fatal(err)
	}
	return offset
}

// TestHAStateMigrate: a deployment that ran with the file store moves to STATE_STORE=kafka with
// `followpub state migrate`: the first instance on Kafka publishes only what is new, nothing
// again; a second migrate without --force is refused.
func TestHAStateMigrate(t *testing.T) {
	t.Parallel()
	r := newHARig(t)
	if code, out := run(t, 2*time.Minute, r.w.Env(), "run", "--once"); code != 0 {
		t.Fatalf("run --once with the file store exited %d:\n%s", code, tail(out, 20))
	}
	want := r.w.Want()
	fileEnv := r.haEnv("FOLLOWPUB_STATE_PATH=" + r.w.State)
	code, out := run(t, 2*time.Minute, fileEnv, "state", "migrate")
	if code != 0 || !strings.Contains(out, fmt.Sprintf(`"seen":%d`, len(want))) {
		t.Fatalf("state migrate exited %d, want 0 with %d ids:\n%s", code, len(want), tail(out, 20))
	}
	for _, rec := range r.w.Sim.Insert(time.Now(), time.Now().Add(-time.Minute)) {
		want[rec.ID] = rec
	}
	if code, out := e2etest.RunIn(t, t.TempDir(), 2*time.Minute, r.haEnv(), "run", "--once"); code != 0 {
		t.Fatalf("run --once with STATE_STORE=kafka after the migration exited %d:\n%s", code, tail(out, 20))
	}
	r.ta.sync(t)
	if lost := r.ta.missing(want); len(lost) > 0 {
		t.Errorf("%d records missing after the migration", len(lost))
	}
	if copies, keys := r.ta.dups(); copies > 0 {
		t.Errorf("%d records of %d published again after the migration", copies, keys)
	}
	if code, out := run(t, time.Minute, fileEnv, "state", "migrate"); code != 2 || !strings.Contains(out, "--force") {
		t.Errorf("a second migrate exited %d, want 2 pointing at --force:\n%s", code, tail(out, 10))
	}
	figures(t, "records=%d migrated_then_published_once=%v", len(want), !t.Failed())
}

// TestHABrokerRestart stops the broker for 10 s under two running instances and 20 records a
// second: neither exits, ownership settles on one instance once the broker is back, and nothing
// is lost or published twice.
func TestHABrokerRestart(t *testing.T) {
	t.Parallel()
	b := kafkatest.StartDedicated(t)
	r := newHARig(t, e2etest.WithBrokers(b.Addrs()))
	r.stream()
	live := []*haInstance{r.start("a"), r.start("b")}
	r.owner(60*time.Second, live...)
	time.Sleep(5 * time.Second)
	b.Stop(t)
	down := time.Now()
	time.Sleep(10 * time.Second)
	b.Start(t)
	back := time.Now()
	r.owner(90*time.Second, live...)
	settled := time.Since(back)
	time.Sleep(5 * time.Second)
	lat := r.finish(90 * time.Second)
	for _, i := range live {
		if i.p.Exited() {
			t.Errorf("%s exited during the broker's restart (status %d):\n%s", i.name, i.p.ExitCode(), tail(i.p.Output(), 20))
		}
	}
	var worst time.Duration
	for _, d := range lat {
		worst = max(worst, d)
	}
	copies, _ := r.ta.dups()
	figures(t, "records=%d lost=%d duplicate_copies=%d broker_down_ms=%d owner_settled_after_back_ms=%d latency_max_ms=%d",
		len(r.visible), len(r.visible)-len(lat), copies, back.Sub(down).Milliseconds(), settled.Milliseconds(), worst.Milliseconds())
}

// TestHATakeoverMillionIDs: an instance takes over a tenant whose state holds 1,000,000
// remembered ids; it prints how long it took from being given the tenant to its first publish,
// and checks that the state it goes on with still holds every id.
func TestHATakeoverMillionIDs(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a million ids")
	}
	t.Parallel()
	r := newHARig(t)
	ctx := context.Background()
	stateTopic := strings.TrimPrefix(r.extra[1], "FOLLOWPUB_STATE_TOPIC=")
	store, err := kafkastate.Open(ctx, kafkastate.Config{Brokers: r.w.Brokers, Topic: stateTopic})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Load(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 1_000_000
	floor, now := r.w.Start.UnixMilli(), time.Now().UnixMilli()
	if err := store.Replace(ctx, floor, floor); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 100_000 {
		add := make([]poller.Published, 0, 100_000)
		for j := i; j < i+100_000; j++ {
			add = append(add, poller.Published{ID: 1<<50 + int64(j)*7, FollowTime: floor + int64(j)*(now-floor)/n})
		}
		if err := store.Commit(ctx, poller.Change{Add: add, Floor: floor, Watermark: floor}); err != nil {
			t.Fatal(err)
		}
	}
	started := time.Now()
	i := r.start("a")
	var first time.Time
	if !e2etest.WaitFor(2*time.Minute, func() bool {
		if len(r.ta.sync(t)) > 0 && first.IsZero() {
			first = time.Now()
		}
		return !first.IsZero()
	}) {
		t.Fatalf("nothing published within 2 minutes of the takeover:\n%s", tail(i.p.Output(), 20))
	}
	var owned time.Time
	var load float64
	for _, m := range e2etest.JSONLines(t, strings.Join(lines(i.p.Output(), `"msg":"tenant owned: state loaded"`), "\n")) {
		owned, _ = time.Parse(time.RFC3339Nano, m["time"].(string))
		load, _ = m["load_duration"].(float64)
	}
	if owned.IsZero() {
		t.Fatalf("no takeover logged:\n%s", tail(i.p.Output(), 20))
	}
	want := r.w.Want()
	if lost := r.ta.syncUntil(t, want, time.Minute); len(lost) > 0 {
		t.Fatalf("%d records not published after the takeover", len(lost))
	}
	i.signal(syscall.SIGTERM)
	i.p.Wait(30 * time.Second)
	st, err := store.Load(ctx)
	if err != nil || len(st.Seen) != n+len(want) {
		t.Fatalf("after the takeover the state holds %d ids (%v), want %d", len(st.Seen), err, n+len(want))
	}
	// The takeover log line comes after the load: assignment to first publish is both.
	figures(t, "remembered_ids=%d process_start_to_loaded_ms=%d load_ms=%.0f loaded_to_first_publish_ms=%d assignment_to_first_publish_ms=%.0f",
		n, owned.Sub(started).Milliseconds(), load/1e6, first.Sub(owned).Milliseconds(), load/1e6+float64(first.Sub(owned).Milliseconds()))
}
