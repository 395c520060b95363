package faults

import (
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/poller"
)

// apiFaultMix is the mix TestAPIFaultMix sustains: about one list request in five answers with a
// fault, on top of the connections the proxy resets.
var apiFaultMix = wshotosim.Faults{HTTP500: 0.04, HTTP429: 0.02, Malformed: 0.04, Code3: 0.04, Hang: 0.01, Auth: 0.03}

// TestAPIFaultMix runs `followpub run` for many cycles against an API that misbehaves in every way
// we know of at once: HTTP 500 and 429, malformed bodies, code 3, requests that hang past
// API_TIMEOUT, code 10011 for a valid token, every token revoked every 700 ms (tokens also live
// only 2 s), a page set that changes between pages (a record inserted after each page served, for
// the first 100 pages), records that keep arriving, and a proxy that resets six connections in
// ten after a random number of response bytes (up to 60 kB, so mostly mid-response). Under all of it, every record must reach the topic exactly once, the process
// must keep running and stop cleanly, and no token or secret may appear in its output (at debug
// level).
func TestAPIFaultMix(t *testing.T) {
	t.Parallel()
	now := time.Now()
	today := poller.StartOfDay(now, shanghai)
	first := now.Add(-6 * time.Hour)
	if first.Before(today) {
		first = today
	}
	w := e2etest.NewWorld(t, wshotosim.Config{
		Count: 300, Start: first, End: now,
		Rate: 0.5, LateFraction: 0.2, LateBy: 5 * time.Minute,
		InsertBetweenPages: 1, InsertLimit: 100,
		TokenTTL: 2 * time.Second, HangFor: 30 * time.Second, Faults: apiFaultMix,
	}, today, e2etest.WithTokens())
	proxy := newResetProxy(t, w.SimURL, 0.6)
	w.APIURL = proxy.URL()
	addr := e2etest.FreeAddr(t)
	env := w.Env("FOLLOWPUB_HTTP_ADDR="+addr, "FOLLOWPUB_API_PAGE_SIZE=20", "FOLLOWPUB_API_TIMEOUT=1s",
		"FOLLOWPUB_POLL_INTERVAL=300ms", "FOLLOWPUB_LOG_LEVEL=debug")

	// Revoke every token every 700 ms: tokens expire in the middle of reading a window.
	var revocations atomic.Int64
	stop := make(chan struct{})
	revoked := make(chan struct{})
	go func() {
		defer close(revoked)
		tick := time.NewTicker(700 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				w.Sim.ExpireTokens()
				revocations.Add(1)
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-revoked
	}()

	// Every kind at least once, whatever the dice say; then the random mix.
	for _, f := range []wshotosim.Fault{wshotosim.FaultHang, wshotosim.FaultHTTP500, wshotosim.FaultAuth,
		wshotosim.FaultMalformed, wshotosim.FaultHTTP429, wshotosim.FaultCode3} {
		w.Sim.FailNext(f, 1)
	}
	ta := newTally(t, w.Brokers, w.Topic)
	p := start(t, env, "run")
	time.Sleep(15 * time.Second) // many cycles under the fault mix
	if p.Exited() {
		t.Fatalf("followpub exited (status %d) under the fault mix:\n%s", p.ExitCode(), tail(p.Output(), 40))
	}
	// Everything the API shows now is published while the faults go on.
	want := w.Want()
	if missing := ta.syncUntil(t, want, 90*time.Second); len(missing) > 0 {
		t.Fatalf("%d of %d records still not published after 90 s under the fault mix:\n%s",
			len(missing), len(want), tail(p.Output(), 30))
	}
	body := scrape(addr)
	if body == "" {
		t.Fatal("/metrics does not answer")
	}
	noSecret(t, "/metrics", body)
	ok, _ := metric(body, "followpub_cycles_total", `result="ok"`)
	failed, _ := metric(body, "followpub_cycles_total", `result="failed"`)
	renewals, _ := metric(body, "followpub_api_token_renewals_total")
	outcomes := map[string]float64{}
	for _, o := range []string{"ok", "http_5xx", "http_429", "timeout", "conn_error", "malformed", "api_error", "auth_error"} {
		outcomes[o], _ = metric(body, "followpub_api_requests_total", `outcome="`+o+`"`)
	}
	close(stop)
	<-revoked
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Fatalf("after SIGTERM followpub exited %d:\n%s", code, tail(p.Output(), 40))
	}
	out := p.Output()
	noSecret(t, "the debug log", out)
	if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
		t.Fatalf("followpub panicked:\n%s", tail(out, 40))
	}

	st := w.Sim.Stats()
	for _, f := range []wshotosim.Fault{wshotosim.FaultHTTP500, wshotosim.FaultHTTP429, wshotosim.FaultMalformed,
		wshotosim.FaultCode3, wshotosim.FaultHang, wshotosim.FaultAuth} {
		if st.Faults[f] == 0 {
			t.Errorf("the simulator never injected %s: the mix proved less than it claims", f)
		}
	}
	if proxy.resets.Load() == 0 {
		t.Error("the proxy never reset a connection")
	}
	if st.Rejected["token_revoked"] == 0 {
		t.Error("no request was refused for a revoked token: token expiry mid-window was not exercised")
	}
	if ok < 3 {
		t.Errorf("only %v cycles completed under the fault mix", ok)
	}

	// No record twice, none the API never showed.
	copies, keys := ta.dups()
	if copies > 0 {
		t.Errorf("%d duplicate copies (%d keys) under API faults alone", copies, keys)
	}
	all := w.Want()
	if extra := ta.unexpected(all); len(extra) > 0 {
		t.Errorf("%d ids in the topic the API never showed, e.g. %v", len(extra), extra[:min(5, len(extra))])
	}

	// A last cycle without faults finds nothing left over: nothing was lost either.
	_ = w.Sim.SetFaults(wshotosim.Faults{})
	w.APIURL = w.SimURL
	want = w.Want()
	finalRun(t, w.Env())
	ta.sync(t)
	lost := ta.missing(want)
	slices.Sort(lost)
	if len(lost) > 0 {
		t.Errorf("%d of %d records lost, e.g. %v", len(lost), len(want), lost[:min(10, len(lost))])
	}
	copies, keys = ta.dups()
	if copies > 0 {
		t.Errorf("%d duplicate copies (%d keys) after the final run", copies, keys)
	}
	figures(t, "records=%d lost=%d duplicate_copies=%d cycles_ok=%v cycles_failed=%v list_requests=%d "+
		"injected_500=%d injected_429=%d malformed=%d code3=%d hangs=%d auth_10011=%d resets=%d of %d connections "+
		"revocations=%d revoked_refusals=%d token_renewals=%v inserted_between_pages=%d outcomes=%v",
		len(want), len(lost), copies, ok, failed, st.Requests["listForSystem"],
		st.Faults[wshotosim.FaultHTTP500], st.Faults[wshotosim.FaultHTTP429], st.Faults[wshotosim.FaultMalformed],
		st.Faults[wshotosim.FaultCode3], st.Faults[wshotosim.FaultHang], st.Faults[wshotosim.FaultAuth],
		proxy.resets.Load(), proxy.conns.Load(), revocations.Load(), st.Rejected["token_revoked"], renewals, st.InsertedBetweenPages, outcomes)
}
