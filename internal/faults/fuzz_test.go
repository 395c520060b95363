package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/poller"
)

// fuzzNow is the fixed "now" of the parser fuzz targets.
var fuzzNow = time.Date(2024, 2, 7, 17, 30, 0, 0, time.UTC) // 01:30 on 8 February in Shanghai

// FuzzParseTimeOrDate feeds arbitrary strings to poller.ParseTimeOrDate (the argument of
// `watermark set`) and poller.ParseStartFrom (FOLLOWPUB_START_FROM). Neither may panic. A time
// ParseTimeOrDate accepts must survive a round trip through RFC 3339, and ParseStartFrom must give
// the same instant for it. A duration START_FROM must be that long before now, never after it; a
// negative one is refused.
// Seed corpus: testdata/fuzz/FuzzParseTimeOrDate.
func FuzzParseTimeOrDate(f *testing.F) {
	for _, s := range []string{"2024-02-07", "2024-02-07T08:00:00Z", "2024-02-07T08:00:00.123456789+08:00", " 2024-02-07 ",
		"today", "now", "72h", "-1h", "0s", "1h30m", "9999-12-31", "0001-01-01", "2024-02-30", "2024-02-07T24:00:00Z", "1e3h", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		at, err := poller.ParseTimeOrDate(s, shanghai)
		if err == nil {
			if at.IsZero() {
				t.Fatalf("ParseTimeOrDate(%q) returned the zero time without an error", s)
			}
			again, err := time.Parse(time.RFC3339Nano, at.UTC().Format(time.RFC3339Nano))
			if err == nil && !again.Equal(at) {
				t.Fatalf("ParseTimeOrDate(%q) = %v does not survive RFC 3339 (%v)", s, at, again)
			}
		}
		start, serr := poller.ParseStartFrom(s, fuzzNow, shanghai)
		switch word := strings.ToLower(strings.TrimSpace(s)); {
		case word == "today" || word == "" || word == "now":
			if serr != nil {
				t.Fatalf("ParseStartFrom(%q): %v", s, serr)
			}
		case err == nil:
			if serr != nil || !start.Equal(at) {
				t.Fatalf("ParseStartFrom(%q) = %v, %v; ParseTimeOrDate gave %v", s, start, serr, at)
			}
		default:
			d, derr := time.ParseDuration(strings.TrimSpace(s))
			switch {
			case derr != nil:
				if serr == nil {
					t.Fatalf("ParseStartFrom(%q) = %v: accepted what is neither a time nor a duration", s, start)
				}
			case d < 0:
				if serr == nil {
					t.Fatalf("ParseStartFrom(%q) = %v: accepted a negative duration", s, start)
				}
			default:
				if serr != nil || !start.Equal(fuzzNow.Add(-d)) || start.After(fuzzNow) {
					t.Fatalf("ParseStartFrom(%q) = %v, %v; want now - %v", s, start, serr, d)
				}
			}
		}
	})
}

// bodyTransport answers every request with body (HTTP 200), never touching the network.
type bodyTransport struct{ body []byte }

func (b bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(b.body)), ContentLength: int64(len(b.body)), Request: r}, nil
}

// FuzzListPageBody hands arbitrary list answers to the API client through its HTTP path (an
// in-memory transport): ListPage must never panic or hang, must refuse what is not JSON of the
// documented shape, must not show the token in its errors, and what it accepts must be records
// whose raw bytes are compact JSON objects carrying the id and follow_time reported. (Whether the
// page size and the total agree with the pages is Fetch's check, not ListPage's.) Seed corpus: testdata/fuzz/FuzzListPageBody.
func FuzzListPageBody(f *testing.F) {
	for _, s := range []string{
		`{"code":0,"msg":"ok","data":{"total":1,"records":[{"id":9007199254740993,"follow_time":1707292800000,"x":[1,{"y":null}]}]},"sub_code":"00000"}`,
		`{"code":0,"msg":"ok","data":{"total":0,"records":[]}}`,
		`{"code":0,"msg":"ok","data":{"total":-5,"records":[]}}`,
		`{"code":0,"msg":"ok","data":{"total":1,"records":[{"id":"123","follow_time":"1707292800000"}]}}`,
		`{"code":0,"data":{"total":1,"records":[{"id":1.5e3,"follow_time":1}]}}`,
		`{"code":3,"msg":"系统繁忙","data":null}`,
		`{"code":10011,"msg":"token"}`,
		`{"code":0,"data":{"total":2,"records":[{"id":1,"follow_time":1},{"id":1,"follow_time":2}]}}`,
		"\xef\xbb\xbf{\"code\":0}",
		`[]`, ``, `null`, `{"code":0,"data":{"records":null}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := wshoto.New(wshoto.Config{
			BaseURL: "http://127.0.0.1:1", AccessToken: "fuzz-token", PageSize: 100, RateLimit: -1,
			MaxAttempts: 1, HTTPClient: &http.Client{Transport: bodyTransport{body}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		day := time.Date(2024, 2, 7, 0, 0, 0, 0, shanghai)
		page, err := c.ListPage(ctx, day, day, 1)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ListPage hung on %q", body)
		}
		if err != nil {
			if strings.Contains(err.Error(), "fuzz-token") {
				t.Fatalf("the error shows the token: %v", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted a body that is not JSON: %q", body)
		}
		for _, r := range page.Records {
			var buf bytes.Buffer
			if err := json.Compact(&buf, r.Raw); err != nil || !bytes.Equal(buf.Bytes(), r.Raw) || len(r.Raw) == 0 || r.Raw[0] != '{' {
				t.Fatalf("record %d: raw %q is not a compact JSON object", r.ID, r.Raw)
			}
			var fields struct {
				ID         json.Number `json:"id"`
				FollowTime json.Number `json:"follow_time"`
			}
			dec := json.NewDecoder(bytes.NewReader(r.Raw))
			dec.UseNumber()
			if err := dec.Decode(&fields); err != nil {
				var n struct {
					ID         string `json:"id"`
					FollowTime string `json:"follow_time"`
				}
				if err := json.Unmarshal(r.Raw, &n); err != nil {
					t.Fatalf("record raw %q: %v", r.Raw, err)
				}
				fields.ID, fields.FollowTime = json.Number(n.ID), json.Number(n.FollowTime)
			}
			id, err1 := fields.ID.Int64()
			ft, err2 := fields.FollowTime.Int64()
			if err1 != nil || err2 != nil || id != r.ID || ft != r.FollowTime {
				t.Fatalf("record decoded as id %d follow_time %d from %q", r.ID, r.FollowTime, r.Raw)
			}
		}
	})
}
