package faults

import (
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/internal/wshotosim"
)

// TestBrokerOutage runs `followpub run` against a private broker that is down when followpub
// starts, then comes up, then goes down again mid-run and comes back, while records keep arriving.
// Throughout, the process keeps running and /healthz answers; while the broker is down /readyz
// says not-ready, nothing is published and the watermark does not move; once it is back every
// record is published, with nothing lost. The mid-run outage begins while a batch is in flight (a
// burst of records; the broker killed, SIGKILL, as soon as the topic starts to grow, so requests
// under way get no answer), and nothing may be duplicated: what landed of that batch is found by
// reading the topic back.
func TestBrokerOutage(t *testing.T) {
	t.Parallel()
	b := kafkatest.StartDedicated(t)
	from, to := pastDays(1)
	w := e2etest.NewWorld(t, wshotosim.Config{Count: 3000, Start: from, End: to, Rate: 5, LateFraction: 0.1, LateBy: 5 * time.Minute},
		from.Add(-time.Minute), e2etest.WithBrokers(b.Addrs()))
	addr := e2etest.FreeAddr(t)
	env := w.Env("FOLLOWPUB_HTTP_ADDR="+addr, "FOLLOWPUB_KAFKA_WRITE_TIMEOUT=3s", "FOLLOWPUB_POLL_INTERVAL=500ms")
	ta := newTally(t, b.Addrs(), w.Topic)

	// gauge reads one metric; the endpoint must answer.
	gauge := func(name string, labels ...string) float64 {
		t.Helper()
		body := scrape(addr)
		if body == "" {
			t.Fatalf("/metrics does not answer")
		}
		v, _ := metric(body, name, labels...)
		return v
	}
	var p *proc
	alive := func(when string) {
		t.Helper()
		if p.Exited() {
			t.Fatalf("%s: followpub exited (status %d):\n%s", when, p.ExitCode(), tail(p.Output(), 40))
		}
		if code, _ := e2etest.Get("http://" + addr + "/healthz"); code != http.StatusOK {
			t.Fatalf("%s: /healthz = %d", when, code)
		}
	}

	// 1. The broker is down at start-up.
	b.Stop(t)
	down := time.Now()
	p = start(t, env, "run")
	if !e2etest.WaitFor(60*time.Second, func() bool {
		v, _ := metric(scrape(addr), "followpub_cycles_total", `result="failed"`)
		return v >= 2
	}) {
		t.Fatalf("no two failed cycles within 60 s with the broker down:\n%s", tail(p.Output(), 40))
	}
	alive("broker down at start-up")
	if code := ready(addr); code != http.StatusServiceUnavailable {
		t.Fatalf("broker down at start-up: /readyz = %d, want 503", code)
	}
	if v := gauge("followpub_records_published_total"); v != 0 {
		t.Fatalf("broker down at start-up: %v records counted as published", v)
	}
	if v := gauge("followpub_watermark_timestamp_seconds"); v != 0 {
		t.Fatalf("broker down at start-up: the watermark moved to %v", v)
	}
	failedAtStart := gauge("followpub_cycles_total", `result="failed"`)
	b.Start(t)
	back := time.Now()
	want := w.Want()
	if missing := ta.syncUntil(t, want, 90*time.Second); len(missing) > 0 {
		t.Fatalf("after the broker came up, %d of %d records are still not published after 90 s:\n%s",
			len(missing), len(want), tail(p.Output(), 30))
	}
	caughtUp := time.Since(back)
	if !e2etest.WaitFor(30*time.Second, func() bool { return ready(addr) == http.StatusOK }) {
		t.Fatalf("/readyz never said ready after the broker came up")
	}
	figures(t, "phase=down-at-start-up broker_down_for=%v failed_cycles=%v records=%d published_within=%v after the broker was back",
		back.Sub(down).Round(time.Second), failedAtStart, len(want), caughtUp.Round(100*time.Millisecond))

	// 2. The broker dies mid-run, while a batch is in flight, and records keep arriving.
	errorsBefore := gauge("followpub_kafka_write_errors_total")
	ends := newEndWatcher(t, b.Addrs(), w.Topic)
	base := ends.total(t)
	now := time.Now()
	burst := make([]time.Time, 5*batchSize)
	for i := range burst {
		burst[i] = now.Add(-time.Duration(i%1800) * time.Second)
	}
	w.Sim.Insert(burst...)
	for began := time.Now(); ends.total(t) == base; time.Sleep(2 * time.Millisecond) {
		if time.Since(began) > 30*time.Second {
			t.Fatalf("the burst was not being published within 30 s:\n%s", tail(p.Output(), 30))
		}
	}
	inFlight := ends.total(t) - base // appended of the burst an instant before the kill
	b.Kill(t)
	down = time.Now()
	if !e2etest.WaitFor(60*time.Second, func() bool { return ready(addr) == http.StatusServiceUnavailable }) {
		t.Fatalf("/readyz still says ready 60 s into the outage")
	}
	notReadyAfter := time.Since(down)
	if !e2etest.WaitFor(30*time.Second, func() bool {
		v, _ := metric(scrape(addr), "followpub_kafka_write_errors_total")
		return v > errorsBefore
	}) {
		t.Fatalf("no Kafka write error counted during the outage")
	}
	wm := gauge("followpub_watermark_timestamp_seconds")
	pub := gauge("followpub_records_published_total")
	if wm == 0 {
		t.Fatal("the watermark gauge is 0 after records were published")
	}
	for range 24 { // six seconds of outage, watched
		time.Sleep(250 * time.Millisecond)
		alive("broker down mid-run")
		if v := gauge("followpub_watermark_timestamp_seconds"); v != wm {
			t.Fatalf("the watermark moved from %v to %v while the broker was down", wm, v)
		}
		if v := gauge("followpub_records_published_total"); v != pub {
			t.Fatalf("%v records were counted as published while the broker was down", v-pub)
		}
		if code := ready(addr); code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz = %d while the broker was down", code)
		}
	}
	failedDuring := gauge("followpub_cycles_total", `result="failed"`) - failedAtStart
	errorsDuring := gauge("followpub_kafka_write_errors_total") - errorsBefore
	b.Start(t)
	back = time.Now()
	want = w.Want()
	if missing := ta.syncUntil(t, want, 90*time.Second); len(missing) > 0 {
		t.Fatalf("after the outage, %d of %d records are still not published after 90 s:\n%s",
			len(missing), len(want), tail(p.Output(), 30))
	}
	caughtUp = time.Since(back)
	if !e2etest.WaitFor(30*time.Second, func() bool { return ready(addr) == http.StatusOK }) {
		t.Fatalf("/readyz never said ready after the outage")
	}
	if v := gauge("followpub_watermark_timestamp_seconds"); v <= wm {
		t.Fatalf("the watermark did not move after the outage (%v)", v)
	}
	figures(t, "phase=outage-mid-run broker_down_for=%v not_ready_after=%v failed_cycles=%v kafka_write_errors=%v records=%d published_within=%v after the broker was back",
		back.Sub(down).Round(time.Second), notReadyAfter.Round(100*time.Millisecond), failedDuring, errorsDuring,
		len(want), caughtUp.Round(100*time.Millisecond))

	p.Signal(syscall.SIGTERM)
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Fatalf("after SIGTERM followpub exited %d:\n%s", code, tail(p.Output(), 40))
	}
	noSecret(t, "the log", p.Output())

	want = w.Want()
	finalRun(t, env)
	ta.sync(t)
	lost := ta.missing(want)
	slices.Sort(lost)
	if len(lost) > 0 {
		t.Errorf("%d of %d records lost, e.g. %v", len(lost), len(want), lost[:min(10, len(lost))])
	}
	copies, keys := ta.dups()
	if copies > 0 {
		t.Errorf("%d duplicate copies of %d keys after the outages, want none", copies, keys)
	}
	figures(t, "injected=2 lost=%d duplicated=%d records=%d duplicate_keys=%d appended_of_the_burst_of_%d_before_the_kill=%d",
		len(lost), copies, len(want), keys, len(burst), inFlight)
}
