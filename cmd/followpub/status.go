package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
	"github.com/followpub/followpub/schema"
)

// statusDoc is what GET /status answers, in the spirit of Kafka Connect's
// GET /connectors/{name}/status: the instance, and per tenant its owner, state, last cycle and lag.
type statusDoc struct {
	Instance instanceDoc `json:"instance"`
	// Generation is the consumer-group generation with STATE_STORE=kafka; null with one process.
	Generation *int64      `json:"generation"`
	Tenants    []tenantDoc `json:"tenants"`
}

type instanceDoc struct {
	ID        string `json:"id"` // instanceName: FOLLOWPUB_INSTANCE_ID, or host/pid
	Hostname  string `json:"hostname"`
	PID       int    `json:"pid"`
	Version   string `json:"version"`
	StartedAt string `json:"started_at"`
}

type tenantDoc struct {
	Tenant string `json:"tenant"`
	// Owner is the id of the instance that polls the tenant; empty on a standby (status STANDBY),
	// where `watermark show` names the owner.
	Owner string `json:"owner"`
	// Status is STARTING (no cycle ended yet), RUNNING (the last cycle completed) or FAILING.
	Status string `json:"status"`
	// Ready is what /readyz answers: a cycle completed within the last three poll intervals.
	Ready bool `json:"ready"`
	// State is the state as `followpub watermark show` prints it, read after the last cycle
	// ended (AsOf); nil until it could be read.
	State *stateDoc `json:"state"`
	// StateError says why the state could not be read, if it could not.
	StateError string `json:"state_error,omitempty"`
	// LastCycle is the last cycle that ended; nil before the first.
	LastCycle *cycleDoc `json:"last_cycle"`
	// LastSuccess is when a cycle last completed; empty before the first.
	LastSuccess string `json:"last_success,omitempty"`
	// LagSeconds is now minus the watermark.
	LagSeconds float64 `json:"lag_seconds"`
}

type stateDoc struct {
	poller.Status
	AsOf string `json:"as_of"`
}

type cycleDoc struct {
	Result          string  `json:"result"` // ok, failed or interrupted
	EndedAt         string  `json:"ended_at"`
	DurationSeconds float64 `json:"duration_seconds"`
	Fetched         int     `json:"fetched"`
	Published       int     `json:"published"`
	Duplicates      int     `json:"duplicates"`
	Late            int     `json:"late"`
	// Error says what failed, from what the API client and the publisher reported during the
	// cycle; the log line "cycle failed; retrying" has the poller's own words.
	Error string `json:"error,omitempty"`
}

// stateReader is what /status reads the tenant through: its poller's state, and this
// instance's standing (ready, and with STATE_STORE=kafka its generation and whether it owns the
// tenant).
type stateReader interface {
	Status(ctx context.Context) (poller.Status, error)
	Membership() membership
}

// membership is an instance's standing for /status.
type membership struct {
	Ready bool
	// Generation is the group generation with STATE_STORE=kafka; nil with one process.
	Generation *int64
	// Standby is true when, with STATE_STORE=kafka, another instance owns the tenant.
	Standby bool
}

// statusTracker keeps what /status shows of one tenant. It sits between the tenant's components
// and its metrics: each
// hook passes through to the metrics and counts what the current cycle did, and the state is
// read again after every cycle (the poller holds its lock for a whole cycle, so /status never
// waits on it). It is safe for concurrent use.
type statusTracker struct {
	*tenantMetrics
	instance instanceDoc
	clock    func() time.Time
	refresh  chan struct{} // a cycle ended: read the state again

	mu          sync.Mutex
	cur         cycleDoc // the cycle under way
	apiFailures map[string]int
	kafkaErr    string
	last        *cycleDoc
	lastSuccess time.Time
	watermarkMS int64
	state       *stateDoc
	stateErr    string
}

var (
	_ poller.Metrics    = (*statusTracker)(nil)
	_ wshoto.Metrics    = (*statusTracker)(nil)
	_ publisher.Metrics = (*statusTracker)(nil)
)

// newStatusTracker returns the tracker of the tenant default (schema.DefaultTenant).
func newStatusTracker(m *metrics, clock func() time.Time) *statusTracker {
	return newTenantTracker(m, schema.DefaultTenant, instanceName(&config{}), clock)
}

// newTenantTracker returns the tracker of tenant, feeding its series of m; instance is the
// instance's name (instanceName), as the group and watermark show know it.
func newTenantTracker(m *metrics, tenant, instance string, clock func() time.Time) *statusTracker {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	pid := os.Getpid()
	return &statusTracker{
		tenantMetrics: m.tenant(tenant),
		instance: instanceDoc{ID: instance, Hostname: host, PID: pid, Version: version,
			StartedAt: clock().UTC().Format(time.RFC3339)},
		clock:       clock,
		refresh:     make(chan struct{}, 1),
		apiFailures: map[string]int{},
	}
}

func (t *statusTracker) RecordsFetched(n int) {
	t.tenantMetrics.RecordsFetched(n)
	t.count(func(c *cycleDoc) { c.Fetched += n })
}

func (t *statusTracker) RecordsPublished(n int) {
	t.tenantMetrics.RecordsPublished(n)
	t.count(func(c *cycleDoc) { c.Published += n })
}

func (t *statusTracker) DuplicatesSkipped(n int) {
	t.tenantMetrics.DuplicatesSkipped(n)
	t.count(func(c *cycleDoc) { c.Duplicates += n })
}

func (t *statusTracker) LateDropped(n int) {
	t.tenantMetrics.LateDropped(n)
	t.count(func(c *cycleDoc) { c.Late += n })
}

func (t *statusTracker) count(f func(*cycleDoc)) {
	t.mu.Lock()
	f(&t.cur)
	t.mu.Unlock()
}

func (t *statusTracker) StateCommitted(w time.Time, d time.Duration) {
	t.tenantMetrics.StateCommitted(w, d)
	t.mu.Lock()
	t.watermarkMS = max(t.watermarkMS, w.UnixMilli())
	t.mu.Unlock()
}

func (t *statusTracker) ObserveRequest(endpoint, outcome string, d time.Duration) {
	t.tenantMetrics.ObserveRequest(endpoint, outcome, d)
	if outcome == wshoto.OutcomeOK || outcome == wshoto.OutcomeCanceled {
		return
	}
	t.mu.Lock()
	t.apiFailures[endpoint+" "+outcome]++
	t.mu.Unlock()
}

func (t *statusTracker) ObserveWrite(n int, d time.Duration, err error) {
	t.tenantMetrics.ObserveWrite(n, d, err)
	if err == nil {
		return
	}
	t.mu.Lock()
	t.kafkaErr = fmt.Sprintf("publishing %d records to Kafka: %v", n, err)
	t.mu.Unlock()
}

// CycleDone closes the cycle under way and asks for the state to be read again.
func (t *statusTracker) CycleDone(result string, d time.Duration) {
	t.tenantMetrics.CycleDone(result, d)
	now := t.clock()
	t.mu.Lock()
	c := t.cur
	c.Result, c.EndedAt, c.DurationSeconds = result, now.UTC().Format(time.RFC3339Nano), d.Seconds()
	if result != "ok" {
		c.Error = t.cycleError()
	} else {
		t.lastSuccess = now
	}
	t.last = &c
	t.cur, t.kafkaErr = cycleDoc{}, ""
	clear(t.apiFailures)
	t.mu.Unlock()
	select {
	case t.refresh <- struct{}{}:
	default:
	}
}

// cycleError describes a cycle that did not complete from what failed during it. t.mu is held.
func (t *statusTracker) cycleError() string {
	var parts []string
	if t.kafkaErr != "" {
		parts = append(parts, t.kafkaErr)
	}
	if len(t.apiFailures) > 0 {
		var kinds []string
		for k, n := range t.apiFailures {
			kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
		}
		slices.Sort(kinds)
		parts = append(parts, "API requests failed: "+strings.Join(kinds, ", "))
	}
	if len(parts) == 0 {
		return "neither the API nor Kafka reported an error (the state store, or a shutdown): see the log line \"cycle failed; retrying\""
	}
	return strings.Join(parts, "; ")
}

// watchState reads the state from p now and after every cycle, until ctx is done.
func (t *statusTracker) watchState(ctx context.Context, p stateReader) {
	for {
		st, err := p.Status(ctx)
		t.mu.Lock()
		if err != nil {
			t.stateErr = err.Error()
		} else {
			t.state, t.stateErr = &stateDoc{Status: st, AsOf: t.clock().UTC().Format(time.RFC3339Nano)}, ""
			t.watermarkMS = max(t.watermarkMS, st.WatermarkMS)
		}
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.refresh:
		}
	}
}

// snapshot returns the document /status serves for this tracker's tenant alone.
func (t *statusTracker) snapshot(m membership) statusDoc {
	return statusDoc{Instance: t.instance, Generation: m.Generation, Tenants: []tenantDoc{t.tenantDoc(m)}}
}

// tenantDoc returns what /status shows of the tenant, given its standing m.
func (t *statusTracker) tenantDoc(m membership) tenantDoc {
	now := t.clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	td := tenantDoc{Tenant: t.id, Owner: t.instance.ID, Status: "STARTING", Ready: m.Ready,
		State: t.state, StateError: t.stateErr}
	if m.Standby {
		// Another instance polls the tenant: this one shows what it last knew, and says so.
		td.Owner, td.Status = "", "STANDBY"
	} else if t.last != nil {
		c := *t.last
		td.LastCycle = &c
		td.Status = "RUNNING"
		if c.Result != "ok" {
			td.Status = "FAILING"
		}
	}
	if !t.lastSuccess.IsZero() {
		td.LastSuccess = t.lastSuccess.UTC().Format(time.RFC3339Nano)
	}
	if t.watermarkMS != 0 {
		td.LagSeconds = max(0, now.Sub(time.UnixMilli(t.watermarkMS)).Seconds())
	}
	return td
}

// handleStatus serves GET /status of this tracker's tenant alone.
func (t *statusTracker) handleStatus(p stateReader) http.HandlerFunc {
	return serveStatus(func() statusDoc { return t.snapshot(p.Membership()) })
}

// handlePage serves GET / of this tracker's tenant alone.
func (t *statusTracker) handlePage(p stateReader) http.HandlerFunc {
	return servePage(func() statusDoc { return t.snapshot(p.Membership()) })
}

// serveStatus serves GET /status: the document doc returns.
func serveStatus(doc func() statusDoc) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(doc())
	}
}

// servePage serves GET /: the same as /status, for a person.
func servePage(doc func() statusDoc) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := statusPage.Execute(w, doc()); err != nil {
			http.Error(w, "rendering the status page: "+err.Error(), http.StatusInternalServerError)
		}
	}
}

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"secs": func(s float64) string {
		return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
	},
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>followpub — {{.Instance.ID}}</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
.instance { color: #666; margin-bottom: 1.5em; }
section { border: 1px solid #ddd; border-radius: 6px; padding: 1em 1.4em; margin-bottom: 1.4em; max-width: 56em; }
h2 { font-size: 1.2em; margin: 0 0 .6em; }
table { border-collapse: collapse; }
th { text-align: left; font-weight: normal; color: #666; padding: .15em 1.5em .15em 0; vertical-align: top; }
td { padding: .15em 0; font-family: ui-monospace, monospace; }
.badge { display: inline-block; padding: .1em .6em; border-radius: 4px; color: #fff; font-size: .85em; margin-left: .6em; }
.RUNNING { background: #2e7d32; } .FAILING { background: #c62828; } .STARTING { background: #757575; }
.error { color: #c62828; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>followpub</h1>
<div class="instance">instance <b id="instance">{{.Instance.ID}}</b> · version {{.Instance.Version}} · started {{.Instance.StartedAt}} · generation {{with .Generation}}{{.}}{{else}}none (one process){{end}}</div>
{{range .Tenants}}
<section id="tenant-{{.Tenant}}">
<h2>tenant <span class="tenant">{{.Tenant}}</span><span class="badge {{.Status}}">{{.Status}}</span></h2>
<table>
<tr><th>owner</th><td>{{.Owner}}</td></tr>
<tr><th>ready</th><td>{{if .Ready}}yes{{else}}no: no cycle completed within three poll intervals{{end}}</td></tr>
<tr><th>lag</th><td>{{secs .LagSeconds}}</td></tr>
{{with .State}}
<tr><th>watermark</th><td class="watermark">{{.Watermark}}</td></tr>
<tr><th>floor</th><td>{{.Floor}}</td></tr>
<tr><th>remembered ids</th><td>{{.Seen}}</td></tr>
<tr><th>next window from</th><td>{{.WindowStart}}</td></tr>
<tr><th>state saved</th><td>{{if .UpdatedAt}}{{.UpdatedAt}}{{else}}never: no state yet{{end}}</td></tr>
{{else}}
<tr><th>state</th><td>not read yet</td></tr>
{{end}}
{{with .StateError}}<tr><th>state error</th><td class="error">{{.}}</td></tr>{{end}}
{{with .LastCycle}}
<tr><th>last cycle</th><td class="last-cycle">{{.Result}} at {{.EndedAt}} in {{secs .DurationSeconds}}: {{.Fetched}} fetched, {{.Published}} published, {{.Duplicates}} duplicates, {{.Late}} late</td></tr>
{{with .Error}}<tr><th>error</th><td class="error">{{.}}</td></tr>{{end}}
{{else}}
<tr><th>last cycle</th><td class="last-cycle">none yet</td></tr>
{{end}}
<tr><th>last success</th><td>{{if .LastSuccess}}{{.LastSuccess}}{{else}}none yet{{end}}</td></tr>
</table>
</section>
{{end}}
<p class="instance">JSON: <a href="/status">/status</a> · <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a></p>
</body>
</html>
`))

// cmdStatus prints the /status of a running instance.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	def, set := os.LookupEnv("FOLLOWPUB_HTTP_ADDR")
	if !set {
		def = "127.0.0.1:9464"
	}
	addr := fs.String("addr", def, "host:port of the instance's HTTP endpoint (default FOLLOWPUB_HTTP_ADDR)")
	asJSON := fs.Bool("json", false, "print the JSON document as served")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("status takes no arguments, got %q", fs.Args())
	}
	url, err := statusURL(*addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return usagef("status: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("asking %s (is followpub run serving there? --addr or FOLLOWPUB_HTTP_ADDR): %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	var doc statusDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("%s did not answer a followpub status (%v): is it followpub's HTTP endpoint?", url, err)
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	printStatus(stdout, doc)
	return nil
}

// statusURL turns a listen address into the URL of its /status: an unspecified host (0.0.0.0,
// ::, empty) is asked on loopback.
func statusURL(addr string) (string, error) {
	if addr == "" {
		return "", usagef("status: no address: FOLLOWPUB_HTTP_ADDR is empty (the HTTP endpoint is disabled); pass --addr")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", usagef("status: --addr %q: want host:port (%v)", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/status", nil
}

func printStatus(w io.Writer, doc statusDoc) {
	gen := "none (one process)"
	if doc.Generation != nil {
		gen = fmt.Sprint(*doc.Generation)
	}
	fmt.Fprintf(w, "instance %s (version %s, started %s), generation %s\n", doc.Instance.ID, doc.Instance.Version, doc.Instance.StartedAt, gen)
	for _, td := range doc.Tenants {
		fmt.Fprintf(w, "\ntenant %s: %s, owner %s, ready %v, lag %s\n", td.Tenant, td.Status, td.Owner, td.Ready,
			time.Duration(td.LagSeconds*float64(time.Second)).Round(time.Second))
		if st := td.State; st != nil {
			fmt.Fprintf(w, "  state      watermark %s, floor %s, %d remembered ids, next window from %s (as of %s)\n",
				st.Watermark, st.Floor, st.Seen, st.WindowStart, st.AsOf)
		}
		if td.StateError != "" {
			fmt.Fprintf(w, "  state      could not be read: %s\n", td.StateError)
		}
		if c := td.LastCycle; c != nil {
			fmt.Fprintf(w, "  last cycle %s at %s in %s: %d fetched, %d published, %d duplicates, %d late\n", c.Result, c.EndedAt,
				time.Duration(c.DurationSeconds*float64(time.Second)).Round(time.Millisecond), c.Fetched, c.Published, c.Duplicates, c.Late)
			if c.Error != "" {
				fmt.Fprintf(w, "  error      %s\n", c.Error)
			}
		} else {
			fmt.Fprintln(w, "  last cycle none yet")
		}
	}
}
