package wshoto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/clocktest"
	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/schema"
)

var _ poller.Source = (*Client)(nil)

var shanghai = schema.APILocation()

// testNow is the simulators' "now": 2024-02-07 12:00 in Shanghai.
var testNow = time.Date(2024, 2, 7, 12, 0, 0, 0, shanghai)

// newSim starts a simulator over real HTTP. The zero Clock is a fake clock at testNow.
func newSim(t *testing.T, cfg wshotosim.Config, wrap ...func(http.Handler) http.Handler) (*wshotosim.Server, *httptest.Server) {
	t.Helper()
	if cfg.Clock == nil {
		clk := clocktest.New(testNow)
		cfg.Clock = clk.Now
	}
	if cfg.Span == 0 {
		cfg.Span = 72 * time.Hour
	}
	if cfg.Count == 0 {
		cfg.Count = 300
	}
	sim, err := wshotosim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = sim
	for _, w := range wrap {
		h = w(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return sim, srv
}

// newClient returns a client of srv with fast retries; mod adjusts the config.
func newClient(t *testing.T, srv *httptest.Server, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		BaseURL: srv.URL, AppID: "sim-app", AppSecret: "sim-secret",
		PageSize: 20, Timeout: 2 * time.Second, RateLimit: -1,
		BaseBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, MaxElapsed: 20 * time.Second,
		MaxReads: 8,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// window is the three days of the default simulator, as the poller asks for them.
var (
	winFrom = time.Date(2024, 2, 4, 0, 0, 0, 0, shanghai)
	winTo   = time.Date(2024, 2, 7, 0, 0, 0, 0, shanghai)
)

// sameRecords fails unless got holds each record of want once, byte for byte, and nothing else.
func sameRecords(t *testing.T, got, want []schema.Record) {
	t.Helper()
	byID := make(map[int64]schema.Record, len(got))
	for _, r := range got {
		if _, dup := byID[r.ID]; dup {
			t.Errorf("id %d returned twice", r.ID)
		}
		byID[r.ID] = r
	}
	for _, w := range want {
		g, ok := byID[w.ID]
		if !ok {
			t.Errorf("record %d (follow_time %d) lost", w.ID, w.FollowTime)
			continue
		}
		if g.FollowTime != w.FollowTime || !bytes.Equal(g.Raw, w.Raw) {
			t.Errorf("record %d differs:\n got %d %s\nwant %d %s", w.ID, g.FollowTime, g.Raw, w.FollowTime, w.Raw)
		}
		delete(byID, w.ID)
	}
	for id := range byID {
		t.Errorf("record %d returned but not in the window", id)
	}
}

func TestFetchMatchesSimulatorInEveryOrder(t *testing.T) {
	for _, order := range []string{wshotosim.OrderNewest, wshotosim.OrderOldest, wshotosim.OrderShuffled} {
		for _, size := range []int{7, 100} {
			t.Run(fmt.Sprintf("%s/page_size=%d", order, size), func(t *testing.T) {
				sim, srv := newSim(t, wshotosim.Config{Order: order})
				c := newClient(t, srv, func(c *Config) { c.PageSize = size })
				got, err := c.Fetch(context.Background(), winFrom, winTo)
				if err != nil {
					t.Fatal(err)
				}
				want := sim.VisibleDays(winFrom, winTo)
				if len(want) < 250 {
					t.Fatalf("simulator window has only %d records", len(want))
				}
				sameRecords(t, got, want)
			})
		}
	}
}

func TestFetchWindowDaysAreInclusiveInShanghai(t *testing.T) {
	sim, srv := newSim(t, wshotosim.Config{Count: -1})
	midnight := time.Date(2024, 2, 6, 0, 0, 0, 0, shanghai)
	sim.Insert(midnight.Add(-time.Millisecond), midnight, midnight.Add(24*time.Hour-time.Millisecond), midnight.Add(24*time.Hour))
	c := newClient(t, srv, nil)
	// The poller passes midnights in the API zone; a UTC time on the same instant must give the
	// same dates.
	got, err := c.Fetch(context.Background(), midnight.UTC(), midnight.UTC())
	if err != nil {
		t.Fatal(err)
	}
	want := sim.VisibleDays(midnight, midnight)
	if len(want) != 2 {
		t.Fatalf("simulator says %d records on 2024-02-06; want 2 (00:00:00.000 and 23:59:59.999)", len(want))
	}
	sameRecords(t, got, want)
}

func TestFetchRecoversFromEveryFault(t *testing.T) {
	tests := []struct {
		fault wshotosim.Fault
		n     int
	}{
		{wshotosim.FaultHTTP500, 3},
		{wshotosim.FaultHTTP429, 3},
		{wshotosim.FaultMalformed, 5}, // MaxAttempts is 6: five malformed answers in a row, then success
		{wshotosim.FaultCode3, 3},
		{wshotosim.FaultHang, 2},
		{wshotosim.FaultAuth, 1}, // renewed and retried once; two in a row fail the call by design
	}
	for _, tt := range tests {
		t.Run(string(tt.fault), func(t *testing.T) {
			sim, srv := newSim(t, wshotosim.Config{})
			m := &fakeMetrics{}
			c := newClient(t, srv, func(c *Config) {
				c.Timeout = 150 * time.Millisecond
				c.Metrics = m
			})
			sim.FailNext(tt.fault, tt.n)
			got, err := c.Fetch(context.Background(), winFrom, winTo)
			if err != nil {
				t.Fatal(err)
			}
			sameRecords(t, got, sim.VisibleDays(winFrom, winTo))
			st := sim.Stats()
			if st.Faults[tt.fault] != int64(tt.n) {
				t.Errorf("simulator injected %d %s faults; want %d", st.Faults[tt.fault], tt.fault, tt.n)
			}
			wantTokens := int64(1)
			if tt.fault == wshotosim.FaultAuth {
				wantTokens = 2
			}
			if st.TokensIssued != wantTokens {
				t.Errorf("%d tokens issued; want %d", st.TokensIssued, wantTokens)
			}
			outcome := map[wshotosim.Fault]string{
				wshotosim.FaultHTTP500: OutcomeHTTP5xx, wshotosim.FaultHTTP429: OutcomeHTTP429,
				wshotosim.FaultMalformed: OutcomeMalformed, wshotosim.FaultCode3: OutcomeAPIError,
				wshotosim.FaultHang: OutcomeTimeout, wshotosim.FaultAuth: OutcomeAuthError,
			}[tt.fault]
			if got := m.count("listForSystem", outcome); got != tt.n {
				t.Errorf("metrics saw %d %s outcomes; want %d", got, outcome, tt.n)
			}
		})
	}
}

func TestFetchRecoversFromRandomFaultMix(t *testing.T) {
	sim, srv := newSim(t, wshotosim.Config{
		Order:         wshotosim.OrderShuffled,
		FaultsOnToken: true,
		Faults:        wshotosim.Faults{HTTP500: 0.05, HTTP429: 0.05, Malformed: 0.05, Code3: 0.05, Hang: 0.02},
	})
	c := newClient(t, srv, func(c *Config) { c.Timeout = 100 * time.Millisecond; c.MaxAttempts = 10 })
	for range 3 {
		got, err := c.Fetch(context.Background(), winFrom, winTo)
		if err != nil {
			t.Fatal(err)
		}
		sameRecords(t, got, sim.VisibleDays(winFrom, winTo))
	}
	var faults int64
	for _, n := range sim.Stats().Faults {
		faults += n
	}
	if faults == 0 {
		t.Error("no fault was injected: the test proves nothing")
	}
}

// dropFirst closes the connection without an answer for the first n list requests.
func dropFirst(n int64) func(http.Handler) http.Handler {
	var seen atomic.Int64
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == wshotosim.ListPath && seen.Add(1) <= n {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					_ = conn.Close()
				}
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestFetchRecoversFromDroppedConnections(t *testing.T) {
	sim, srv := newSim(t, wshotosim.Config{}, dropFirst(3))
	m := &fakeMetrics{}
	c := newClient(t, srv, func(c *Config) { c.Metrics = m })
	got, err := c.Fetch(context.Background(), winFrom, winTo)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, sim.VisibleDays(winFrom, winTo))
	if n := m.count("listForSystem", OutcomeConn); n != 3 {
		t.Errorf("metrics saw %d conn_error outcomes; want 3", n)
	}
}

func TestFetchGivesUpWithinBounds(t *testing.T) {
	sim, srv := newSim(t, wshotosim.Config{})
	c := newClient(t, srv, func(c *Config) { c.MaxAttempts = 3 })
	sim.FailNext(wshotosim.FaultHTTP500, 100)
	_, err := c.Fetch(context.Background(), winFrom, winTo)
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 500 || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("error %v; want a StatusError 500 after 3 attempts", err)
	}
	if n := sim.Stats().Requests["listForSystem"]; n != 3 {
		t.Errorf("%d list requests; want 3", n)
	}

	// Bounded in time too: MaxElapsed stops retries that MaxAttempts would allow.
	c = newClient(t, srv, func(c *Config) {
		c.MaxAttempts = 1000
		c.BaseBackoff, c.MaxBackoff, c.MaxElapsed = 20*time.Millisecond, 20*time.Millisecond, 100*time.Millisecond
	})
	_, err = c.Fetch(context.Background(), winFrom, winTo)
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "giving up") {
		t.Fatalf("error %v; want giving up on the time bound", err)
	}

	// The caller's context ends the retries at once.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c = newClient(t, srv, func(c *Config) { c.MaxAttempts = 1000; c.BaseBackoff = 10 * time.Millisecond })
	if _, err := c.Fetch(ctx, winFrom, winTo); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v; want the caller's deadline", err)
	}
}

func TestFixedToken(t *testing.T) {
	sim, srv := newSim(t, wshotosim.Config{StaticToken: "fixed-token"})
	c := newClient(t, srv, func(c *Config) { c.AccessToken = "fixed-token"; c.AppID, c.AppSecret = "", "" })
	got, err := c.Fetch(context.Background(), winFrom, winTo)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, sim.VisibleDays(winFrom, winTo))
	if n := sim.Stats().TokensIssued; n != 0 {
		t.Errorf("%d tokens fetched with a fixed token", n)
	}

	c = newClient(t, srv, func(c *Config) { c.AccessToken = "wrong-token" })
	before := sim.Stats().Requests["listForSystem"]
	_, err = c.ListPage(context.Background(), winFrom, winTo, 1)
	if !errors.Is(err, ErrTokenRejected) {
		t.Fatalf("error %v; want ErrTokenRejected", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != wshotosim.CodeTokenInvalid {
		t.Errorf("error %v; want the API's code %d", err, wshotosim.CodeTokenInvalid)
	}
	if n := sim.Stats().Requests["listForSystem"] - before; n != 1 {
		t.Errorf("a rejected fixed token was sent %d times; want once", n)
	}
}

func TestTokenRenewalIsSharedUnderConcurrency(t *testing.T) {
	clk := clocktest.New(testNow)
	sim, srv := newSim(t, wshotosim.Config{Clock: clk.Now, TokenTTL: 100 * time.Second, Latency: 10 * time.Millisecond})
	c := newClient(t, srv, func(c *Config) { c.Now = clk.Now; c.Concurrency = 16 })
	ctx := context.Background()

	parallel := func(n int, f func() error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() { errs <- f() })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	listPage := func() error { _, err := c.ListPage(ctx, winFrom, winTo, 2); return err }
	tokens := func() int64 { return sim.Stats().TokensIssued }

	// First use: 32 callers at once, one token request.
	parallel(32, func() error { _, err := c.Token(ctx); return err })
	if n := tokens(); n != 1 {
		t.Fatalf("%d tokens issued to 32 concurrent first callers; want 1", n)
	}
	parallel(32, listPage)
	if n := tokens(); n != 1 {
		t.Fatalf("%d tokens issued while the first is valid; want 1", n)
	}

	// Before create_at + expires_in runs out (100s; renewal a fifth before): one renewal.
	clk.Add(85 * time.Second)
	parallel(32, listPage)
	if n := tokens(); n != 2 {
		t.Fatalf("%d tokens issued after 85s of a 100s token; want 2", n)
	}
	if r := sim.Stats().Rejected; r["token_expired"] != 0 {
		t.Errorf("the client used an expired token %d times", r["token_expired"])
	}

	// Expired early: every concurrent page is refused, one renewal serves them all.
	sim.ExpireTokens()
	parallel(32, listPage)
	if n := tokens(); n != 3 {
		t.Fatalf("%d tokens issued after the API expired them early; want 3", n)
	}
	if r := sim.Stats().Rejected["token_revoked"]; r < 1 {
		t.Errorf("the simulator refused no token: the test proves nothing")
	}

	// Past expiry without warning (the client's clock is not consulted for validity): the auth code
	// path renews once more.
	got, err := c.Fetch(ctx, winFrom, winTo)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, sim.VisibleDays(winFrom, winTo))
}

func TestPagingUnderInsertsLosesNothing(t *testing.T) {
	for _, order := range []string{wshotosim.OrderNewest, wshotosim.OrderOldest, wshotosim.OrderShuffled} {
		t.Run(order, func(t *testing.T) {
			sim, srv := newSim(t, wshotosim.Config{Order: order, InsertBetweenPages: 1, InsertLimit: 4})
			c := newClient(t, srv, nil)
			before := sim.VisibleDays(winFrom, winTo)
			got, err := c.Fetch(context.Background(), winFrom, winTo)
			if err != nil {
				t.Fatal(err)
			}
			after := sim.VisibleDays(winFrom, winTo)
			st := sim.Stats()
			if st.Added != 4 {
				t.Fatalf("%d records inserted between pages; want 4", st.Added)
			}
			pages := int64((len(before) + 19) / 20)
			if st.Requests["listForSystem"] <= pages {
				t.Errorf("%d list requests for %d pages: the window was not read again", st.Requests["listForSystem"], pages)
			}
			// Everything present for the whole call is returned; nothing returned is made up.
			inAfter := make(map[int64]bool, len(after))
			for _, r := range after {
				inAfter[r.ID] = true
			}
			gotIDs := make(map[int64]bool, len(got))
			for _, r := range got {
				if gotIDs[r.ID] {
					t.Errorf("id %d twice", r.ID)
				}
				gotIDs[r.ID] = true
				if !inAfter[r.ID] {
					t.Errorf("id %d is not in the API", r.ID)
				}
			}
			for _, r := range before {
				if !gotIDs[r.ID] {
					t.Errorf("record %d lost", r.ID)
				}
			}
			// The inserts all happened during the call, and a consistent read came after the last
			// of them (the last read had no insert): so everything is there.
			sameRecords(t, got, after)
		})
	}
}

func TestPagingGivesUpOnAPageSetThatNeverSettles(t *testing.T) {
	// More than a page of records (page size 20) lands anywhere in the window after every page
	// served: neither a concurrent read nor an in-order one can vouch for the set.
	_, srv := newSim(t, wshotosim.Config{InsertBetweenPages: 25})
	c := newClient(t, srv, func(c *Config) { c.MaxReads = 3 })
	_, err := c.Fetch(context.Background(), winFrom, winTo)
	if !errors.Is(err, ErrInconsistentPages) || !strings.Contains(err.Error(), "after 3 reads") {
		t.Fatalf("error %v; want ErrInconsistentPages after 3 reads", err)
	}
}

// lyingTotal answers a total of 100000 with full pages except a short page 2.
func lyingTotal(requests *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		var req struct {
			CurrentIndex int `json:"current_index"`
			PageSize     int `json:"page_size"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		n := req.PageSize
		if req.CurrentIndex == 2 {
			n = 3
		}
		var recs []string
		for i := range n {
			recs = append(recs, fmt.Sprintf(`{"id":%d,"follow_time":1}`, req.CurrentIndex*1000+i))
		}
		fmt.Fprintf(w, `{"code":0,"data":{"total":100000,"records":[%s]}}`, strings.Join(recs, ","))
	})
}

func TestPagingStopsOnAShortPage(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(lyingTotal(&requests))
	defer srv.Close()
	c := newClient(t, srv, func(c *Config) { c.AccessToken = "t"; c.MaxReads = 2; c.PageSize = 10 })
	_, err := c.Fetch(context.Background(), winFrom, winTo)
	if !errors.Is(err, ErrInconsistentPages) || !strings.Contains(err.Error(), "short page 2") {
		t.Fatalf("error %v; want ErrInconsistentPages for short page 2", err)
	}
	// Two reads that stop soon after page 2 (pages already handed out still complete), not two
	// reads of 10000 pages.
	if n := requests.Load(); n > 100 {
		t.Errorf("%d requests: paging did not stop at the short page", n)
	}
}

func TestFiltersReachTheBody(t *testing.T) {
	sim, srv := newSim(t, wshotosim.Config{})
	one := 1
	c := newClient(t, srv, func(c *Config) {
		c.Filter = Filter{
			TargetType: &one, TargetIDs: []string{"t1", "t2"}, IDs: []string{"9007199254740993"},
			FollowUserIDs: []string{"wx_lina"}, FollowDepIDs: []int64{1001, 1002}, Title: "客户状态变更",
		}
	})
	// 2024-02-05T16:00Z is 2024-02-06 00:00 in Shanghai: the dates must be Shanghai's.
	from := time.Date(2024, 2, 5, 16, 0, 0, 0, time.UTC)
	if _, err := c.Fetch(context.Background(), from, from.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	bodies := sim.ListBodies()
	if len(bodies) == 0 {
		t.Fatal("no list request reached the simulator")
	}
	want := `{"target_type":1,"target_id_list":["t1","t2"],"id_list":["9007199254740993"],` +
		`"follow_user_ids":["wx_lina"],"follow_dep_ids":[1001,1002],"title":"客户状态变更",` +
		`"follow_time_start":"2024-02-06","follow_time_end":"2024-02-07","current_index":1,"page_size":20}`
	var gotV, wantV any
	dec := json.NewDecoder(bytes.NewReader(bodies[0]))
	dec.UseNumber()
	if err := dec.Decode(&gotV); err != nil {
		t.Fatal(err)
	}
	dec = json.NewDecoder(strings.NewReader(want))
	dec.UseNumber()
	_ = dec.Decode(&wantV)
	if !reflect.DeepEqual(gotV, wantV) {
		t.Errorf("list body\n got %s\nwant %s", bodies[0], want)
	}
}

func TestFiltersSelectRecords(t *testing.T) {
	sim, srv := newSim(t, wshotosim.Config{})
	c := newClient(t, srv, func(c *Config) {
		c.Filter = Filter{Title: "线索分配", FollowUserIDs: []string{"wx_lina", "wx_zhangwei"}}
	})
	got, err := c.Fetch(context.Background(), winFrom, winTo)
	if err != nil {
		t.Fatal(err)
	}
	var want []schema.Record
	for _, r := range sim.VisibleDays(winFrom, winTo) {
		var f struct {
			Title        string `json:"title"`
			FollowUserID string `json:"follow_user_id"`
		}
		_ = json.Unmarshal(r.Raw, &f)
		if f.Title == "线索分配" && (f.FollowUserID == "wx_lina" || f.FollowUserID == "wx_zhangwei") {
			want = append(want, r)
		}
	}
	if len(want) == 0 {
		t.Fatal("no record matches the filter: the test proves nothing")
	}
	sameRecords(t, got, want)
}

func TestBigIDsSurviveByteForByte(t *testing.T) {
	sim, srv := newSim(t, wshotosim.Config{})
	ft := time.Date(2024, 2, 5, 9, 30, 0, 0, shanghai).UnixMilli()
	err := sim.Add(
		wshotosim.Record{ID: 9223372036854775807, FollowTime: ft, CreateTime: ft, Content: "最大的id", Extra: `"ext_score":12.50,"ratio":1.0E2,"big":123456789012345678901234567890`},
		wshotosim.Record{ID: 9007199254740993, FollowTime: ft, CreateTime: ft, Content: "2^53+1", Extra: `"ext":{"v":-0.0,"s":"\u00e9\/"}`},
	)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, nil)
	got, err := c.Fetch(context.Background(), winFrom, winTo)
	if err != nil {
		t.Fatal(err)
	}
	want := sim.VisibleDays(winFrom, winTo)
	sameRecords(t, got, want)
	var big int
	for _, r := range got {
		if r.ID > 1<<53 {
			big++
			if !bytes.Contains(r.Raw, []byte(fmt.Sprintf(`"id":%d,`, r.ID))) {
				t.Errorf("id %d not in its raw bytes %s", r.ID, r.Raw)
			}
		}
	}
	if big < 3 {
		t.Errorf("%d records above 2^53; want the two added and some generated", big)
	}
}

func TestRequestsInFlightAreBounded(t *testing.T) {
	var inFlight, peak atomic.Int64
	track := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			h.ServeHTTP(w, r)
		})
	}
	_, srv := newSim(t, wshotosim.Config{Latency: 15 * time.Millisecond}, track)
	c := newClient(t, srv, func(c *Config) { c.Concurrency = 3; c.PageSize = 10 })
	if _, err := c.Fetch(context.Background(), winFrom, winTo); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak of %d requests in flight; want 2–3 with Concurrency 3", p)
	}
}

func TestRateLimit(t *testing.T) {
	_, srv := newSim(t, wshotosim.Config{StaticToken: "fixed"})
	c := newClient(t, srv, func(c *Config) { c.AccessToken = "fixed"; c.RateLimit = 20 })
	start := time.Now()
	for i := range 6 {
		if _, err := c.ListPage(context.Background(), winFrom, winTo, i+1); err != nil {
			t.Fatal(err)
		}
	}
	// Six requests at 20/s with a burst of one: at least five intervals of 50ms.
	if d := time.Since(start); d < 240*time.Millisecond {
		t.Errorf("6 requests at 20/s took %v", d)
	}
}

func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	const appSecret = "app-SECRET-4f1c"
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// Record every token the simulator issues, to look for them later.
	var mu sync.Mutex
	var tokens []string
	capture := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tok := r.URL.Query().Get("access_token"); tok != "" {
				mu.Lock()
				tokens = append(tokens, tok)
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	}
	sim, srv := newSim(t, wshotosim.Config{AppSecret: appSecret, FaultsOnToken: true}, capture)
	var errs []error
	client := func(mod func(*Config)) *Client {
		return newClient(t, srv, func(c *Config) {
			c.AppSecret, c.Logger, c.Timeout, c.MaxAttempts = appSecret, logger, 100*time.Millisecond, 2
			if mod != nil {
				mod(c)
			}
		})
	}
	ctx := context.Background()

	// Faults on the list call with a fetched token: timeouts, 500, malformed, code 3.
	c := client(nil)
	if _, err := c.Token(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []wshotosim.Fault{wshotosim.FaultHang, wshotosim.FaultHTTP500, wshotosim.FaultMalformed, wshotosim.FaultCode3} {
		sim.FailNext(f, 2)
		_, err := c.ListPage(ctx, winFrom, winTo, 1)
		errs = append(errs, err)
	}
	// Faults on the token call (its URL holds the app secret).
	sim.FailNext(wshotosim.FaultHang, 2)
	_, err := client(nil).Token(ctx)
	errs = append(errs, err)
	// A wrong secret.
	_, err = client(func(c *Config) { c.AppSecret = appSecret + "-wrong" }).Token(ctx)
	errs = append(errs, err)

	// Connection refused, with a fixed token and with credentials.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	_ = ln.Close()
	const fixed = "fixed-SECRET-token-9a7e"
	c = client(func(c *Config) { c.BaseURL = dead; c.AccessToken = fixed })
	_, err = c.ListPage(ctx, winFrom, winTo, 1)
	errs = append(errs, err)
	_, err = client(func(c *Config) { c.BaseURL = dead }).Token(ctx)
	errs = append(errs, err)

	// A server that echoes the token in its message.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"code":3,"msg":"bad token %s"}`, r.URL.Query().Get("access_token"))
	}))
	defer echo.Close()
	_, err = newClient(t, echo, func(c *Config) { c.AccessToken = fixed; c.Logger = logger; c.MaxAttempts = 2 }).ListPage(ctx, winFrom, winTo, 1)
	errs = append(errs, err)

	mu.Lock()
	secrets := append([]string{appSecret, fixed}, tokens...)
	mu.Unlock()
	if len(tokens) == 0 {
		t.Fatal("no token was used: the test proves nothing")
	}
	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		for _, s := range secrets {
			for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%v", errors.Unwrap(err))} {
				if strings.Contains(text, s) {
					t.Errorf("case %d: error reveals a secret: %s", i, text)
				}
			}
		}
	}
	if !strings.Contains(errs[6].Error(), "access_token=REDACTED") {
		t.Errorf("connection error %q does not show the redacted URL", errs[6])
	}
	if logs.Len() == 0 {
		t.Fatal("nothing was logged: the test proves nothing")
	}
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("a log line reveals secret %q", s)
		}
	}
}

// fakeMetrics counts observations.
type fakeMetrics struct {
	mu       sync.Mutex
	outcomes map[string]int
	renewed  int
}

func (m *fakeMetrics) ObserveRequest(endpoint, outcome string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.outcomes == nil {
		m.outcomes = map[string]int{}
	}
	m.outcomes[endpoint+"/"+outcome]++
}

func (m *fakeMetrics) TokenRenewed() {
	m.mu.Lock()
	m.renewed++
	m.mu.Unlock()
}

func (m *fakeMetrics) count(endpoint, outcome string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.outcomes[endpoint+"/"+outcome]
}

func TestBodyOverTheCapIsMalformed(t *testing.T) {
	_, srv := newSim(t, wshotosim.Config{})
	m := &fakeMetrics{}
	c := newClient(t, srv, func(c *Config) { c.MaxBodySize = 1000; c.MaxAttempts = 2; c.Metrics = m })
	_, err := c.ListPage(context.Background(), winFrom, winTo, 1)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "1000-byte limit") {
		t.Fatalf("error %v; want ErrMalformed naming the limit", err)
	}
	if n := m.count("listForSystem", OutcomeMalformed); n != 2 {
		t.Errorf("%d malformed outcomes; want 2 (retried)", n)
	}
}
