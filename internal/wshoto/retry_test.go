package wshoto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/retry"
)

// netTimeout is a net.Error that timed out.
type netTimeout struct{}

func (netTimeout) Error() string   { return "i/o timeout" }
func (netTimeout) Timeout() bool   { return true }
func (netTimeout) Temporary() bool { return true }

func TestDecide(t *testing.T) {
	urlErr := func(err error) error { return &url.Error{Op: "Post", URL: "https://x/y", Err: err} }
	tests := []struct {
		name       string
		err        error
		callerDone bool
		outcome    string
		act        action
	}{
		{"success", nil, false, OutcomeOK, actDone},
		{"success after the caller gave up", nil, true, OutcomeOK, actDone},
		{"caller canceled", urlErr(context.Canceled), true, OutcomeCanceled, actFail},
		{"caller deadline", urlErr(context.DeadlineExceeded), true, OutcomeCanceled, actFail},
		{"caller gone during a 500", &StatusError{StatusCode: 500}, true, OutcomeCanceled, actFail},
		{"http 500", &StatusError{StatusCode: 500}, false, OutcomeHTTP5xx, actRetry},
		{"http 502 wrapped", fmt.Errorf("page 2: %w", &StatusError{StatusCode: 502}), false, OutcomeHTTP5xx, actRetry},
		{"http 503", &StatusError{StatusCode: 503}, false, OutcomeHTTP5xx, actRetry},
		{"http 408", &StatusError{StatusCode: 408}, false, OutcomeHTTP5xx, actRetry},
		{"http 429", &StatusError{StatusCode: 429}, false, OutcomeHTTP429, actRetry},
		{"http 401", &StatusError{StatusCode: 401}, false, OutcomeAuthError, actRenew},
		{"http 400", &StatusError{StatusCode: 400}, false, OutcomeHTTP4xx, actFail},
		{"http 404", &StatusError{StatusCode: 404}, false, OutcomeHTTP4xx, actFail},
		{"http 415", &StatusError{StatusCode: 415}, false, OutcomeHTTP4xx, actFail},
		{"http 302", &StatusError{StatusCode: 302}, false, OutcomeHTTPOther, actFail},
		{"http 204", &StatusError{StatusCode: 204}, false, OutcomeHTTPOther, actFail},
		{"auth code", &APIError{Code: 10010, Auth: true}, false, OutcomeAuthError, actRenew},
		{"code 3", &APIError{Code: 3}, false, OutcomeAPIError, actRetry},
		{"code 400", &APIError{Code: 400}, false, OutcomeAPIError, actRetry},
		{"malformed", fmt.Errorf("list: %w: no data", ErrMalformed), false, OutcomeMalformed, actRetry},
		{"attempt timeout", fmt.Errorf("%w: %w", errAttemptTimeout, urlErr(context.DeadlineExceeded)), false, OutcomeTimeout, actRetry},
		{"deadline, not the caller's", urlErr(context.DeadlineExceeded), false, OutcomeTimeout, actRetry},
		{"net timeout", urlErr(&net.OpError{Op: "read", Err: netTimeout{}}), false, OutcomeTimeout, actRetry},
		{"connection refused", urlErr(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), false, OutcomeConn, actRetry},
		{"connection reset", urlErr(syscall.ECONNRESET), false, OutcomeConn, actRetry},
		{"eof", urlErr(io.EOF), false, OutcomeConn, actRetry},
		{"unexpected eof reading the body", fmt.Errorf("reading body: %w", io.ErrUnexpectedEOF), false, OutcomeConn, actRetry},
		{"canceled, not the caller's", urlErr(context.Canceled), false, OutcomeConn, actRetry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outcome, act := decide(tt.err, tt.callerDone)
			if outcome != tt.outcome || act != tt.act {
				t.Errorf("decide(%v, %v) = %s, %s; want %s, %s", tt.err, tt.callerDone, outcome, act, tt.outcome, tt.act)
			}
		})
	}
}

func TestWaitFollowsThePolicyAndRetryAfter(t *testing.T) {
	base, maxB := 100*time.Millisecond, time.Second
	// Retry n (from 0) waits base·2^n within the policy's jitter, never more than maxB; across
	// fresh policies the waits spread over both halves of that range.
	for n := range 6 {
		center := min(base<<n, maxB)
		lo := time.Duration(float64(center) * (1 - retry.Jitter))
		hi := min(time.Duration(float64(center)*(1+retry.Jitter)), maxB)
		var below, above bool
		for range 200 {
			p := retry.New(base, maxB)
			for range n {
				p.Next()
			}
			d := wait(p, 0, maxB)
			if d < lo || d > hi {
				t.Fatalf("retry %d waits %v; want in [%v, %v]", n, d, lo, hi)
			}
			below, above = below || d < center, above || d > center
		}
		if !below || (!above && hi > center) {
			t.Errorf("retry %d: waits never spread around %v (below %v, above %v): not jittered", n, center, below, above)
		}
	}
	if d := wait(retry.New(base, maxB), 700*time.Millisecond, maxB); d < 700*time.Millisecond {
		t.Errorf("Retry-After 700ms: wait %v", d)
	}
	if d := wait(retry.New(base, maxB), time.Hour, maxB); d != maxB {
		t.Errorf("Retry-After 1h: wait %v; want capped at %v", d, maxB)
	}
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	c, err := New(Config{AppID: "a", AppSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	got := c.cfg
	if got.BaseURL != DefaultBaseURL || got.PageSize != 100 || got.Timeout != 10*time.Second ||
		got.RateLimit != 10 || got.Concurrency != 4 || len(got.AuthErrorCodes) != 3 ||
		got.Location.String() != "Asia/Shanghai" || got.MaxAttempts != DefaultMaxAttempts {
		t.Errorf("defaults not filled: %+v", got)
	}
	tt := func(i int) *int { return &i }
	bad := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no credentials", Config{}, "credentials"},
		{"app id without secret", Config{AppID: "a"}, "credentials"},
		{"plain http remote", Config{AccessToken: "t", BaseURL: "http://open.wshoto.com"}, "loopback"},
		{"ftp", Config{AccessToken: "t", BaseURL: "ftp://x"}, "scheme"},
		{"query in base", Config{AccessToken: "t", BaseURL: "https://x/?a=b"}, "query"},
		{"page size", Config{AccessToken: "t", PageSize: 101}, "PageSize"},
		{"negative page size", Config{AccessToken: "t", PageSize: -1}, "PageSize"},
		{"concurrency", Config{AccessToken: "t", Concurrency: -1}, "Concurrency"},
		{"target type", Config{AccessToken: "t", Filter: Filter{TargetType: tt(-1)}}, "TargetType"},
	}
	for _, b := range bad {
		if _, err := New(b.cfg); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: error %v; want one naming %q", b.name, err, b.want)
		}
	}
	for _, ok := range []Config{
		{AccessToken: "t", BaseURL: "http://127.0.0.1:8080"},
		{AccessToken: "t", BaseURL: "http://localhost:8080/prefix/"},
		{AccessToken: "t", BaseURL: "http://[::1]:8080"},
		{AccessToken: "t", BaseURL: "http://sim:8080", AllowInsecure: true},
	} {
		if _, err := New(ok); err != nil {
			t.Errorf("%s: %v", ok.BaseURL, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	got := redactURL("https://u:p@x/openapi/access_token?appid=a&app_secret=s3cr3t&access_token=t0k")
	for _, secret := range []string{"s3cr3t", "t0k", ":p@"} {
		if strings.Contains(got, secret) {
			t.Errorf("redactURL left %q in %s", secret, got)
		}
	}
	if !strings.Contains(got, "appid=a") {
		t.Errorf("redactURL dropped a harmless parameter: %s", got)
	}
	err := redactErr(&url.Error{Op: "Get", URL: "http://x/?access_token=t0k", Err: errors.New("boom t0k")}, "t0k")
	if strings.Contains(err.Error(), "t0k") {
		t.Errorf("redactErr left the token: %s", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Errorf("redactErr lost the url.Error")
	}
}
