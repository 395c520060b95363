package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/tooltest"
	"github.com/followpub/followpub/poller"
)

// fakeState is a stateReader whose answers the test sets.
type fakeState struct {
	mu    sync.Mutex
	st    poller.Status
	err   error
	reads int
	ready bool
}

func (f *fakeState) Status(context.Context) (poller.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.st, f.err
}

func (f *fakeState) Membership() membership {
	f.mu.Lock()
	defer f.mu.Unlock()
	return membership{Ready: f.ready}
}

func (f *fakeState) set(st poller.Status, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st, f.err = st, err
}

func (f *fakeState) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

var statusNow = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)

func sampleState(w time.Time) poller.Status {
	return poller.Status{Exists: true, Watermark: w.Format(time.RFC3339Nano), WatermarkMS: w.UnixMilli(),
		Floor: "2026-12-01T16:00:00Z", Seen: 42, WindowStart: "2026-12-02T16:00:00Z", UpdatedAt: statusNow.Format(time.RFC3339Nano)}
}

// waitReads waits until the fake state was read at least n times.
func waitReads(t *testing.T, f *fakeState, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.readCount() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the state was read %d times, want %d", f.readCount(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// trackerWithCycles returns a tracker that went through one ok cycle and one failed one, its state
// read after each.
func trackerWithCycles(t *testing.T) (*statusTracker, *fakeState) {
	t.Helper()
	tr := newStatusTracker(newMetrics(30*time.Second), func() time.Time { return statusNow })
	fs := &fakeState{ready: true}
	w := statusNow.Add(-90 * time.Second)
	fs.set(sampleState(w), nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go tr.watchState(ctx, fs)
	waitReads(t, fs, 1)

	if d := tr.snapshot(membership{Ready: true}); d.Tenants[0].Status != "STARTING" || d.Tenants[0].LastCycle != nil {
		t.Fatalf("before any cycle: status %q, last cycle %+v; want STARTING, none", d.Tenants[0].Status, d.Tenants[0].LastCycle)
	}
	tr.RecordsFetched(10)
	tr.DuplicatesSkipped(3)
	tr.RecordsPublished(7)
	tr.StateCommitted(w, time.Millisecond)
	tr.ObserveRequest("listForSystem", "ok", time.Millisecond)
	tr.CycleDone("ok", 1500*time.Millisecond)
	waitReads(t, fs, 2)
	return tr, fs
}

// statusServer serves /status and / of a tracker from trackerWithCycles.
func statusServer(t *testing.T) (*statusTracker, *httptest.Server) {
	t.Helper()
	tr, fs := trackerWithCycles(t)
	mux := http.NewServeMux()
	mux.Handle("GET /status", tr.handleStatus(fs))
	mux.Handle("GET /{$}", tr.handlePage(fs))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return tr, srv
}

func TestStatusTracksCyclesAndState(t *testing.T) {
	tr, fs := trackerWithCycles(t)
	d := tr.snapshot(membership{Ready: true})
	if len(d.Tenants) != 1 {
		t.Fatalf("tenants: %+v, want one", d.Tenants)
	}
	td := d.Tenants[0]
	if td.Tenant != "default" || td.Owner != d.Instance.ID || td.Status != "RUNNING" || !td.Ready {
		t.Errorf("tenant %q owner %q (instance %q) status %q ready %v; want default, this instance, RUNNING, ready",
			td.Tenant, td.Owner, d.Instance.ID, td.Status, td.Ready)
	}
	c := td.LastCycle
	if c == nil || c.Result != "ok" || c.Fetched != 10 || c.Published != 7 || c.Duplicates != 3 || c.DurationSeconds != 1.5 || c.Error != "" {
		t.Errorf("last cycle %+v; want ok, 10 fetched, 7 published, 3 duplicates, 1.5 s, no error", c)
	}
	if td.LagSeconds != 90 {
		t.Errorf("lag %v s, want 90", td.LagSeconds)
	}
	if td.State == nil || td.State.Seen != 42 || td.State.Floor != "2026-12-01T16:00:00Z" {
		t.Errorf("state %+v; want the poller's (42 remembered ids)", td.State)
	}
	if d.Generation != nil {
		t.Errorf("generation %v, want null with one process", *d.Generation)
	}

	// A failed cycle: its error comes from what the publisher and the API client reported, and
	// its counts start from zero.
	fs.set(poller.Status{}, errors.New("loading the state: disk on fire"))
	tr.RecordsFetched(4)
	for range 3 {
		tr.ObserveRequest("listForSystem", "http_5xx", time.Millisecond)
	}
	tr.ObserveRequest("access_token", "timeout", time.Millisecond)
	tr.ObserveWrite(4, time.Second, errors.New("kafka: leader not available"))
	tr.CycleDone("failed", 2*time.Second)
	waitReads(t, fs, 3)
	td = tr.snapshot(membership{}).Tenants[0]
	c = td.LastCycle
	if td.Status != "FAILING" || td.Ready || c.Result != "failed" || c.Fetched != 4 || c.Published != 0 {
		t.Errorf("after a failed cycle: status %q ready %v, last cycle %+v; want FAILING, not ready, failed, 4 fetched, 0 published", td.Status, td.Ready, c)
	}
	for _, want := range []string{"publishing 4 records to Kafka: kafka: leader not available", "1 access_token timeout", "3 listForSystem http_5xx"} {
		if !strings.Contains(c.Error, want) {
			t.Errorf("error %q does not say %q", c.Error, want)
		}
	}
	if td.StateError != "loading the state: disk on fire" || td.State == nil {
		t.Errorf("state error %q, state %+v; want the read error, and the last state read kept", td.StateError, td.State)
	}
	if td.LastSuccess != statusNow.Format(time.RFC3339Nano) {
		t.Errorf("last success %q, want the ok cycle's end", td.LastSuccess)
	}

	// The next cycle's error says nothing of the last one's failures.
	tr.CycleDone("failed", time.Second)
	if e := tr.snapshot(membership{}).Tenants[0].LastCycle.Error; strings.Contains(e, "leader not available") || !strings.Contains(e, "cycle failed; retrying") {
		t.Errorf("a failed cycle without API or Kafka errors: error %q; want a pointer to the log and nothing of the last cycle", e)
	}
}

func TestStatusEndpointServesJSON(t *testing.T) {
	_, srv := statusServer(t)
	resp, err := http.Get(srv.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var raw map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if g, ok := raw["generation"]; !ok || g != nil {
		t.Errorf("generation: %v (present %v), want null", g, ok)
	}
	tenant := raw["tenants"].([]any)[0].(map[string]any)
	state := tenant["state"].(map[string]any)
	for _, k := range []string{"watermark", "watermark_ms", "floor", "seen", "window_start", "updated_at", "as_of"} {
		if _, ok := state[k]; !ok {
			t.Errorf("state has no %q: %v", k, state)
		}
	}
	for _, k := range []string{"tenant", "owner", "status", "ready", "last_cycle", "lag_seconds"} {
		if _, ok := tenant[k]; !ok {
			t.Errorf("tenant has no %q: %v", k, tenant)
		}
	}
}

func TestStatusCommand(t *testing.T) {
	_, srv := statusServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")

	var out, errOut bytes.Buffer
	if err := cmdStatus(context.Background(), []string{"--addr", addr}, &out, &errOut); err != nil {
		t.Fatalf("status: %v (%s)", err, errOut.String())
	}
	for _, want := range []string{"tenant default: RUNNING", "ready true", "lag 1m30s", "42 remembered ids",
		"last cycle ok at", "10 fetched, 7 published, 3 duplicates", "generation none"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := cmdStatus(context.Background(), []string{"--addr", addr, "--json"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var doc statusDoc
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || doc.Tenants[0].Tenant != "default" {
		t.Errorf("status --json: %v, %q", err, out.String())
	}

	// Nothing listening: the error says where it asked and how to point it elsewhere.
	ln := strings.TrimPrefix(httptest.NewServer(http.NotFoundHandler()).URL, "http://")
	err := cmdStatus(context.Background(), []string{"--addr", ln}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("status against a server without /status: %v; want the 404 named", err)
	}
	t.Setenv("FOLLOWPUB_HTTP_ADDR", "")
	err = cmdStatus(context.Background(), nil, &out, &errOut)
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "FOLLOWPUB_HTTP_ADDR") {
		t.Errorf("status with the endpoint disabled: %v; want a usage error naming FOLLOWPUB_HTTP_ADDR", err)
	}
}

func TestStatusURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:9464": "http://127.0.0.1:9464/status",
		"0.0.0.0:9464":   "http://127.0.0.1:9464/status",
		"[::]:9464":      "http://127.0.0.1:9464/status",
		":9464":          "http://127.0.0.1:9464/status",
		"[::1]:1":        "http://[::1]:1/status",
		"pod-a:9464":     "http://pod-a:9464/status",
	} {
		if got, err := statusURL(addr); err != nil || got != want {
			t.Errorf("statusURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := statusURL("9464"); err == nil {
		t.Error("statusURL(\"9464\"): want an error")
	}
}

// visibleText is the text a person reads in a rendered document: tags and the head removed,
// entities decoded, whitespace collapsed.
func visibleText(dom string) string {
	dom = regexp.MustCompile(`(?s)<head>.*</head>`).ReplaceAllString(dom, "")
	dom = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(dom, " ")
	return strings.Join(strings.Fields(html.UnescapeString(dom)), " ")
}

// TestStatusPageInBrowser loads / in headless Chromium and reads what it shows. With
// FOLLOWPUB_SCREENSHOT_DIR set, it leaves a screenshot there.
func TestStatusPageInBrowser(t *testing.T) {
	tr, srv := statusServer(t)

	text := visibleText(tooltest.DumpDOM(t, srv.URL+"/"))
	want := sampleState(statusNow.Add(-90 * time.Second))
	for _, s := range []string{
		"tenant default RUNNING",
		"watermark " + want.Watermark,
		"remembered ids 42",
		"last cycle ok at " + statusNow.Format(time.RFC3339Nano) + " in 1.5s: 10 fetched, 7 published, 3 duplicates, 0 late",
		"lag 1m30s",
		"generation none (one process)",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("the page does not show %q; it shows:\n%s", s, text)
		}
	}
	if strings.Contains(text, "{{") || strings.Contains(text, "<no value>") {
		t.Errorf("the page shows template residue:\n%s", text)
	}

	// A failed cycle shows its error.
	tr.ObserveWrite(4, time.Second, errors.New("kafka: leader not available"))
	tr.CycleDone("failed", time.Second)
	text = visibleText(tooltest.DumpDOM(t, srv.URL+"/"))
	for _, s := range []string{"tenant default FAILING", "error publishing 4 records to Kafka: kafka: leader not available"} {
		if !strings.Contains(text, s) {
			t.Errorf("after a failed cycle, the page does not show %q; it shows:\n%s", s, text)
		}
	}
	shot := filepath.Join(t.TempDir(), "status.png")
	if dir := os.Getenv("FOLLOWPUB_SCREENSHOT_DIR"); dir != "" {
		shot = filepath.Join(dir, "status-page-failing.png")
	}
	tooltest.Screenshot(t, srv.URL+"/", shot, 1000, 560)
}

// TestStatusOfAStandby: with STATE_STORE=kafka, an instance that does not own the tenant says so
// (STANDBY, no owner) and shows its generation; the owner shows itself and the generation too.
func TestStatusOfAStandby(t *testing.T) {
	tr := newStatusTracker(newMetrics(time.Second), time.Now)
	tr.CycleDone("ok", time.Second)
	gen := int64(7)
	d := tr.snapshot(membership{Ready: true, Generation: &gen, Standby: true})
	if td := d.Tenants[0]; td.Status != "STANDBY" || td.Owner != "" || !td.Ready {
		t.Errorf("standby: status %q owner %q ready %v, want STANDBY, no owner, ready", td.Status, td.Owner, td.Ready)
	}
	if d.Generation == nil || *d.Generation != 7 {
		t.Errorf("standby: generation %v, want 7", d.Generation)
	}
	d = tr.snapshot(membership{Ready: true, Generation: &gen})
	if td := d.Tenants[0]; td.Status != "RUNNING" || td.Owner != tr.instance.ID {
		t.Errorf("owner: status %q owner %q, want RUNNING and %q", td.Status, td.Owner, tr.instance.ID)
	}
}
