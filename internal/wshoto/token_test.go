package wshoto

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/wshotosim"
)

// authAPI serves the token endpoint and the list endpoint over HTTP. The n-th list request (from 1)
// is answered with code script(n), or an empty page when that is 0. It counts the tokens it issued
// and records the access_token of every list request.
type authAPI struct {
	script func(n int) int

	mu     sync.Mutex
	tokens int      // tokens issued: tok-1, tok-2, …
	used   []string // the access_token of each list request, in order
}

func (a *authAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case wshotosim.TokenPath:
		a.mu.Lock()
		a.tokens++
		n := a.tokens
		a.mu.Unlock()
		fmt.Fprintf(w, `{"code":0,"msg":"ok","data":{"access_token":"tok-%d","expires_in":7200,"create_at":%d}}`, n, time.Now().Unix())
	case wshotosim.ListPath:
		a.mu.Lock()
		a.used = append(a.used, r.URL.Query().Get("access_token"))
		n := len(a.used)
		a.mu.Unlock()
		if code := a.script(n); code != 0 {
			fmt.Fprintf(w, `{"code":%d,"msg":"access_token无效","data":null,"sub_code":"A0001"}`, code)
			return
		}
		fmt.Fprint(w, `{"code":0,"msg":"ok","data":{"total":0,"records":[]},"sub_code":"00000"}`)
	default:
		http.NotFound(w, r)
	}
}

// counts returns the tokens issued and the tokens the list requests carried.
func (a *authAPI) counts() (tokens int, used []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tokens, append([]string(nil), a.used...)
}

// codeFirst answers code to the first n list requests, then succeeds.
func codeFirst(code, n int) func(int) int {
	return func(i int) int {
		if i <= n {
			return code
		}
		return 0
	}
}

func TestTokenRenewedAndRetriedOnlyOnce(t *testing.T) {
	// App credentials against the simulator: a refused token is renewed and the call retried once.
	sim, srv := newSim(t, wshotosim.Config{})
	c := newClient(t, srv, nil)
	ctx := context.Background()
	lists := func() int64 { return sim.Stats().Requests["listForSystem"] }

	sim.FailNext(wshotosim.FaultAuth, 1)
	if _, err := c.ListPage(ctx, winFrom, winTo, 1); err != nil {
		t.Fatalf("one refusal: %v; want the retry with a renewed token to succeed", err)
	}
	if st := sim.Stats(); st.TokensIssued != 2 || lists() != 2 {
		t.Fatalf("one refusal: %d tokens, %d list requests; want 2 and 2", st.TokensIssued, lists())
	}

	// Refused again after the renewal: the call fails at once, without a third token or request.
	sim.FailNext(wshotosim.FaultAuth, 2)
	_, err := c.ListPage(ctx, winFrom, winTo, 1)
	if !errors.Is(err, ErrTokenRejected) || !strings.Contains(err.Error(), "after renewal") {
		t.Fatalf("two refusals: error %v; want ErrTokenRejected after renewal", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != wshotosim.CodeTokenRevoked || !ae.Auth {
		t.Errorf("two refusals: error %v; want the API's auth code %d", err, wshotosim.CodeTokenRevoked)
	}
	if st := sim.Stats(); st.TokensIssued != 3 || lists() != 4 {
		t.Fatalf("two refusals: %d tokens, %d list requests in all; want 3 and 4 (one renewal, one retry)", st.TokensIssued, lists())
	}

	// The limit is per call: the next call uses the renewed token and succeeds.
	if _, err := c.ListPage(ctx, winFrom, winTo, 1); err != nil {
		t.Fatalf("after a rejected call: %v", err)
	}
	if st := sim.Stats(); st.TokensIssued != 3 || lists() != 5 {
		t.Errorf("after a rejected call: %d tokens, %d list requests in all; want 3 and 5", st.TokensIssued, lists())
	}
}

func TestTokenRetryCarriesTheRenewedToken(t *testing.T) {
	// A token refused on every call: one renewal, one retry with the new token, then the error.
	api := &authAPI{script: func(int) int { return 10001 }}
	srv := httptest.NewServer(api)
	defer srv.Close()
	c := newClient(t, srv, nil)
	_, err := c.ListPage(context.Background(), winFrom, winTo, 1)
	if !errors.Is(err, ErrTokenRejected) {
		t.Fatalf("error %v; want ErrTokenRejected", err)
	}
	tokens, used := api.counts()
	if tokens != 2 || strings.Join(used, ",") != "tok-1,tok-2" {
		t.Errorf("%d tokens issued, list requests carried %v; want 2 tokens, [tok-1 tok-2]", tokens, used)
	}

	// The retry after a renewal does not count against MaxAttempts.
	api = &authAPI{script: codeFirst(10010, 1)}
	srv2 := httptest.NewServer(api)
	defer srv2.Close()
	c = newClient(t, srv2, func(c *Config) { c.MaxAttempts = 1 })
	if _, err := c.ListPage(context.Background(), winFrom, winTo, 1); err != nil {
		t.Fatalf("MaxAttempts 1, one refusal: %v; want the retry with a renewed token to succeed", err)
	}
	if tokens, used := api.counts(); tokens != 2 || strings.Join(used, ",") != "tok-1,tok-2" {
		t.Errorf("MaxAttempts 1: %d tokens issued, list requests carried %v; want 2 tokens, [tok-1 tok-2]", tokens, used)
	}
}

func TestAuthErrorCodesDecideWhatRenews(t *testing.T) {
	tests := []struct {
		name       string
		codes      []int // Config.AuthErrorCodes
		answer     int   // the code of the first list answer (then success)
		renews     bool
		wantTokens int
	}{
		{"default list, 10010", nil, 10010, true, 2},
		{"default list, an unlisted code", nil, 20001, false, 1},
		{"custom list, its code", []int{20001}, 20001, true, 2},
		{"custom list, a default code left out", []int{20001}, 10011, false, 1},
		{"empty list: no code renews", []int{}, 10001, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &authAPI{script: codeFirst(tt.answer, 1)}
			srv := httptest.NewServer(api)
			defer srv.Close()
			m := &fakeMetrics{}
			c := newClient(t, srv, func(c *Config) { c.AuthErrorCodes = tt.codes; c.Metrics = m })
			if _, err := c.ListPage(context.Background(), winFrom, winTo, 1); err != nil {
				t.Fatalf("ListPage: %v; want success on the second attempt", err)
			}
			tokens, used := api.counts()
			if tokens != tt.wantTokens || len(used) != 2 {
				t.Fatalf("%d tokens, %d list requests; want %d and 2", tokens, len(used), tt.wantTokens)
			}
			wantOutcome := OutcomeAPIError // retried with backoff, same token
			if tt.renews {
				wantOutcome = OutcomeAuthError
			}
			if n := m.count("listForSystem", wantOutcome); n != 1 {
				t.Errorf("%d %s outcomes; want 1", n, wantOutcome)
			}
			if !tt.renews && used[1] != used[0] {
				t.Errorf("the retry carried %s, not the unrefused %s", used[1], used[0])
			}
		})
	}

	// A code left out of the list, answered every time: an ordinary API error, retried up to
	// MaxAttempts with the same token, never ErrTokenRejected.
	api := &authAPI{script: func(int) int { return 10011 }}
	srv := httptest.NewServer(api)
	defer srv.Close()
	c := newClient(t, srv, func(c *Config) { c.AuthErrorCodes = []int{20001}; c.MaxAttempts = 3 })
	_, err := c.ListPage(context.Background(), winFrom, winTo, 1)
	var ae *APIError
	if errors.Is(err, ErrTokenRejected) || !errors.As(err, &ae) || ae.Code != 10011 || ae.Auth {
		t.Fatalf("error %v; want a non-auth APIError 10011, not ErrTokenRejected", err)
	}
	if tokens, used := api.counts(); tokens != 1 || len(used) != 3 {
		t.Errorf("%d tokens, %d list requests; want 1 and 3 (MaxAttempts)", tokens, len(used))
	}
}

func TestRenewalTime(t *testing.T) {
	now := time.Date(2024, 2, 7, 4, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) int64 { return now.Add(-d).Unix() }
	const life = 7200 // the vendor's expires_in, in seconds
	tests := []struct {
		name      string
		createAt  int64
		expiresIn int64
		want      time.Time
	}{
		{"create_at unknown: from now", 0, life, now.Add(2*time.Hour - 5*time.Minute)},
		{"created a minute ago: from create_at", ago(time.Minute), life, now.Add(2*time.Hour - 5*time.Minute - time.Minute)},
		{"created just now", now.Unix(), life, now.Add(2*time.Hour - 5*time.Minute)},
		{"create_at in our future (server clock ahead): from now", now.Add(10 * time.Minute).Unix(), life, now.Add(2*time.Hour - 5*time.Minute)},
		{"created just under half a life ago: from create_at", ago(time.Hour - time.Second), life, now.Add(time.Hour + time.Second - 5*time.Minute)},
		{"created half a life ago (server clock behind): from now", ago(time.Hour), life, now.Add(2*time.Hour - 5*time.Minute)},
		{"created a day ago (server clock far behind): from now", ago(24 * time.Hour), life, now.Add(2*time.Hour - 5*time.Minute)},
		{"short life: the margin is a fifth", 0, 100, now.Add(80 * time.Second)},
		{"short life, created 10s ago", ago(10 * time.Second), 100, now.Add(70 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := renewalTime(now, tt.createAt, tt.expiresIn); !got.Equal(tt.want) {
				t.Errorf("renewalTime(now, %d, %d) = now%+v; want now%+v", tt.createAt, tt.expiresIn, got.Sub(now), tt.want.Sub(now))
			}
		})
	}

	// Whatever the server's clock says, the token is renewed in the future (a skewed create_at
	// must not make every call renew) and no later than its life from now.
	for skew := -72 * time.Hour; skew <= 72*time.Hour; skew += 7 * time.Minute {
		at := renewalTime(now, now.Add(skew).Unix(), life)
		if !at.After(now) || at.After(now.Add(2*time.Hour)) {
			t.Fatalf("create_at now%+v: renewal at now%+v; want within (now, now+2h]", skew, at.Sub(now))
		}
	}
}
