package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/syncbuf"
	"github.com/followpub/followpub/internal/wshotosim"
)

// setEnv sets the FOLLOWPUB_ variables of env for the test.
func setEnv(t *testing.T, env []string) {
	t.Helper()
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix) {
			t.Setenv(k, v)
		}
	}
}

// worldTenant is the tenant id polling w's simulator into w's topic with token.
func worldTenant(cfg *config, id string, w *e2etest.World, token string) tenantConf {
	tc := cfg.defaultTenant()
	tc.ID, tc.Pub.Tenant, tc.Pub.Topic = id, id, w.Topic
	tc.API.BaseURL, tc.API.AccessToken = w.APIURL, token
	return tc
}

// TestTenantsApartInOneProcess: one service, three tenants over the shared HTTP client and Kafka
// connections, each with its own simulator and topic: one healthy, one whose token is refused
// (revoked credentials), one whose API answers 500 to everything. The healthy tenant publishes
// all of its records with ce_tenant, and a record that arrives later within 2 × POLL_INTERVAL;
// the failures show only in the failing tenants' series, /status and log lines.
func TestTenantsApartInOneProcess(t *testing.T) {
	start := time.Now().Add(-48 * time.Hour)
	healthy := e2etest.NewWorld(t, wshotosim.Config{Count: 60, Span: 5 * time.Hour}, start)
	revoked := e2etest.NewWorld(t, wshotosim.Config{Count: 20, Span: 5 * time.Hour}, start)
	dead := e2etest.NewWorld(t, wshotosim.Config{Count: 20, Span: 5 * time.Hour, Faults: wshotosim.Faults{HTTP500: 1}}, start)
	const interval = time.Second
	setEnv(t, healthy.Env("FOLLOWPUB_POLL_INTERVAL="+interval.String()))
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.TenantsFile = "(the test's tenants)"
	tcs := []tenantConf{
		worldTenant(cfg, "healthy", healthy, e2etest.Token),
		worldTenant(cfg, "revoked", revoked, "a-revoked-token"),
		worldTenant(cfg, "dead", dead, e2etest.Token),
	}
	var logs syncbuf.Buffer
	svc, err := openService(cfg, tcs, newLogger(&logs, "json", "info", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.runTenants(ctx, false) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runTenants: %v", err)
		}
	}()

	want := map[string]bool{}
	for _, r := range healthy.Want() {
		want[string(r.Key())] = true
	}
	if !e2etest.WaitFor(20*time.Second, func() bool { return len(e2etest.ReadTopic(t, healthy.Brokers, healthy.Topic)) >= len(want) }) {
		t.Fatalf("the healthy tenant did not publish its %d records; log:\n%s", len(want), logs.String())
	}
	// A record that becomes visible now is published within two poll intervals.
	arrived := time.Now()
	late := healthy.Sim.Insert(arrived)[0]
	want[string(late.Key())] = true
	var published time.Time
	if !e2etest.WaitFor(10*time.Second, func() bool {
		for _, m := range e2etest.ReadTopic(t, healthy.Brokers, healthy.Topic) {
			if string(m.Key) == string(late.Key()) {
				published = m.Time
				return true
			}
		}
		return false
	}) {
		t.Fatal("the record that arrived later was never published")
	}
	if d := published.Sub(arrived); d > 2*interval {
		t.Errorf("the healthy tenant published a new record %s after it became visible, want at most 2 × POLL_INTERVAL = %s", d, 2*interval)
	}
	msgs := e2etest.ReadTopic(t, healthy.Brokers, healthy.Topic)
	counts := e2etest.CountKeys(msgs)
	for id := range want {
		if counts[id] != 1 {
			t.Errorf("id %s is in the healthy tenant's topic %d times, want once", id, counts[id])
		}
	}
	if len(counts) != len(want) {
		t.Errorf("the healthy tenant's topic holds %d ids, want %d", len(counts), len(want))
	}
	for _, m := range msgs {
		if h := header(m, "ce_tenant"); h != "healthy" {
			t.Fatalf("record %s has ce_tenant %q, want healthy", m.Key, h)
		}
	}
	for _, w := range []*e2etest.World{revoked, dead} {
		if n := len(e2etest.ReadTopic(t, w.Brokers, w.Topic)); n != 0 {
			t.Errorf("topic %s of a failing tenant holds %d records", w.Topic, n)
		}
	}

	// Metrics: each failure in its own tenant's series only.
	if n := labelled(t, svc.metrics, "followpub_api_requests_total", map[string]string{"tenant": "revoked", "outcome": "auth_error"}); n == 0 {
		t.Error("no auth_error request counted for the revoked tenant")
	}
	if n := labelled(t, svc.metrics, "followpub_api_requests_total", map[string]string{"tenant": "dead", "outcome": "http_5xx"}); n == 0 {
		t.Error("no http_5xx request counted for the dead tenant")
	}
	for _, outcome := range []string{"auth_error", "http_5xx"} {
		if n := labelled(t, svc.metrics, "followpub_api_requests_total", map[string]string{"tenant": "healthy", "outcome": outcome}); n != 0 {
			t.Errorf("the healthy tenant counts %v %s requests", n, outcome)
		}
	}
	if n := labelled(t, svc.metrics, "followpub_cycles_total", map[string]string{"tenant": "healthy", "result": "failed"}); n != 0 {
		t.Errorf("the healthy tenant counts %v failed cycles", n)
	}
	if n := labelled(t, svc.metrics, "followpub_last_success_timestamp_seconds", map[string]string{"tenant": "healthy"}); n == 0 {
		t.Error("the healthy tenant has no last success")
	}
	for _, id := range []string{"revoked", "dead"} {
		if n := labelled(t, svc.metrics, "followpub_last_success_timestamp_seconds", map[string]string{"tenant": id}); n != 0 {
			t.Errorf("the failing tenant %s has a last success", id)
		}
	}
	// /readyz: the instance works, one tenant's failure is its own; /status lists every tenant.
	if !svc.ready() {
		t.Error("not ready although the healthy tenant completes its cycles")
	}
	doc := svc.statusDoc()
	if len(doc.Tenants) != 3 {
		t.Fatalf("/status lists %d tenants, want 3", len(doc.Tenants))
	}
	for _, td := range doc.Tenants {
		if wantReady := td.Tenant == "healthy"; td.Ready != wantReady {
			t.Errorf("/status: tenant %s ready %v, want %v", td.Tenant, td.Ready, wantReady)
		}
	}
	// Logs: every warning and error names a failing tenant.
	for _, l := range e2etest.JSONLines(t, logs.String()) {
		if l["level"] == "WARN" || l["level"] == "ERROR" {
			if l["tenant"] != "revoked" && l["tenant"] != "dead" {
				t.Errorf("a %s line of tenant %v: %v", l["level"], l["tenant"], l)
			}
		}
	}
}

// labelled returns the sum of the series of name in m whose labels include want.
func labelled(t *testing.T, m *metrics, name string, want map[string]string) float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			sum += s.GetGauge().GetValue() + s.GetCounter().GetValue()
		}
	}
	return sum
}
