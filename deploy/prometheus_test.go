package deploy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/internal/syncbuf"
	"github.com/followpub/followpub/internal/tooltest"
	"github.com/followpub/followpub/internal/wshotosim"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// timeScale is how much faster than the shipped rules the end-to-end test runs them: every range
// and for: is divided by it, and POLL_INTERVAL is the default 30s divided by it, so the rules
// see the same number of cycles and scrapes per window as in production.
const timeScale = 30

// thresholds rewrites the shipped rules' constants that are durations in seconds, or that the
// test reaches faster than production would: each must be found, so that a change to the shipped
// expression shows here.
var thresholds = []struct{ from, to string }{
	{"followpub_lag_seconds) > 1800", "followpub_lag_seconds) > 12"},
	{"process_start_time_seconds < 2100", "process_start_time_seconds < 70"},
	{"process_start_time_seconds < 1800", "process_start_time_seconds < 60"},
}

// scaledRules returns the shipped rules with every duration divided by timeScale and the
// thresholds rewritten.
func scaledRules(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, th := range thresholds {
		if !strings.Contains(s, th.from) {
			t.Fatalf("%s no longer contains %q: update the test's thresholds", alertsFile, th.from)
		}
		s = strings.ReplaceAll(s, th.from, th.to)
	}
	scale := func(d string) string {
		v, err := time.ParseDuration(d)
		if err != nil {
			t.Fatalf("%s: duration %q: %v", alertsFile, d, err)
		}
		return fmt.Sprintf("%dms", (v / timeScale).Milliseconds())
	}
	s = regexp.MustCompile(`\[(\d+[smh])\]`).ReplaceAllStringFunc(s, func(m string) string { return "[" + scale(m[1:len(m)-1]) + "]" })
	s = regexp.MustCompile(`(?m)^(\s+for:) (\S+)$`).ReplaceAllStringFunc(s, func(m string) string {
		i := strings.LastIndex(m, " ")
		return m[:i+1] + scale(m[i+1:])
	})
	return []byte(s)
}

// prom is a Prometheus server of the test's own.
type prom struct {
	t    *testing.T
	base string
}

// startPrometheus runs prometheus on a free loopback port with its own data directory, scraping
// the targets (as job followpub) every second and evaluating rules every second, until the test
// ends.
func startPrometheus(t *testing.T, rules []byte, targets ...string) *prom {
	t.Helper()
	bin := tooltest.Need(t, "prometheus")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	var quoted []string
	for _, tg := range targets {
		quoted = append(quoted, strconv.Quote(tg))
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
scrape_configs:
  - job_name: followpub
    static_configs:
      - targets: [%s]
`, strings.Join(quoted, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := e2etest.FreeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr,
		"--storage.tsdb.retention.time=1h", "--log.level=warn")
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	p := &prom{t: t, base: "http://" + addr}
	if !e2etest.WaitFor(30*time.Second, func() bool { code, _ := e2etest.Get(p.base + "/-/ready"); return code == 200 }) {
		t.Fatalf("prometheus did not become ready at %s:\n%s", p.base, out.String())
	}
	return p
}

// api calls the HTTP API and decodes data; a response that is not "success" is returned as an
// error (a query that does not parse, for example).
func (p *prom) api(path string, q url.Values, data any) error {
	resp, err := http.Get(p.base + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %v: %s", path, err, b)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, data)
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query evaluates expr now.
func (p *prom) query(expr string) ([]sample, error) {
	var d struct {
		Result []sample `json:"result"`
	}
	err := p.api("/api/v1/query", url.Values{"query": {expr}}, &d)
	return d.Result, err
}

type alert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (p *prom) alerts() []alert {
	p.t.Helper()
	var d struct {
		Alerts []alert `json:"alerts"`
	}
	if err := p.api("/api/v1/alerts", nil, &d); err != nil {
		p.t.Fatalf("prometheus alerts: %v", err)
	}
	return d.Alerts
}

// describe lists the alerts, for failure messages.
func describe(as []alert) string {
	var out []string
	for _, a := range as {
		out = append(out, fmt.Sprintf("%s%v=%s", a.Labels["alertname"], a.Labels, a.State))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// matches reports whether a is the alert name with every label of want.
func (a alert) matches(name string, want map[string]string) bool {
	if a.Labels["alertname"] != name {
		return false
	}
	for k, v := range want {
		if a.Labels[k] != v {
			return false
		}
	}
	return true
}

// waitAlert waits until alert name (with labels want) is in state ("pending" or "firing") and
// reports how long it took.
func (p *prom) waitAlert(name string, want map[string]string, state string, timeout time.Duration) {
	p.t.Helper()
	began := time.Now()
	var last []alert
	ok := e2etest.WaitFor(timeout, func() bool {
		last = p.alerts()
		return slices.ContainsFunc(last, func(a alert) bool { return a.matches(name, want) && a.State == state })
	})
	if !ok {
		p.t.Fatalf("%s %v did not become %s within %v; alerts: %s", name, want, state, timeout, describe(last))
	}
	p.t.Logf("%s %v %s after %v", name, want, state, time.Since(began).Round(100*time.Millisecond))
}

// waitResolved waits until no alert named name is pending or firing.
func (p *prom) waitResolved(name string, timeout time.Duration) {
	p.t.Helper()
	began := time.Now()
	var last []alert
	ok := e2etest.WaitFor(timeout, func() bool {
		last = p.alerts()
		return !slices.ContainsFunc(last, func(a alert) bool { return a.Labels["alertname"] == name })
	})
	if !ok {
		p.t.Fatalf("%s did not resolve within %v; alerts: %s", name, timeout, describe(last))
	}
	p.t.Logf("%s resolved after %v", name, time.Since(began).Round(100*time.Millisecond))
}

// assertQuiet fails if any alert is firing, or if any but allowPending is pending.
func (p *prom) assertQuiet(allowPending ...string) {
	p.t.Helper()
	for _, a := range p.alerts() {
		if a.State == "firing" || !slices.Contains(allowPending, a.Labels["alertname"]) {
			p.t.Errorf("healthy, yet %s is %s (%v)", a.Labels["alertname"], a.State, a.Labels)
		}
	}
}

// TestAlertsAgainstRealPrometheus runs a real Prometheus with the shipped rules (at timeScale)
// scraping a real `followpub run` that reads the simulator and publishes to a dedicated Kafka,
// breaks the API and the broker, and follows the matching alerts through pending and firing to
// resolved. It also checks the dashboard's queries against the same Prometheus.
func TestAlertsAgainstRealPrometheus(t *testing.T) {
	tooltest.Need(t, "prometheus")
	broker := kafkatest.StartDedicated(t)

	// A START_FROM inside today (API zone), so that records before it on the same day are below the
	// floor: the late-records alert must stay silent for them just after the start, and fire for
	// one that arrives later.
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(shanghai)
	dayStart := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, shanghai)
	if now.Sub(dayStart) < 10*time.Minute {
		t.Logf("waiting %v for 00:10 in Shanghai: the test needs records before START_FROM on its day", dayStart.Add(10*time.Minute).Sub(now).Round(time.Second))
		time.Sleep(dayStart.Add(10 * time.Minute).Sub(now))
		now = time.Now().In(shanghai)
	}
	startFrom := now.Add(-5 * time.Minute)
	if startFrom.Before(dayStart.Add(time.Minute)) {
		startFrom = dayStart.Add(time.Minute)
	}

	w := e2etest.NewWorld(t, wshotosim.Config{Count: 300, Span: 6 * time.Hour, Rate: 3}, startFrom, e2etest.WithBrokers(broker.Addrs()))
	sim, statePath := w.Sim, w.State
	httpAddr := e2etest.FreeAddr(t)
	run := e2etest.Start(t, w.Env(
		"FOLLOWPUB_API_TIMEOUT=2s",
		"FOLLOWPUB_API_RATE_LIMIT=100",
		"FOLLOWPUB_KAFKA_WRITE_TIMEOUT=3s",
		"FOLLOWPUB_HTTP_ADDR="+httpAddr,
		fmt.Sprintf("FOLLOWPUB_POLL_INTERVAL=%v", 30*time.Second/timeScale),
		"FOLLOWPUB_SHUTDOWN_TIMEOUT=10s",
	), "run")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("followpub output (last 6000 bytes):\n%s", tail(run.Output(), 6000))
		}
	})
	if !e2etest.WaitFor(60*time.Second, func() bool { code, _ := e2etest.Get("http://" + httpAddr + "/readyz"); return code == 200 }) {
		t.Fatalf("followpub did not become ready:\n%s", tail(run.Output(), 4000))
	}

	p := startPrometheus(t, scaledRules(t), httpAddr)
	began := time.Now()
	var phases []phase
	// Healthy for long enough that every window of the rules holds only healthy data.
	time.Sleep(25 * time.Second)
	if !e2etest.WaitFor(10*time.Second, func() bool {
		r, err := p.query(`followpub_records_late_total > 0`)
		return err == nil && len(r) > 0
	}) {
		t.Fatal("followpub counted no late records before START_FROM: the late-records case below would test nothing")
	}
	p.assertQuiet("FollowpubNoSuccessfulCycle")
	t.Run("dashboard", func(t *testing.T) { checkDashboard(t, p, false) })

	// The API answers HTTP 500 to every list call.
	if err := sim.SetFaults(wshotosim.Faults{HTTP500: 1}); err != nil {
		t.Fatal(err)
	}
	phases = append(phases, phase{name: "API answers 500", from: time.Now()})
	p.waitAlert("FollowpubNoSuccessfulCycle", nil, "firing", 30*time.Second)
	p.waitAlert("FollowpubAPIErrors", map[string]string{"endpoint": "listForSystem", "outcome": "http_5xx"}, "pending", 30*time.Second)
	p.waitAlert("FollowpubLagHigh", nil, "firing", 60*time.Second)
	p.waitAlert("FollowpubAPIErrors", map[string]string{"endpoint": "listForSystem", "outcome": "http_5xx"}, "firing", 60*time.Second)
	for _, a := range p.alerts() {
		if n := a.Labels["alertname"]; n == "FollowpubKafkaWriteErrors" || n == "FollowpubAPICredentialsRefused" || n == "FollowpubStateCommitsFailing" || n == "FollowpubAmbiguousWrites" {
			t.Errorf("the API fails with 5xx, yet %s is %s", n, a.State)
		}
	}
	if err := sim.SetFaults(wshotosim.Faults{}); err != nil {
		t.Fatal(err)
	}
	phases[len(phases)-1].to = time.Now()
	p.waitResolved("FollowpubNoSuccessfulCycle", 60*time.Second)
	p.waitResolved("FollowpubLagHigh", 60*time.Second)
	p.waitResolved("FollowpubAPIErrors", 90*time.Second)

	// The API refuses the token on every list call.
	if err := sim.SetFaults(wshotosim.Faults{Auth: 1}); err != nil {
		t.Fatal(err)
	}
	phases = append(phases, phase{name: "token refused", from: time.Now()})
	p.waitAlert("FollowpubAPICredentialsRefused", nil, "firing", 60*time.Second)
	if slices.ContainsFunc(p.alerts(), func(a alert) bool { return a.Labels["alertname"] == "FollowpubAPIErrors" }) {
		t.Errorf("auth errors are FollowpubAPICredentialsRefused's, yet FollowpubAPIErrors is raised: %s", describe(p.alerts()))
	}
	if slices.ContainsFunc(p.alerts(), func(a alert) bool { return a.Labels["alertname"] == "FollowpubAmbiguousWrites" }) {
		t.Errorf("the API refuses the token, yet FollowpubAmbiguousWrites is raised: %s", describe(p.alerts()))
	}
	if err := sim.SetFaults(wshotosim.Faults{}); err != nil {
		t.Fatal(err)
	}
	phases[len(phases)-1].to = time.Now()
	p.waitResolved("FollowpubAPICredentialsRefused", 90*time.Second)
	p.waitResolved("FollowpubNoSuccessfulCycle", 30*time.Second)

	// The broker stops.
	phases = append(phases, phase{name: "Kafka stopped", from: time.Now()})
	broker.Stop(t)
	p.waitAlert("FollowpubNoSuccessfulCycle", nil, "firing", 60*time.Second)
	p.waitAlert("FollowpubKafkaWriteErrors", nil, "firing", 90*time.Second)
	if slices.ContainsFunc(p.alerts(), func(a alert) bool { return a.Labels["alertname"] == "FollowpubStateCommitsFailing" }) {
		t.Errorf("Kafka is down, yet FollowpubStateCommitsFailing is raised: %s", describe(p.alerts()))
	}
	broker.Start(t)
	phases[len(phases)-1].to = time.Now()
	// The writes that failed while the broker was away are settled by a read-back once it is back.
	p.waitAlert("FollowpubAmbiguousWrites", nil, "firing", 60*time.Second)
	p.waitResolved("FollowpubKafkaWriteErrors", 90*time.Second)
	p.waitResolved("FollowpubNoSuccessfulCycle", 60*time.Second)

	// A record arrives with a follow_time below the floor, long after the start.
	phases = append(phases, phase{name: "late record", from: time.Now(), to: time.Now()})
	sim.Insert(startFrom.Add(-time.Minute))
	p.waitAlert("FollowpubLateRecords", nil, "firing", 30*time.Second)

	// The state file refuses writes: every commit fails, and the cycles after the first fail before
	// they ask the API for anything.
	if why := tooltest.ImmutableUnavailable(t); why != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot make the state file immutable here (%s): the state-commit alert is untested", why)
		}
		t.Logf("not testing FollowpubStateCommitsFailing: cannot make the state file immutable here (%s)", why)
	} else {
		phases = append(phases, phase{name: "state refuses writes", from: time.Now()})
		tooltest.Chattr(t, "+i", statePath)
		t.Cleanup(func() { _ = exec.Command("chattr", "-i", statePath).Run() })
		p.waitAlert("FollowpubNoSuccessfulCycle", nil, "firing", 30*time.Second)
		p.waitAlert("FollowpubStateCommitsFailing", nil, "firing", 90*time.Second)
		for _, a := range p.alerts() {
			if n := a.Labels["alertname"]; n == "FollowpubKafkaWriteErrors" || n == "FollowpubAPIErrors" || n == "FollowpubAPICredentialsRefused" {
				t.Errorf("the state does not save, yet %s is %s", n, a.State)
			}
		}
		if _, body := e2etest.Get("http://" + httpAddr + "/status"); !strings.Contains(body, `"status": "FAILING"`) || !strings.Contains(body, "the state store") {
			t.Errorf("/status while the state does not save: want FAILING and the state store named:\n%s", body)
		}
		tooltest.Chattr(t, "-i", statePath)
		phases[len(phases)-1].to = time.Now()
		p.waitResolved("FollowpubStateCommitsFailing", 60*time.Second)
		p.waitResolved("FollowpubNoSuccessfulCycle", 60*time.Second)
	}

	// One settled write is one alert: it resolves when the window has passed it.
	p.waitResolved("FollowpubAmbiguousWrites", 90*time.Second)

	// The status page shows this tenant's state as the process has it.
	checkStatusPage(t, "http://"+httpAddr)

	// What healthy and broken look like, from Prometheus' own data.
	shot := filepath.Join(t.TempDir(), "graphs.png")
	if dir := os.Getenv("FOLLOWPUB_SCREENSHOT_DIR"); dir != "" {
		shot = filepath.Join(dir, "prometheus-e2e-graphs.png")
	}
	time.Sleep(3 * time.Second)
	plotRun(t, p, []chart{
		{title: "Cycles by result", expr: `sum by (result) (rate(followpub_cycles_total[5s]))`, legend: "result", unit: "per s"},
		{title: "Lag", expr: `followpub_lag_seconds`, unit: "s"},
		{title: "API requests by outcome", expr: `sum by (outcome) (rate(followpub_api_requests_total[5s]))`, legend: "outcome", unit: "per s"},
		{title: "Records published", expr: `rate(followpub_records_published_total[5s])`, unit: "per s"},
		{title: "Kafka write errors", expr: `rate(followpub_kafka_write_errors_total[5s])`, unit: "per s"},
		{title: "Alerts firing", expr: `count by (alertname) (ALERTS{alertstate="firing"})`, legend: "alertname", unit: "alerts", timeline: true},
	}, phases, began, time.Now(), shot)

	run.Signal(syscall.SIGTERM)
	if code := run.Wait(20 * time.Second); code != 0 {
		t.Errorf("followpub exited %d after SIGTERM", code)
	}
}

// kafkaStoreOnly are the metrics only STATE_STORE=kafka exports (the group's): with the file
// store the dashboard's panels on them must be empty, with the kafka store they must not.
var kafkaStoreOnly = []string{"followpub_group_member", "followpub_group_generation"}

// TestHAAlertsAgainstRealPrometheus runs two `followpub run` instances with STATE_STORE=kafka
// under a real Prometheus with the shipped rules (at timeScale). Healthy, the HA alerts are silent
// and the dashboard's group panels have data; the owner stopped, FollowpubInstancesBelowTwo fires
// while the other instance takes the tenant (FollowpubTenantWithoutOwner silent); the broker
// stopped, no instance owns the tenant and FollowpubTenantWithoutOwner names it. Each resolves
// after recovery.
func TestHAAlertsAgainstRealPrometheus(t *testing.T) {
	tooltest.Need(t, "prometheus")
	broker := kafkatest.StartDedicated(t)
	// START_FROM at the start of today in the API's zone: no record the API returns is below the
	// floor, so that no late-records alert joins in.
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(shanghai)
	dayStart := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, shanghai)
	w := e2etest.NewWorld(t, wshotosim.Config{Count: 100, Span: max(now.Sub(dayStart), time.Minute), Rate: 3}, dayStart, e2etest.WithBrokers(broker.Addrs()))
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	addrs := []string{e2etest.FreeAddr(t), e2etest.FreeAddr(t)}
	start := func(i int) *e2etest.Proc {
		p := e2etest.StartIn(t, t.TempDir(), w.Env(
			"FOLLOWPUB_STATE_STORE=kafka", "FOLLOWPUB_STATE_TOPIC=followpub-prom-state-"+id, "FOLLOWPUB_GROUP_ID=followpub-prom-"+id,
			"FOLLOWPUB_GROUP_SESSION_TIMEOUT=6s", "FOLLOWPUB_STATE_PATH=followpub.state",
			fmt.Sprintf("FOLLOWPUB_POLL_INTERVAL=%v", 30*time.Second/timeScale),
			"FOLLOWPUB_KAFKA_WRITE_TIMEOUT=3s", "FOLLOWPUB_SHUTDOWN_TIMEOUT=10s", "FOLLOWPUB_HTTP_ADDR="+addrs[i],
		), "run")
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("followpub on %s (last 4000 bytes):\n%s", addrs[i], tail(p.Output(), 4000))
			}
		})
		return p
	}
	procs := []*e2etest.Proc{start(0), start(1)}
	ready := func(i int) bool { code, _ := e2etest.Get("http://" + addrs[i] + "/readyz"); return code == 200 }
	if !e2etest.WaitFor(90*time.Second, func() bool { return ready(0) && ready(1) }) {
		t.Fatalf("the two instances did not become ready (/readyz %v, %v)", ready(0), ready(1))
	}
	p := startPrometheus(t, scaledRules(t), addrs...)
	// owner returns the index of the instance Prometheus sees owning the tenant, or -1.
	owner := func() int {
		r, err := p.query(`followpub_tenant_owned{tenant="default"} == 1`)
		if err != nil || len(r) != 1 {
			return -1
		}
		return slices.Index(addrs, r[0].Metric["instance"])
	}
	time.Sleep(15 * time.Second)
	p.assertQuiet("FollowpubNoSuccessfulCycle")
	t.Run("dashboard", func(t *testing.T) { checkDashboard(t, p, true) })
	if r, err := p.query(`sum(followpub_group_member)`); err != nil || len(r) != 1 || r[0].Value[1] != "2" {
		t.Fatalf("sum(followpub_group_member) = %v (%v), want 2", r, err)
	}

	// The owner stops (SIGTERM: it leaves the group, the other takes the tenant at once).
	first := owner()
	if first < 0 {
		t.Fatal("Prometheus sees no single owner of tenant default")
	}
	procs[first].Signal(syscall.SIGTERM)
	if code := procs[first].Wait(20 * time.Second); code != 0 {
		t.Errorf("the owner exited %d after SIGTERM", code)
	}
	p.waitAlert("FollowpubInstancesBelowTwo", nil, "firing", 60*time.Second)
	if !e2etest.WaitFor(30*time.Second, func() bool { return owner() == 1-first }) {
		t.Errorf("the other instance did not take the tenant: %s", describe(p.alerts()))
	}
	t.Logf("tenant default moved from %s to %s", addrs[first], addrs[1-first])
	for _, a := range p.alerts() {
		if a.Labels["alertname"] == "FollowpubTenantWithoutOwner" && a.State == "firing" {
			t.Errorf("the tenant moved at once, yet FollowpubTenantWithoutOwner is firing: %s", describe(p.alerts()))
		}
	}
	procs[first] = start(first)
	p.waitResolved("FollowpubInstancesBelowTwo", 60*time.Second)

	// The broker stops: no instance is in the group, so none owns the tenant.
	broker.Stop(t)
	p.waitAlert("FollowpubTenantWithoutOwner", map[string]string{"tenant": "default"}, "firing", 60*time.Second)
	p.waitAlert("FollowpubInstancesBelowTwo", nil, "firing", 60*time.Second)
	broker.Start(t)
	p.waitResolved("FollowpubTenantWithoutOwner", 90*time.Second)
	p.waitResolved("FollowpubInstancesBelowTwo", 60*time.Second)
	if !e2etest.WaitFor(30*time.Second, func() bool { return owner() >= 0 }) {
		t.Errorf("no single owner after the broker came back: %s", describe(p.alerts()))
	}

	for _, pr := range procs {
		pr.Signal(syscall.SIGTERM)
	}
	for i, pr := range procs {
		if code := pr.Wait(20 * time.Second); code != 0 {
			t.Errorf("instance %s exited %d after SIGTERM", addrs[i], code)
		}
	}
}

// checkDashboard evaluates every query of the dashboard and checks that it names only metrics
// the running followpub exposes or the rules record, and that it returns data; kafkaStore says
// whether the instances run STATE_STORE=kafka, which exports kafkaStoreOnly.
func checkDashboard(t *testing.T, p *prom, kafkaStore bool) {
	b, err := os.ReadFile("grafana/followpub.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana/followpub.json: %v", err)
	}
	var exposed []string
	if err := p.api("/api/v1/label/__name__/values", url.Values{"match[]": {`{job="followpub"}`}}, &exposed); err != nil {
		t.Fatal(err)
	}
	for _, n := range kafkaStoreOnly {
		if slices.Contains(exposed, n) != kafkaStore {
			t.Errorf("%s exposed: %v, with STATE_STORE=kafka: %v", n, !kafkaStore, kafkaStore)
		}
	}
	recorded := map[string]bool{}
	for _, g := range loadRules(t, alertsFile).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
	}
	metricName := regexp.MustCompile(`\b(followpub[a-z0-9_:]*|process_[a-z0-9_]+|go_[a-z0-9_]+)\b`)
	// Grafana's variables, as it would expand them.
	vars := strings.NewReplacer("$__rate_interval", "10s", "$job", ".+", "$instance", ".+")
	queries, groupOnly := 0, 0
	for _, panel := range dash.Panels {
		if len(panel.Targets) == 0 {
			t.Errorf("panel %q has no query", panel.Title)
		}
		for _, tg := range panel.Targets {
			queries++
			expr := vars.Replace(tg.Expr)
			res, err := p.query(expr)
			if err != nil {
				t.Errorf("panel %q: %s: %v", panel.Title, tg.Expr, err)
				continue
			}
			kafkaOnly := false
			for _, n := range metricName.FindAllString(tg.Expr, -1) {
				if slices.Contains(kafkaStoreOnly, n) {
					kafkaOnly = true
					if !kafkaStore {
						continue
					}
				}
				if !recorded[n] && !slices.Contains(exposed, n) {
					t.Errorf("panel %q: %s names %s, which followpub does not expose and no rule records", panel.Title, tg.Expr, n)
				}
			}
			if kafkaOnly {
				groupOnly++
			}
			switch {
			case kafkaOnly && !kafkaStore:
				if len(res) != 0 {
					t.Errorf("panel %q: %s returns %v with STATE_STORE=file, which exports no group metric", panel.Title, tg.Expr, res)
				}
			case len(res) == 0:
				t.Errorf("panel %q: %s returns nothing while followpub runs healthy", panel.Title, tg.Expr)
			}
		}
	}
	t.Logf("%d dashboard queries checked against %d exposed metric names, STATE_STORE=kafka %v (%d queries on the group's metrics)", queries, len(exposed), kafkaStore, groupOnly)
}

// checkStatusPage reads /status and the page at / (in headless Chromium) of the running process.
func checkStatusPage(t *testing.T, base string) {
	code, body := e2etest.Get(base + "/status")
	if code != 200 {
		t.Fatalf("/status: %d %s", code, body)
	}
	var doc struct {
		Tenants []struct {
			Tenant    string `json:"tenant"`
			Status    string `json:"status"`
			LastCycle struct {
				Result string `json:"result"`
			} `json:"last_cycle"`
			State struct {
				Watermark string `json:"watermark"`
				Seen      int    `json:"seen"`
			} `json:"state"`
		} `json:"tenants"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || len(doc.Tenants) != 1 {
		t.Fatalf("/status: %v: %s", err, body)
	}
	td := doc.Tenants[0]
	if td.Tenant != "default" || td.Status != "RUNNING" || td.LastCycle.Result != "ok" || td.State.Seen == 0 || td.State.Watermark == "" {
		t.Errorf("/status of a healthy process: %s", body)
	}
	code, out := e2etest.Run(t, 20*time.Second, e2etest.Env(), "status", "--addr", strings.TrimPrefix(base, "http://"))
	if code != 0 || !strings.Contains(out, "tenant default: RUNNING") || !strings.Contains(out, "last cycle ok") {
		t.Errorf("followpub status exited %d:\n%s", code, out)
	}
	t.Logf("followpub status:\n%s", out)
	dom := tooltest.DumpDOM(t, base+"/")
	for _, want := range []string{">default<", "RUNNING"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the status page does not show %q", want)
		}
	}
	// The page was read after /status: its watermark is the same or newer.
	m := regexp.MustCompile(`class="watermark">([^<]+)<`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("the status page shows no watermark:\n%s", dom)
	}
	page, err1 := time.Parse(time.RFC3339Nano, m[1])
	status, err2 := time.Parse(time.RFC3339Nano, td.State.Watermark)
	if err1 != nil || err2 != nil || page.Before(status) {
		t.Errorf("the status page shows watermark %q, /status said %q a moment before (%v, %v)", m[1], td.State.Watermark, err1, err2)
	}
	if dir := os.Getenv("FOLLOWPUB_SCREENSHOT_DIR"); dir != "" {
		tooltest.Screenshot(t, base+"/", filepath.Join(dir, "status-page.png"), 1000, 560)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
