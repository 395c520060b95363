package faults

import (
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/internal/wshotosim"
)

// TestKafkaConnectionFaults runs `followpub run` with its Kafka connections through a proxy on
// 127.0.0.1 (kafkatest.Proxy) while records keep arriving, and breaks produce requests on cue:
// half of the faults cut a request in the middle and reset the connection (the broker appends
// nothing), the other half let the broker append and drop its response (the acknowledgement is
// lost in transit). Each leaves the write's fate unknown to followpub, which must settle it by
// reading the topic back: nothing lost, nothing duplicated, and the process never exits.
func TestKafkaConnectionFaults(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	proxy := kafkatest.StartProxy(t, brokers[0])
	from, to := pastDays(1)
	w := e2etest.NewWorld(t, wshotosim.Config{Count: 2000, Start: from, End: to, Rate: 5}, from.Add(-time.Minute))
	addr := e2etest.FreeAddr(t)
	env := w.Env("FOLLOWPUB_KAFKA_BROKERS="+proxy.Addr(), "FOLLOWPUB_KAFKA_WRITE_TIMEOUT=5s",
		"FOLLOWPUB_HTTP_ADDR="+addr)
	ta := newTally(t, brokers, w.Topic)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 17))
	p := start(t, env, "run")
	if missing := ta.syncUntil(t, w.Want(), 60*time.Second); len(missing) > 0 {
		t.Fatalf("%d records not published before the faults:\n%s", len(missing), tail(p.Output(), 30))
	}

	const faults = 10
	for i := range faults {
		kind := "cut mid-request"
		if i%2 == 0 {
			proxy.CutProduceRequests(1)
		} else {
			kind = "response dropped"
			proxy.DropProduceResponses(1)
		}
		// A burst of new records, so that a publish is due.
		now := time.Now()
		burst := make([]time.Time, 400)
		for k := range burst {
			burst[k] = now.Add(-time.Duration(rng.Int64N(int64(20 * time.Minute))))
		}
		w.Sim.Insert(burst...)
		if !e2etest.WaitFor(30*time.Second, func() bool { return proxy.Injected() >= i+1 }) {
			t.Fatalf("fault %d (%s) was not injected within 30 s:\n%s", i+1, kind, tail(p.Output(), 30))
		}
		if p.Exited() {
			t.Fatalf("followpub exited (status %d) after fault %d (%s):\n%s", p.ExitCode(), i+1, kind, tail(p.Output(), 40))
		}
	}
	want := w.Want()
	if missing := ta.syncUntil(t, want, 90*time.Second); len(missing) > 0 {
		t.Fatalf("%d of %d records still not published 90 s after the last fault:\n%s", len(missing), len(want), tail(p.Output(), 40))
	}
	// Every fault failed a write, which a read-back then settled (the last perhaps only now). A
	// publish call writes the three partitions at once, so up to three faults may fail one call.
	const minSettled = (faults + 2) / 3
	var settled, found float64
	e2etest.WaitFor(30*time.Second, func() bool {
		body := scrape(addr)
		settled, _ = metric(body, "followpub_ambiguous_writes_settled_total")
		found, _ = metric(body, "followpub_readback_records_found_total")
		return settled >= faults
	})
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Fatalf("after SIGTERM followpub exited %d:\n%s", code, tail(p.Output(), 40))
	}
	noSecret(t, "the log", p.Output())

	want = w.Want()
	finalRun(t, w.Env("FOLLOWPUB_KAFKA_BROKERS="+proxy.Addr()))
	ta.sync(t)
	lost := ta.missing(want)
	slices.Sort(lost)
	if len(lost) > 0 {
		t.Errorf("%d of %d records lost, e.g. %v", len(lost), len(want), lost[:min(10, len(lost))])
	}
	copies, keys := ta.dups()
	if copies > 0 {
		t.Errorf("%d duplicate copies of %d keys after %d Kafka connection faults, want none", copies, keys, proxy.Injected())
	}
	if settled < minSettled || settled > faults {
		for _, l := range lines(p.Output(), "publish") {
			t.Log(l)
		}
		for _, l := range lines(p.Output(), "cycle ended early") {
			t.Log(l)
		}
		t.Errorf("%v ambiguous writes settled by a read-back, want between %d and the %d faults", settled, minSettled, faults)
	}
	figures(t, "injected=%d lost=%d duplicated=%d records=%d produce_requests=%d writes_settled=%v found_by_readback=%v",
		proxy.Injected(), len(lost), copies, len(want), proxy.Produced(), settled, found)
}
