package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/poller"
)

// maxBody is the API client's default body limit, which the binary uses.
const maxBody = wshoto.DefaultMaxBodySize

// maxPeakRSS bounds followpub's peak memory while four endless bodies are read at once.
const maxPeakRSS = 384 << 20

// TestOversizeAndEndlessBodies answers the first list requests with bodies followpub must refuse
// without holding them: the first is announced (Content-Length) as 48 MiB; the next four, which
// are the first attempts at pages 2–5 read concurrently (API_CONCURRENCY=4, the default), never
// end (chunked, streamed until the client goes away). followpub must treat them as malformed
// answers, retry, complete the cycle and publish everything, reading about the body limit (maxBody) of
// each endless body and no more, with a bounded peak memory.
func TestOversizeAndEndlessBodies(t *testing.T) {
	t.Parallel()
	var (
		served   atomic.Int64 // list requests seen
		endless  atomic.Int64 // bytes written into endless bodies
		maxEnd   atomic.Int64 // the most written into one endless body
		announce atomic.Int64 // oversize bodies announced
	)
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != wshotosim.ListPath {
				h.ServeHTTP(w, r)
				return
			}
			switch n := served.Add(1); {
			case n == 1: // announced as too big: refused before reading
				announce.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", strconv.Itoa(48<<20))
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, `{"code":0,"msg":"ok","data":{"total":1,"records":[`)
			case n >= 3 && n <= 6: // endless: streamed until the client gives up
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				chunk := bytes.Repeat([]byte(`{"id":1,"follow_time":1},`), 1<<12)
				written := int64(0)
				_, _ = io.WriteString(w, `{"code":0,"msg":"ok","data":{"total":1,"records":[`)
				for written < 1<<30 {
					k, err := w.Write(chunk)
					written += int64(k)
					if err != nil {
						break
					}
				}
				endless.Add(written)
				for m := maxEnd.Load(); written > m && !maxEnd.CompareAndSwap(m, written); m = maxEnd.Load() {
				}
			default:
				h.ServeHTTP(w, r)
			}
		})
	}
	from, to := pastDays(1)
	w := e2etest.NewWorld(t, wshotosim.Config{Count: 1000, Start: to.Add(-time.Hour), End: to}, from.Add(-time.Minute), e2etest.WithWrap(wrap))
	p := start(t, w.Env(), "run", "--once")
	peak := int64(0)
	for !p.Exited() {
		peak = max(peak, rssPeak(p.Pid()))
		time.Sleep(20 * time.Millisecond)
	}
	if code := p.Wait(time.Minute); code != 0 {
		t.Fatalf("run --once exited %d after oversize bodies:\n%s", code, tail(p.Output(), 30))
	}
	noSecret(t, "the log", p.Output())
	ta := newTally(t, w.Brokers, w.Topic)
	ta.sync(t)
	want := w.Want()
	if lost := ta.missing(want); len(lost) > 0 {
		t.Fatalf("%d of %d records lost after oversize bodies", len(lost), len(want))
	}
	if copies, _ := ta.dups(); copies > 0 {
		t.Fatalf("%d duplicate copies", copies)
	}
	if served.Load() < 5 {
		t.Fatalf("only %d list requests: the oversize answers were not all served", served.Load())
	}
	// The client reads at most the limit (plus what sits in socket buffers) of an endless body.
	if m := maxEnd.Load(); m > maxBody+16<<20 {
		t.Errorf("the server wrote %d MiB into one endless body before followpub hung up; the limit is %d MiB", m>>20, maxBody>>20)
	}
	// 112–134 MiB measured at the 8 MiB limit; the former 32 MiB limit cost about 480 MiB.
	if peak > maxPeakRSS {
		t.Errorf("followpub's peak RSS was %d MiB with four endless bodies at once, over %d MiB", peak>>20, maxPeakRSS>>20)
	}
	figures(t, "announced_oversize=%d endless=4_at_once written_into_endless=%d MiB max_one_endless=%d MiB limit=%d MiB peak_rss=%d MiB records=%d lost=0 duplicates=0",
		announce.Load(), endless.Load()>>20, maxEnd.Load()>>20, maxBody>>20, peak>>20, len(want))
}

// rssPeak returns the peak resident set size of pid (VmHWM), or 0.
func rssPeak(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// foreignBase starts the ids of the records TestRecordsOutsideTheWindow slips into answers.
const foreignBase = int64(8_000_000_000_000_000_000)

var totalRE = regexp.MustCompile(`"total":(\d+)`)

// TestRecordsOutsideTheWindow slips records the API was not asked for into its answers: for each
// day asked, one from the day before, one from two days after, one from 1999 and one from 2200.
// followpub must publish every real record and none of those, count them in
// followpub_records_out_of_window_total and say so in its log.
func TestRecordsOutsideTheWindow(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		injected = map[int64]bool{}
	)
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != wshotosim.ListPath {
				h.ServeHTTP(w, r)
				return
			}
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			out := rec.Body.Bytes()
			var req struct {
				Start    string `json:"follow_time_start"`
				Index    int    `json:"current_index"`
				PageSize int    `json:"page_size"`
			}
			_ = json.Unmarshal(body, &req)
			day, err := time.ParseInLocation(time.DateOnly, req.Start, shanghai)
			total := totalRE.FindSubmatch(out)
			end := bytes.LastIndex(out, []byte(`]},"sub_code"`))
			// Four extra records for the query, on its last page, with the total raised on every
			// page, so that the page set stays consistent. Only where the last page has room.
			n := -1
			if total != nil {
				n, _ = strconv.Atoi(string(total[1]))
			}
			if err == nil && end > 0 && n >= 0 && req.PageSize > 4 && n%req.PageSize <= req.PageSize-4 && (n == 0 || n%req.PageSize != 0) {
				if req.Index == n/req.PageSize+1 {
					var extra []string
					for k, ft := range []int64{
						day.AddDate(0, 0, -1).Add(12 * time.Hour).UnixMilli(),
						day.AddDate(0, 0, 2).Add(time.Hour).UnixMilli(),
						time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(),
						time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(),
					} {
						id := foreignBase + int64(day.YearDay())*10 + int64(k)
						mu.Lock()
						injected[id] = true
						mu.Unlock()
						extra = append(extra, fmt.Sprintf(`{"id":%d,"follow_user_id":"wx_intruder","content":"not asked for","target":{},"business_type":1,"title":"intruder","follow_time":%d,"create_time":%d}`, id, ft, ft))
					}
					sep := ","
					if bytes.HasSuffix(out[:end], []byte("[")) {
						sep = ""
					}
					out = slices.Concat(out[:end], []byte(sep+strings.Join(extra, ",")), out[end:])
				}
				out = totalRE.ReplaceAll(out, []byte(`"total":`+strconv.Itoa(n+4)))
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rec.Code)
			_, _ = w.Write(out)
		})
	}
	now := time.Now()
	today := poller.StartOfDay(now, shanghai)
	w := e2etest.NewWorld(t, wshotosim.Config{Count: 250, Start: today.AddDate(0, 0, -2), End: now, Rate: 1},
		today.AddDate(0, 0, -2), e2etest.WithWrap(wrap))
	addr := e2etest.FreeAddr(t)
	p := start(t, w.Env("FOLLOWPUB_HTTP_ADDR="+addr), "run")
	ta := newTally(t, w.Brokers, w.Topic)
	want := w.Want()
	if missing := ta.syncUntil(t, want, 60*time.Second); len(missing) > 0 {
		t.Fatalf("%d of %d records not published within 60 s:\n%s", len(missing), len(want), tail(p.Output(), 30))
	}
	time.Sleep(time.Second) // a few more cycles
	outside, _ := metric(scrape(addr), "followpub_records_out_of_window_total")
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Fatalf("followpub exited %d:\n%s", code, tail(p.Output(), 30))
	}
	ta.sync(t)
	mu.Lock()
	defer mu.Unlock()
	if len(injected) == 0 {
		t.Fatal("no record outside the window was slipped in: the test proved nothing")
	}
	for id := range injected {
		if ta.counts[id] > 0 {
			t.Errorf("id %d, returned for a day it does not fall on, was published", id)
		}
	}
	if extra := ta.unexpected(w.Want()); len(extra) > 0 {
		t.Errorf("ids in the topic the API did not show: %v", extra)
	}
	if copies, _ := ta.dups(); copies > 0 {
		t.Errorf("%d duplicate copies", copies)
	}
	if outside == 0 {
		t.Error("followpub_records_out_of_window_total stayed 0")
	}
	if len(lines(p.Output(), "outside the day asked for")) == 0 {
		t.Error("the log never says that records outside the day asked for were skipped")
	}
	figures(t, "records=%d published=%d foreign_ids=%d foreign_published=0 out_of_window_counted=%v",
		len(want), len(ta.counts), len(injected), outside)
}

// TestHostileConfiguration feeds followpub environment values chosen to break a parser: negative,
// zero, overflowing and unit-less durations, numbers in other bases and sizes, control characters,
// path tricks, a 100 kB value, URLs of other schemes. Each must end in exit 2 with a message that
// names the variable — never a crash, never a secret in the output.
func TestHostileConfiguration(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("9", 100_000)
	tests := []struct{ name, value string }{
		{"FOLLOWPUB_POLL_INTERVAL", "-1s"},
		{"FOLLOWPUB_POLL_INTERVAL", "0"},
		{"FOLLOWPUB_POLL_INTERVAL", "99999999999h"},
		{"FOLLOWPUB_POLL_INTERVAL", "1d"},
		{"FOLLOWPUB_POLL_INTERVAL", "１s"},
		{"FOLLOWPUB_POLL_INTERVAL", "30s\n"},
		{"FOLLOWPUB_POLL_INTERVAL", long + "h"},
		{"FOLLOWPUB_API_TIMEOUT", "-5s"},
		{"FOLLOWPUB_KAFKA_WRITE_TIMEOUT", "0s"},
		{"FOLLOWPUB_SHUTDOWN_TIMEOUT", "-1ns"},
		{"FOLLOWPUB_LOOKBACK", "-1h"},
		{"FOLLOWPUB_START_FROM", "-72h"},
		{"FOLLOWPUB_START_FROM", "yesterday"},
		{"FOLLOWPUB_START_FROM", "2024-02-30"},
		{"FOLLOWPUB_START_FROM", "2562048h"},
		{"FOLLOWPUB_START_FROM", long + "h"},
		{"FOLLOWPUB_START_FROM", "2024-02-07T25:00:00Z"},
		{"FOLLOWPUB_START_FROM", "\x1b[31mtoday"},
		{"FOLLOWPUB_API_PAGE_SIZE", "0"},
		{"FOLLOWPUB_API_PAGE_SIZE", "-1"},
		{"FOLLOWPUB_API_PAGE_SIZE", "101"},
		{"FOLLOWPUB_API_PAGE_SIZE", "9223372036854775808"},
		{"FOLLOWPUB_API_PAGE_SIZE", "1e2"},
		{"FOLLOWPUB_API_RATE_LIMIT", "NaN"},
		{"FOLLOWPUB_API_RATE_LIMIT", "-1"},
		{"FOLLOWPUB_API_RATE_LIMIT", "0"},
		{"FOLLOWPUB_API_CONCURRENCY", "0"},
		{"FOLLOWPUB_API_CONCURRENCY", "65"},
		{"FOLLOWPUB_API_TIMEZONE", "../../../etc/passwd"},
		{"FOLLOWPUB_API_TIMEZONE", "Mars/Olympus_Mons"},
		{"FOLLOWPUB_API_BASE_URL", "ftp://127.0.0.1/"},
		{"FOLLOWPUB_API_BASE_URL", "javascript:alert(1)"},
		{"FOLLOWPUB_API_BASE_URL", "http://[::1"},
		{"FOLLOWPUB_API_BASE_URL", "http://"},
		{"FOLLOWPUB_API_AUTH_ERROR_CODES", "10001,x"},
		{"FOLLOWPUB_API_AUTH_ERROR_CODES", "99999999999999999999"},
		{"FOLLOWPUB_FILTER_TARGET_TYPE", "-1"},
		{"FOLLOWPUB_FILTER_FOLLOW_DEP_IDS", "1,2,x"},
		{"FOLLOWPUB_KAFKA_BROKERS", ","},
		{"FOLLOWPUB_KAFKA_BROKERS", "no-port"},
		{"FOLLOWPUB_KAFKA_BROKERS", "[::1"},
		{"FOLLOWPUB_KAFKA_TOPIC", "a/b"},
		{"FOLLOWPUB_KAFKA_TOPIC", ".."},
		{"FOLLOWPUB_KAFKA_TOPIC", strings.Repeat("t", 100_000)},
		{"FOLLOWPUB_KAFKA_COMPRESSION", "brotli"},
		{"FOLLOWPUB_KAFKA_SASL_MECHANISM", "GSSAPI"},
		{"FOLLOWPUB_KAFKA_TOPIC_PARTITIONS", "0"},
		{"FOLLOWPUB_HTTP_ADDR", "no-port"},
		{"FOLLOWPUB_LOG_LEVEL", "verbose"},
		{"FOLLOWPUB_LOG_FORMAT", "xml"},
	}
	for _, tt := range tests {
		shown := tt.value
		if len(shown) > 24 {
			shown = shown[:24] + "…"
		}
		t.Run(tt.name+"="+strconv.Quote(shown), func(t *testing.T) {
			env := []string{"PATH=" + os.Getenv("PATH"), "FOLLOWPUB_STATE_PATH=" + t.TempDir() + "/s",
				"FOLLOWPUB_API_BASE_URL=http://127.0.0.1:1", "FOLLOWPUB_API_ACCESS_TOKEN=" + staticToken,
				"FOLLOWPUB_KAFKA_BROKERS=127.0.0.1:1", "FOLLOWPUB_HTTP_ADDR=", "FOLLOWPUB_LOG_FORMAT=json",
				"FOLLOWPUB_API_TIMEOUT=200ms", "FOLLOWPUB_KAFKA_WRITE_TIMEOUT=1s", tt.name + "=" + tt.value}
			code, out := run(t, 30*time.Second, env, "run", "--once")
			if crashed(code, out) {
				t.Fatalf("followpub crashed:\n%s", head(out, 10))
			}
			if code != 2 || !strings.Contains(out, tt.name) {
				t.Fatalf("exit %d, want 2 with the variable named:\n%s", code, tail(out, 3))
			}
			noSecret(t, "the output", out)
		})
	}
	figures(t, "values=%d exit_2_naming_the_variable=all", len(tests))
}
