package main_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/internal/wshotosim"
)

// tenantsRig is a deployment of several tenants: one simulator serving all of them (each with
// its own data, credentials and faults), a topic per tenant, and a tenants file.
type tenantsRig struct {
	multi   *wshotosim.Multi
	url     string
	brokers []string
	topics  map[string]string
	start   time.Time
	dir     string
	file    string
}

// newTenantsRig serves ids with base's data and writes a tenants file whose entries use each
// tenant's app id with its secret in an environment variable (secretVar, set by env).
func newTenantsRig(t *testing.T, base wshotosim.Config, ids ...string) *tenantsRig {
	t.Helper()
	var ts []wshotosim.Tenant
	for _, id := range ids {
		ts = append(ts, wshotosim.Tenant{ID: id, Config: wshotosim.TenantConfig(base, id)})
	}
	multi, err := wshotosim.NewMulti(ts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(multi)
	t.Cleanup(srv.Close)
	r := &tenantsRig{multi: multi, url: srv.URL, brokers: kafkatest.Brokers(t), topics: map[string]string{},
		start: time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second), dir: t.TempDir()}
	r.file = filepath.Join(r.dir, "tenants.yaml")
	r.write(t, ids...)
	return r
}

// write writes the tenants file listing ids (creating the topics of new ones).
func (r *tenantsRig) write(t *testing.T, ids ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("tenants:\n")
	for _, id := range ids {
		if r.topics[id] == "" {
			r.topics[id] = kafkatest.Topic(t, r.brokers, 3)
		}
		appID, _, _ := wshotosim.TenantCredentials(id)
		fmt.Fprintf(&b, "  - id: %s\n    app_id: %s\n    app_secret_env: %s\n    topic: %s\n", id, appID, secretVar(id), r.topics[id])
	}
	if err := os.WriteFile(r.file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// secretVar is the variable holding tenant id's app secret.
func secretVar(id string) string {
	return "SECRET_" + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(id))
}

// env is followpub's environment for the rig, every tenant's secret in it, plus extra.
func (r *tenantsRig) env(_ []string, extra ...string) []string {
	kv := []string{
		"FOLLOWPUB_API_BASE_URL=" + r.url,
		"FOLLOWPUB_KAFKA_BROKERS=" + strings.Join(r.brokers, ","),
		"FOLLOWPUB_TENANTS_FILE=" + r.file,
		"FOLLOWPUB_STATE_PATH=" + filepath.Join(r.dir, "followpub.state"),
		"FOLLOWPUB_HTTP_ADDR=",
		"FOLLOWPUB_START_FROM=" + r.start.Format(time.RFC3339),
		"FOLLOWPUB_API_RATE_LIMIT=2000",
		"FOLLOWPUB_SHUTDOWN_TIMEOUT=20s",
		"FOLLOWPUB_LOG_FORMAT=json",
	}
	for _, id := range r.multi.IDs() {
		_, secret, _ := wshotosim.TenantCredentials(id)
		kv = append(kv, secretVar(id)+"="+secret)
	}
	return e2etest.Env(append(kv, extra...)...)
}

// want returns the keys tenant's simulator shows now with follow_time at or after the start.
func (r *tenantsRig) want(tenant string) map[string]bool {
	out := map[string]bool{}
	for _, rec := range r.multi.Tenant(tenant).Visible() {
		if rec.FollowTime >= r.start.UnixMilli() {
			out[string(rec.Key())] = true
		}
	}
	return out
}

// exactlyOnce checks that tenant's topic holds each key of want once, each with ce_tenant.
func (r *tenantsRig) exactlyOnce(t *testing.T, tenant string, want map[string]bool) {
	t.Helper()
	msgs := e2etest.ReadTopic(t, r.brokers, r.topics[tenant])
	counts := e2etest.CountKeys(msgs)
	for k := range want {
		if counts[k] != 1 {
			t.Errorf("tenant %s: id %s is in its topic %d times, want once", tenant, k, counts[k])
		}
	}
	for k, n := range counts {
		if !want[k] {
			t.Errorf("tenant %s: id %s is in its topic %d times but is not the tenant's", tenant, k, n)
		}
	}
	for _, m := range msgs {
		var got string
		for _, h := range m.Headers {
			if h.Key == "ce_tenant" {
				got = string(h.Value)
			}
		}
		if got != tenant {
			t.Fatalf("tenant %s: record %s has ce_tenant %q", tenant, m.Key, got)
		}
	}
}

var sampleLine = regexp.MustCompile(`(?m)^(followpub_\w+)\{([^}]*)\} (\S+)$`)

// series returns the samples of name on a /metrics page whose labels include want, summed.
func series(page, name string, want map[string]string) float64 {
	sum := 0.0
	for _, m := range sampleLine.FindAllStringSubmatch(page, -1) {
		if m[1] != name {
			continue
		}
		ok := true
		for k, v := range want {
			ok = ok && strings.Contains(m[2], k+`="`+v+`"`)
		}
		if n, err := strconv.ParseFloat(m[3], 64); ok && err == nil {
			sum += n
		}
	}
	return sum
}

// TestTenantsInOneProcess is issue 15's check of one process with three tenants: one healthy,
// one whose credentials are revoked, one whose API answers 500 to everything (the token endpoint
// too). The healthy tenant publishes all its records exactly once with ce_tenant, and a record
// that becomes visible later within 2 × POLL_INTERVAL; the failures show only in the failing
// tenants' metrics and log lines; /readyz is 200 and /status lists all three. Then
// `watermark show` prints one object per tenant and `set` needs --tenant.
func TestTenantsInOneProcess(t *testing.T) {
	ids := []string{"healthy", "revoked", "dead"}
	r := newTenantsRig(t, wshotosim.Config{Count: 120, Span: 10 * time.Hour, Order: "shuffled"}, ids...)
	r.multi.Tenant("revoked").SetRevoked(true)
	dead := r.multi.Tenant("dead")
	if err := dead.SetFaults(wshotosim.Faults{HTTP500: 1}); err != nil {
		t.Fatal(err)
	}
	dead.SetFaultsOnToken(true)
	// check names each tenant's result; the failing ones fail it.
	code, out := e2etest.Run(t, 60*time.Second, r.env(ids), "check")
	for _, want := range []string{"ok    tenant healthy: API token", "ok    tenant healthy: API list page 1", "ok    tenant healthy: topic",
		"FAIL  tenant revoked: API token", "FAIL  tenant dead: API token", "ok    tenant dead: topic"} {
		if !strings.Contains(out, want) {
			t.Errorf("check does not say %q:\n%s", want, out)
		}
	}
	if code != 1 {
		t.Errorf("check exited %d with two failing tenants, want 1:\n%s", code, out)
	}
	const interval = time.Second
	addr := e2etest.FreeAddr(t)
	p := e2etest.Start(t, r.env(ids, "FOLLOWPUB_POLL_INTERVAL="+interval.String(), "FOLLOWPUB_HTTP_ADDR="+addr), "run")

	want := r.want("healthy")
	if !e2etest.WaitFor(30*time.Second, func() bool { return len(e2etest.ReadTopic(t, r.brokers, r.topics["healthy"])) >= len(want) }) {
		t.Fatalf("the healthy tenant did not publish its %d records:\n%s", len(want), p.Output())
	}
	arrived := time.Now()
	late := r.multi.Tenant("healthy").Insert(arrived)[0]
	var published time.Time
	if !e2etest.WaitFor(10*time.Second, func() bool {
		for _, m := range e2etest.ReadTopic(t, r.brokers, r.topics["healthy"]) {
			if string(m.Key) == string(late.Key()) {
				published = m.Time
				return true
			}
		}
		return false
	}) {
		t.Fatalf("a record that became visible later was never published:\n%s", p.Output())
	}
	d := published.Sub(arrived)
	if d > 2*interval {
		t.Errorf("the healthy tenant published a new record %s after it became visible, want at most 2 × POLL_INTERVAL = %s", d, 2*interval)
	}
	want[string(late.Key())] = true
	r.exactlyOnce(t, "healthy", want)
	for _, id := range []string{"revoked", "dead"} {
		r.exactlyOnce(t, id, nil)
	}

	code, page := e2etest.Get("http://" + addr + "/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	failedRequests := func(tenant string) float64 {
		return series(page, "followpub_api_requests_total", map[string]string{"tenant": tenant}) -
			series(page, "followpub_api_requests_total", map[string]string{"tenant": tenant, "outcome": "ok"})
	}
	if n := failedRequests("healthy"); n != 0 {
		t.Errorf("the healthy tenant counts %v failed API requests", n)
	}
	if n := series(page, "followpub_cycles_total", map[string]string{"tenant": "healthy", "result": "failed"}); n != 0 {
		t.Errorf("the healthy tenant counts %v failed cycles", n)
	}
	for _, id := range []string{"revoked", "dead"} {
		if n := failedRequests(id); n == 0 {
			t.Errorf("tenant %s counts no failed API request", id)
		}
		if n := series(page, "followpub_last_success_timestamp_seconds", map[string]string{"tenant": id}); n != 0 {
			t.Errorf("tenant %s has a last success (%v)", id, n)
		}
	}
	if series(page, "followpub_last_success_timestamp_seconds", map[string]string{"tenant": "healthy"}) == 0 {
		t.Error("the healthy tenant has no last success")
	}
	if code, body := e2etest.Get("http://" + addr + "/readyz"); code != 200 {
		t.Errorf("/readyz = %d %s, want 200: the healthy tenant completes its cycles", code, body)
	}
	_, body := e2etest.Get("http://" + addr + "/status")
	var doc struct {
		Tenants []struct {
			Tenant string `json:"tenant"`
			Status string `json:"status"`
			Ready  bool   `json:"ready"`
		} `json:"tenants"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || len(doc.Tenants) != 3 {
		t.Fatalf("/status = %s (%v), want three tenants", body, err)
	}
	for _, td := range doc.Tenants {
		if wantReady := td.Tenant == "healthy"; td.Ready != wantReady || (td.Status == "RUNNING") != wantReady {
			t.Errorf("/status: tenant %s is %s, ready %v", td.Tenant, td.Status, td.Ready)
		}
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(40 * time.Second); code != 0 {
		t.Fatalf("after SIGTERM followpub exited %d:\n%s", code, p.Output())
	}
	failing := map[string]int{}
	for _, l := range e2etest.JSONLines(t, p.Output()) {
		if l["level"] != "WARN" && l["level"] != "ERROR" {
			continue
		}
		tenant, _ := l["tenant"].(string)
		if tenant != "revoked" && tenant != "dead" {
			t.Errorf("a %s line not of a failing tenant: %v", l["level"], l)
		}
		failing[tenant]++
	}
	if failing["revoked"] == 0 || failing["dead"] == 0 {
		t.Errorf("warnings by tenant %v: want some of revoked and of dead", failing)
	}
	for _, id := range ids {
		_, secret, _ := wshotosim.TenantCredentials(id)
		if strings.Contains(p.Output()+page+body, secret) {
			t.Fatalf("tenant %s's secret appears in the output", id)
		}
	}
	t.Logf("FIGURES tenants_one_process: tenants=3 healthy_records=%d new_record_published_after=%s bound=%s warnings_revoked=%d warnings_dead=%d",
		len(want), d.Round(time.Millisecond), 2*interval, failing["revoked"], failing["dead"])

	// watermark show: one object per tenant, with "tenant"; set and reset need --tenant.
	code, out = e2etest.Run(t, 20*time.Second, r.env(ids), "watermark", "show")
	if code != 0 {
		t.Fatalf("watermark show exited %d:\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("watermark show printed %d lines, want one per tenant:\n%s", len(lines), out)
	}
	for i, l := range lines {
		var st struct {
			Tenant string `json:"tenant"`
			Seen   int    `json:"seen"`
			Exists bool   `json:"exists"`
		}
		// A failing tenant has a state too (its start), with no id remembered.
		if err := json.Unmarshal([]byte(l), &st); err != nil || st.Tenant != ids[i] || !st.Exists || (st.Seen > 0) != (st.Tenant == "healthy") {
			t.Errorf("watermark show line %d = %s (%v)", i, l, err)
		}
	}
	if code, out := e2etest.Run(t, 20*time.Second, r.env(ids), "watermark", "set", "2026-01-01"); code != 2 || !strings.Contains(out, "--tenant") {
		t.Errorf("watermark set without --tenant exited %d, want 2 naming --tenant:\n%s", code, out)
	}
	if code, out := e2etest.Run(t, 20*time.Second, r.env(ids), "watermark", "set", "--tenant", "nobody", r.start.Format(time.RFC3339)); code != 2 || !strings.Contains(out, "nobody") {
		t.Errorf("watermark set --tenant nobody exited %d, want 2 naming it:\n%s", code, out)
	}
	code, out = e2etest.Run(t, 20*time.Second, r.env(ids), "watermark", "set", r.start.Format(time.RFC3339), "--tenant", "healthy")
	var st struct {
		Tenant string `json:"tenant"`
		Seen   int    `json:"seen"`
	}
	if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &st) != nil || st.Tenant != "healthy" || st.Seen != 0 {
		t.Fatalf("watermark set --tenant healthy exited %d: %s", code, out)
	}
	code, out = e2etest.Run(t, 20*time.Second, r.env(ids), "watermark", "reset", "--tenant", "revoked")
	if code != 0 || !strings.Contains(out, "tenant revoked reset") {
		t.Fatalf("watermark reset --tenant revoked exited %d: %s", code, out)
	}
}

// TestTenantsFileErrorsExit2: run and watermark exit 2 on a broken tenants file, naming the
// tenant and the field, before touching anything.
func TestTenantsFileErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tenants.yaml")
	body := "tenants:\n  - id: acme\n    app_id: wx1\n    app_secret: s3cr3t-inline\n  - id: globex\n    access_token_env: GLOBEX_UNSET\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	env := e2etest.Env("FOLLOWPUB_TENANTS_FILE="+file, "FOLLOWPUB_STATE_PATH="+filepath.Join(dir, "s"), "FOLLOWPUB_HTTP_ADDR=",
		"FOLLOWPUB_KAFKA_BROKERS=127.0.0.1:1")
	for _, args := range [][]string{{"run"}, {"watermark", "show"}} {
		code, out := e2etest.Run(t, 20*time.Second, env, args...)
		if code != 2 {
			t.Errorf("%v exited %d, want 2:\n%s", args, code, out)
		}
		for _, s := range []string{"FOLLOWPUB_TENANTS_FILE", "tenant acme", "app_secret", "tenant globex", "GLOBEX_UNSET"} {
			if !strings.Contains(out, s) {
				t.Errorf("%v: the message does not name %q:\n%s", args, s, out)
			}
		}
		if strings.Contains(out, "s3cr3t-inline") {
			t.Errorf("%v: the inline secret appears in the message:\n%s", args, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "s.acme")); !os.IsNotExist(err) {
		t.Errorf("a state file was created for a tenant of a broken file (%v)", err)
	}
}

// gauge returns the value of the unlabelled sample name on the /metrics of addr, -1 when it
// cannot be read.
func gauge(addr, name string) float64 {
	code, page := e2etest.Get("http://" + addr + "/metrics")
	if code != 200 {
		return -1
	}
	for _, l := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// TestTenantsSpreadOverInstances is issue 15's check of tenants moving between instances: 12
// tenants, each with its own simulated API and topic, 3 `followpub run` instances with
// STATE_STORE=kafka, records arriving for every tenant; one instance is SIGKILLed, then another
// starts. Every tenant's topic then holds each of its records exactly once, with ce_tenant, and
// no record was published later than GROUP_SESSION_TIMEOUT + 2 × POLL_INTERVAL after it became
// visible.
func TestTenantsSpreadOverInstances(t *testing.T) {
	e2etest.Binary(t)
	ids := wshotosim.TenantIDs(12)
	r := newTenantsRig(t, wshotosim.Config{Count: 40, Span: 5 * time.Hour}, ids...)
	const session, interval = 6 * time.Second, 2 * time.Second
	bound := session + 2*interval
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	extra := []string{
		"FOLLOWPUB_STATE_STORE=kafka", "FOLLOWPUB_STATE_TOPIC=followpub-tenants-state-" + suffix,
		"FOLLOWPUB_GROUP_ID=followpub-tenants-" + suffix, "FOLLOWPUB_GROUP_SESSION_TIMEOUT=" + session.String(),
		"FOLLOWPUB_POLL_INTERVAL=" + interval.String(), "FOLLOWPUB_STATE_PATH=followpub.state",
	}
	type instance struct {
		p    *e2etest.Proc
		addr string
	}
	var all []*instance
	start := func() *instance {
		addr := e2etest.FreeAddr(t)
		i := &instance{addr: addr, p: e2etest.StartIn(t, t.TempDir(), r.env(ids, append(extra, "FOLLOWPUB_HTTP_ADDR="+addr)...), "run")}
		all = append(all, i)
		return i
	}
	// owned waits until the live instances own every tenant between them, and returns each one's.
	owned := func(live ...*instance) []int {
		t.Helper()
		var per []int
		if !e2etest.WaitFor(3*session, func() bool {
			sum := 0
			for _, i := range live {
				sum += int(gauge(i.addr, "followpub_tenants_owned"))
			}
			return sum == len(ids)
		}) {
			var out strings.Builder
			for _, i := range live {
				fmt.Fprintf(&out, "%s\n", i.p.Output())
			}
			t.Fatalf("the live instances never owned the %d tenants between them:\n%s", len(ids), out.String())
		}
		for _, i := range live {
			per = append(per, int(gauge(i.addr, "followpub_tenants_owned")))
		}
		return per
	}

	visible := map[string]map[string]time.Time{}
	for _, id := range ids {
		visible[id] = map[string]time.Time{}
		for k := range r.want(id) {
			visible[id][k] = time.Now()
		}
	}
	var mu sync.Mutex
	stop := make(chan struct{})
	streamed := make(chan struct{})
	go func() { // a record for each tenant every 500 ms: 24 a second in all
		defer close(streamed)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, id := range ids {
					now := time.Now()
					rec := r.multi.Tenant(id).Insert(now)[0]
					mu.Lock()
					visible[id][string(rec.Key())] = now
					mu.Unlock()
				}
			}
		}
	}()
	a, b, c := start(), start(), start()
	spread3 := owned(a, b, c)
	time.Sleep(3 * interval)
	killed := time.Now()
	a.p.Signal(syscall.SIGKILL)
	a.p.Wait(10 * time.Second)
	spread2 := owned(b, c)
	movedAfter := time.Since(killed)
	time.Sleep(3 * interval)
	d := start()
	if !e2etest.WaitFor(3*session, func() bool { return gauge(d.addr, "followpub_tenants_owned") > 0 }) {
		t.Fatalf("the instance that joined never owned a tenant:\n%s", d.p.Output())
	}
	spreadJoined := owned(b, c, d)
	time.Sleep(3 * interval)
	close(stop)
	<-streamed

	worst := time.Duration(0)
	for _, id := range ids {
		want := map[string]bool{}
		for k := range visible[id] {
			want[k] = true
		}
		if !e2etest.WaitFor(bound+5*time.Second, func() bool { return len(e2etest.ReadTopic(t, r.brokers, r.topics[id])) >= len(want) }) {
			t.Errorf("tenant %s: not every record published", id)
		}
		r.exactlyOnce(t, id, want)
		for _, m := range e2etest.ReadTopic(t, r.brokers, r.topics[id]) {
			if v, ok := visible[id][string(m.Key)]; ok {
				lat := m.Time.Sub(v)
				worst = max(worst, lat)
				if lat > bound {
					t.Errorf("tenant %s: record %s published %s after it became visible, want at most GROUP_SESSION_TIMEOUT + 2 × POLL_INTERVAL = %s", id, m.Key, lat.Round(time.Millisecond), bound)
				}
			}
		}
	}
	// watermark show while the instances run: one line per tenant, each naming its owner.
	code, out := e2etest.Run(t, 60*time.Second, r.env(ids, extra...), "watermark", "show")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != len(ids) {
		t.Errorf("watermark show exited %d with %d lines, want 0 and one per tenant:\n%s", code, len(lines), out)
	} else {
		for i, l := range lines {
			var st struct {
				Tenant string  `json:"tenant"`
				Owner  *string `json:"owner"`
				Seen   int     `json:"seen"`
			}
			if err := json.Unmarshal([]byte(l), &st); err != nil || st.Tenant != ids[i] || st.Owner == nil || st.Seen == 0 {
				t.Errorf("watermark show line %d = %s (%v), want tenant %s with an owner and remembered ids", i, l, err, ids[i])
			}
		}
	}
	if code, out := e2etest.Run(t, 60*time.Second, r.env(ids, extra...), "watermark", "reset"); code != 2 || !strings.Contains(out, "--tenant") {
		t.Errorf("watermark reset without --tenant exited %d, want 2 naming --tenant:\n%s", code, out)
	}
	for _, i := range []*instance{b, c, d} {
		if i.p.Exited() {
			t.Errorf("an instance exited by itself:\n%s", i.p.Output())
			continue
		}
		i.p.Signal(syscall.SIGTERM)
	}
	for _, i := range []*instance{b, c, d} {
		if code := i.p.Wait(40 * time.Second); code != 0 {
			t.Errorf("after SIGTERM an instance exited %d:\n%s", code, i.p.Output())
		}
	}
	records := 0
	for _, v := range visible {
		records += len(v)
	}
	t.Logf("FIGURES tenants_spread: tenants=%d records=%d owned_by_3=%v owned_by_2_after_kill=%v (all owned %s after the kill) owned_after_join=%v worst_latency=%s bound=%s",
		len(ids), records, spread3, spread2, movedAfter.Round(100*time.Millisecond), spreadJoined, worst.Round(time.Millisecond), bound)
}

// published waits until tenant's topic holds key, and reports whether it does.
func (r *tenantsRig) published(t *testing.T, tenant, key string, within time.Duration) bool {
	return e2etest.WaitFor(within, func() bool {
		return e2etest.CountKeys(e2etest.ReadTopic(t, r.brokers, r.topics[tenant]))[key] > 0
	})
}

// TestTenantsReloadOnSIGHUP: SIGHUP reads TENANTS_FILE again, with either store. A tenant added
// starts, a tenant removed stops (its state stays, its series leave /metrics), the tenant kept
// goes on, exactly once; a broken file changes nothing and the log says why.
func TestTenantsReloadOnSIGHUP(t *testing.T) {
	t.Run("file", func(t *testing.T) { reloadOnSIGHUP(t, "file") })
	t.Run("kafka", func(t *testing.T) { reloadOnSIGHUP(t, "kafka") })
}

func reloadOnSIGHUP(t *testing.T, store string) {
	r := newTenantsRig(t, wshotosim.Config{Count: 30, Span: 5 * time.Hour}, "alpha", "beta", "gamma")
	r.write(t, "alpha", "beta")
	addr := e2etest.FreeAddr(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	p := e2etest.StartIn(t, r.dir, r.env(nil, "FOLLOWPUB_POLL_INTERVAL=500ms", "FOLLOWPUB_HTTP_ADDR="+addr, "FOLLOWPUB_STATE_STORE="+store,
		"FOLLOWPUB_STATE_TOPIC=followpub-reload-state-"+suffix, "FOLLOWPUB_GROUP_ID=followpub-reload-"+suffix,
		"FOLLOWPUB_GROUP_SESSION_TIMEOUT=6s"), "run")
	defer func() {
		if !p.Exited() {
			p.Signal(syscall.SIGKILL)
		}
	}()
	for _, id := range []string{"alpha", "beta"} {
		want := r.want(id)
		if !e2etest.WaitFor(20*time.Second, func() bool { return len(e2etest.ReadTopic(t, r.brokers, r.topics[id])) >= len(want) }) {
			t.Fatalf("tenant %s did not publish its records:\n%s", id, p.Output())
		}
	}

	r.write(t, "beta", "gamma")
	p.Signal(syscall.SIGHUP)
	if !e2etest.WaitFor(20*time.Second, func() bool { return len(e2etest.Lines(p.Output(), `"added":["gamma"]`)) > 0 }) {
		t.Fatalf("no reload logged after SIGHUP:\n%s", p.Output())
	}
	want := r.want("gamma")
	if !e2etest.WaitFor(20*time.Second, func() bool { return len(e2etest.ReadTopic(t, r.brokers, r.topics["gamma"])) >= len(want) }) {
		t.Fatalf("the tenant added did not publish its records:\n%s", p.Output())
	}
	r.exactlyOnce(t, "gamma", want)
	gone := r.multi.Tenant("alpha").Insert(time.Now())[0]
	kept := r.multi.Tenant("beta").Insert(time.Now())[0]
	if !r.published(t, "beta", string(kept.Key()), 10*time.Second) {
		t.Fatalf("the tenant kept stopped publishing after the reload:\n%s", p.Output())
	}
	time.Sleep(2 * time.Second) // four poll intervals
	if r.published(t, "alpha", string(gone.Key()), 0) {
		t.Error("the tenant removed still publishes")
	}
	if _, err := os.Stat(filepath.Join(r.dir, "followpub.state.alpha")); err != nil && store == "file" {
		t.Errorf("the removed tenant's state file: %v", err)
	}
	if _, page := e2etest.Get("http://" + addr + "/metrics"); strings.Contains(page, `tenant="alpha"`) || !strings.Contains(page, `tenant="gamma"`) {
		t.Errorf("/metrics after the reload: the removed tenant's series remain, or the added one's are missing")
	}

	if err := os.WriteFile(r.file, []byte("tenants:\n  - id: beta\n    app_secret: inline\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	if !e2etest.WaitFor(10*time.Second, func() bool { return len(e2etest.Lines(p.Output(), "running tenants go on unchanged")) > 0 }) {
		t.Fatalf("a broken file on SIGHUP was not reported:\n%s", p.Output())
	}
	if l := e2etest.Lines(p.Output(), "running tenants go on unchanged")[0]; !strings.Contains(l, "app_secret") {
		t.Errorf("the report does not say what is wrong: %s", l)
	}
	for _, id := range []string{"beta", "gamma"} {
		rec := r.multi.Tenant(id).Insert(time.Now())[0]
		if !r.published(t, id, string(rec.Key()), 10*time.Second) {
			t.Errorf("tenant %s stopped publishing after a broken file was read", id)
		}
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(40 * time.Second); code != 0 {
		t.Fatalf("after SIGTERM followpub exited %d:\n%s", code, p.Output())
	}
	r.exactlyOnce(t, "beta", r.want("beta"))
}

// procStats returns the peak resident set (VmHWM, bytes) and the CPU time (user + system) of pid.
func procStats(t *testing.T, pid int) (peakRSS int64, cpu time.Duration) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			peakRSS = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return peakRSS, time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ = 100
}

// TestTenantsManyInOneProcess measures one process polling many tenants (20; FOLLOWPUB_TEST_TENANTS
// sets another number), each with its own simulated API and topic, at one new record a second
// each, for 15 s (FOLLOWPUB_TEST_TENANTS_FOR sets another duration): peak RSS, CPU seconds per 1,000 records, list requests per tenant per cycle,
// and the visibility-to-publish latency. It asserts what must hold whatever the machine: every
// record published exactly once with ce_tenant. The figures are printed, not asserted.
func TestTenantsManyInOneProcess(t *testing.T) {
	e2etest.Binary(t)
	n, steady := 20, 15*time.Second
	if v, err := strconv.Atoi(os.Getenv("FOLLOWPUB_TEST_TENANTS")); err == nil && v > 0 {
		n = v
	}
	if d, err := time.ParseDuration(os.Getenv("FOLLOWPUB_TEST_TENANTS_FOR")); err == nil && d > 0 {
		steady = d
	}
	const interval = 2 * time.Second
	ids := wshotosim.TenantIDs(n)
	var ts []wshotosim.Tenant
	for _, id := range ids {
		ts = append(ts, wshotosim.Tenant{ID: id, Config: wshotosim.TenantConfig(wshotosim.Config{Count: 1, Span: time.Hour}, id)})
	}
	multi, err := wshotosim.NewMulti(ts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(multi)
	defer srv.Close()
	r := &tenantsRig{multi: multi, url: srv.URL, brokers: kafkatest.Brokers(t), topics: map[string]string{},
		start: time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second), dir: t.TempDir()}
	r.file = filepath.Join(r.dir, "tenants.yaml")
	var b strings.Builder
	b.WriteString("tenants:\n")
	for _, id := range ids {
		r.topics[id] = kafkatest.Topic(t, r.brokers, 1)
		fmt.Fprintf(&b, "  - id: %s\n    access_token_env: TOKEN_%s\n    topic: %s\n", id, strings.ToUpper(id), r.topics[id])
	}
	if err := os.WriteFile(r.file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, id := range ids {
		_, _, token := wshotosim.TenantCredentials(id)
		extra = append(extra, "TOKEN_"+strings.ToUpper(id)+"="+token)
	}
	addr := e2etest.FreeAddr(t)
	extra = append(extra, "FOLLOWPUB_POLL_INTERVAL="+interval.String(), "FOLLOWPUB_HTTP_ADDR="+addr, "FOLLOWPUB_LOG_LEVEL=warn")
	p := e2etest.Start(t, r.env(nil, extra...), "run")
	if !e2etest.WaitFor(60*time.Second, func() bool { c, _ := e2etest.Get("http://" + addr + "/readyz"); return c == 200 }) {
		t.Fatalf("never ready:\n%s", p.Output())
	}
	time.Sleep(2 * interval) // every tenant past its first cycle
	_, cpu0 := procStats(t, p.Pid())
	_, page0 := e2etest.Get("http://" + addr + "/metrics")
	visible := map[string]map[string]time.Time{}
	for _, id := range ids {
		visible[id] = map[string]time.Time{}
	}
	began := time.Now()
	for time.Since(began) < steady {
		tick := time.Now()
		for _, id := range ids {
			rec := multi.Tenant(id).Insert(time.Now())[0]
			visible[id][string(rec.Key())] = time.Now()
		}
		time.Sleep(time.Second - time.Since(tick))
	}
	time.Sleep(3 * interval)
	peak, cpu1 := procStats(t, p.Pid())
	_, page1 := e2etest.Get("http://" + addr + "/metrics")
	var lats []time.Duration
	records := 0
	for _, id := range ids {
		want := r.want(id)
		r.exactlyOnce(t, id, want)
		for _, m := range e2etest.ReadTopic(t, r.brokers, r.topics[id]) {
			if v, ok := visible[id][string(m.Key)]; ok {
				lats = append(lats, m.Time.Sub(v))
				records++
			}
		}
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(40 * time.Second); code != 0 {
		t.Fatalf("after SIGTERM followpub exited %d:\n%s", code, p.Output())
	}
	slices.Sort(lats)
	delta := func(name string, labels map[string]string) float64 {
		return series(page1, name, labels) - series(page0, name, labels)
	}
	cycles := delta("followpub_cycles_total", map[string]string{"result": "ok"})
	requests := delta("followpub_api_requests_total", map[string]string{"endpoint": "listForSystem"})
	failed := delta("followpub_cycles_total", map[string]string{"result": "failed"})
	var warnings []string
	for _, l := range e2etest.JSONLines(t, p.Output()) {
		if l["level"] == "WARN" || l["level"] == "ERROR" {
			warnings = append(warnings, fmt.Sprintf("%v %v: %v", l["tenant"], l["msg"], l["err"]))
		}
	}
	t.Logf("FIGURES tenants_many: tenants=%d interval=%s records=%d peak_rss_mib=%.1f cpu_s_per_1000_records=%.3f list_requests_per_tenant_cycle=%.2f cycles_ok=%.0f cycles_failed=%.0f warnings=%d latency_p50=%s p99=%s max=%s",
		n, interval, records, float64(peak)/(1<<20), (cpu1-cpu0).Seconds()*1000/float64(max(records, 1)), requests/max(cycles, 1), cycles, failed, len(warnings),
		lats[len(lats)/2].Round(time.Millisecond), lats[len(lats)*99/100].Round(time.Millisecond), lats[len(lats)-1].Round(time.Millisecond))
	for _, w := range warnings[:min(len(warnings), 5)] {
		t.Logf("warning: %s", w)
	}
}
