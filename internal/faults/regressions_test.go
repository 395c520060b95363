package faults

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/state"
	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/poller/pollertest"
	"github.com/followpub/followpub/schema"
)

// The tests in this file guard bugs the fault-injection tests found in other packages, now fixed
// (docs/RELIABILITY.md, "Bugs found and fixed"). Each drives the fault that exposed its bug and
// asserts what docs/DESIGN.md asks; any departure fails the test. None of them needs a broker.

// TestTruncatedStateIsReportedCorrupt cuts a state file of many pages short — to its two meta
// pages, a little past them, and one page before its end — as a copy cut short or a disk that lost
// the tail would. bbolt reads such a file past its end through its mmap, a memory fault that
// recover() alone does not catch: followpub used to die with "fatal error: fault" and exit 2.
// `watermark show` and `run --once` must both exit 1 naming the file as corrupt, never crash, and
// leave the file as it was.
func TestTruncatedStateIsReportedCorrupt(t *testing.T) {
	t.Parallel()
	good := filepath.Join(t.TempDir(), "followpub.state")
	s, err := state.Open(good)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Replace(ctx, 1, 1); err != nil {
		t.Fatal(err)
	}
	add := make([]poller.Published, 50_000) // the store keeps ids in chunks of a few bytes each: enough for many pages
	for i := range add {
		add[i] = poller.Published{ID: 1_000_000_000_000 + int64(i)*7919, FollowTime: 1_700_000_000_000 + int64(i)}
	}
	if err := s.Commit(ctx, poller.Change{Add: add, Floor: 1, Watermark: 1_700_000_050_000}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	// bbolt grows its file ahead of use: the data reach only to the newest meta page's high-water
	// mark (its page count), and cutting the unused rest is harmless.
	end := dataEnd(t, full)
	if end < 16*page {
		t.Fatalf("the state's data end at byte %d: not the many-page store the test needs", end)
	}
	sizes := []struct {
		name string
		size int
	}{
		{"to its two meta pages", 2 * page},
		{"a little past its two meta pages", 2*page + 100},
		{"to half its data", end / 2 / page * page},
		{"by its last page of data", end - page},
		{"by one byte of data", end - 1},
	}
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "followpub.state")
			if err := os.WriteFile(path, full[:sz.size], 0o600); err != nil {
				t.Fatal(err)
			}
			before := snapshot(path)
			env := []string{"PATH=" + os.Getenv("PATH"), "FOLLOWPUB_STATE_PATH=" + path, "FOLLOWPUB_HTTP_ADDR=",
				"FOLLOWPUB_API_BASE_URL=http://127.0.0.1:1", "FOLLOWPUB_API_ACCESS_TOKEN=" + staticToken,
				"FOLLOWPUB_KAFKA_BROKERS=127.0.0.1:1", "FOLLOWPUB_LOG_FORMAT=json", "FOLLOWPUB_API_TIMEOUT=200ms",
				"FOLLOWPUB_KAFKA_WRITE_TIMEOUT=1s"}
			for _, args := range [][]string{{"watermark", "show"}, {"run", "--once"}} {
				code, out := run(t, 30*time.Second, env, args...)
				if crashed(code, out) {
					t.Fatalf("followpub %v crashed on a state truncated %s (%d of %d bytes):\n%s",
						args, sz.name, sz.size, len(full), head(out, 8))
				}
				if code != 1 || !strings.Contains(out, path) || !strings.Contains(out, "corrupt") {
					t.Fatalf("followpub %v on a state truncated %s exited %d, want 1 naming the file as corrupt:\n%s",
						args, sz.name, code, tail(out, 5))
				}
				noSecret(t, "the output", out)
			}
			if after := snapshot(path); after != before {
				t.Fatalf("the truncated state was changed by the failed runs (%s → %s)", before, after)
			}
		})
	}
	// Cutting only the space bbolt allocated ahead loses nothing: the store still loads.
	if end < len(full) {
		path := filepath.Join(t.TempDir(), "followpub.state")
		if err := os.WriteFile(path, full[:end], 0o600); err != nil {
			t.Fatal(err)
		}
		env := []string{"PATH=" + os.Getenv("PATH"), "FOLLOWPUB_STATE_PATH=" + path, "FOLLOWPUB_HTTP_ADDR=",
			"FOLLOWPUB_API_BASE_URL=http://127.0.0.1:1", "FOLLOWPUB_API_ACCESS_TOKEN=" + staticToken,
			"FOLLOWPUB_KAFKA_BROKERS=127.0.0.1:1", "FOLLOWPUB_LOG_FORMAT=json"}
		if code, out := run(t, 30*time.Second, env, "watermark", "show"); code != 0 || !strings.Contains(out, fmt.Sprintf(`"seen":%d,`, len(add))) {
			t.Fatalf("watermark show on a state cut to the end of its data (%d of %d bytes) exited %d, want 0 with %d ids:\n%s",
				end, len(full), code, len(add), tail(out, 5))
		}
	}
	figures(t, "truncations=%d of_a_store_with_%d_bytes_of_data_in_%d commands=2 exit_1_corrupt=all crashes=0", len(sizes), end, len(full))
}

// dataEnd returns where the data of a bbolt file end: the high-water mark (in pages) times the
// page size, from the valid meta page with the newest transaction. A meta page is a 16-byte page
// header, then magic, version and page size (uint32 each), flags (uint32), the root bucket (16
// bytes), the freelist page id, the high-water page id and the transaction id (uint64 each),
// little-endian.
func dataEnd(t *testing.T, b []byte) int {
	t.Helper()
	const magic = 0xED0CDAED
	var txid, end uint64
	for _, off := range []int{0, 4096} {
		if len(b) < off+72 || binary.LittleEndian.Uint32(b[off+16:]) != magic {
			continue
		}
		m := b[off:]
		if id := binary.LittleEndian.Uint64(m[64:]); id >= txid {
			txid, end = id, binary.LittleEndian.Uint64(m[56:])*uint64(binary.LittleEndian.Uint32(m[24:]))
		}
	}
	if end == 0 || end > uint64(len(b)) {
		t.Fatalf("no valid meta page in the %d-byte state (data end %d)", len(b), end)
	}
	return int(end)
}

// TestInterruptedCycleIsNotComplete cancels a cycle while its reader waits for the API, after 3 of
// the 11 days of its window were read. When the reader saw the cancellation first it used to close
// its channel without a result, the cycle ended as if the window had been read, and Cycle returned
// nil ("cycle done", result ok, ready; `run --once` exit 0 after 3 of 11 days) in about 40 % of
// trials. Every trial must now return an error wrapping context.Canceled, count no day the source
// did not answer, and leave the poller not ready.
func TestInterruptedCycleIsNotComplete(t *testing.T) {
	t.Parallel()
	const trials = 40
	for i := range trials {
		src := &stallingSource{after: 3}
		p, err := poller.New(poller.Config{StartFrom: "240h", Interval: time.Second}, src, &nopPublisher{}, &pollertest.MemStore{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		src.stalled.Add(1)
		go func() {
			src.stalled.Wait()
			cancel()
		}()
		res, err := p.Cycle(ctx)
		cancel()
		switch {
		case err == nil:
			t.Fatalf("trial %d: a cycle cancelled after %d of 11 days returned nil (reported complete)", i, res.Days)
		case !errors.Is(err, context.Canceled):
			t.Fatalf("trial %d: the interrupted cycle's error does not wrap context.Canceled: %v", i, err)
		case res.Days > 3:
			// The cancellation may land before the cycle has handled the days already answered.
			t.Fatalf("trial %d: the cycle reports %d days read, more than the 3 the source answered (%v)", i, res.Days, err)
		case p.Ready():
			t.Fatalf("trial %d: the poller says ready after an interrupted cycle", i)
		}
	}
	figures(t, "trials=%d cancelled_after=3_of_11_days reported_incomplete=%d", trials, trials)
}

// stallingSource answers the first `after` days at once (empty), then blocks until the caller's
// context ends and returns its error.
type stallingSource struct {
	after   int
	mu      sync.Mutex
	calls   int
	stalled sync.WaitGroup
}

func (s *stallingSource) Fetch(ctx context.Context, _, _ time.Time) ([]schema.Record, error) {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.mu.Unlock()
	if n <= s.after {
		return nil, nil
	}
	if n == s.after+1 {
		s.stalled.Done()
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// nopPublisher acknowledges everything and remembers each batch.
type nopPublisher struct {
	mu    sync.Mutex
	calls [][]int64
}

func (p *nopPublisher) Publish(_ context.Context, recs []schema.Record) (poller.Written, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]int64, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	p.calls = append(p.calls, ids)
	return poller.Written{}, nil
}

// ReadBack finds nothing: what nopPublisher acknowledges it keeps to itself.
func (p *nopPublisher) ReadBack(context.Context, poller.Tail) (poller.ReadBack, error) {
	return poller.ReadBack{Tail: poller.Tail{Topic: "nop", Next: map[int]int64{0: 0}}}, nil
}

// reset forgets what was published so far.
func (p *nopPublisher) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = nil
}

// published returns every id published so far, in order, copies included.
func (p *nopPublisher) published() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Concat(p.calls...)
}

// staticSource returns the same records for every day they fall on.
type staticSource struct{ recs []schema.Record }

// gatedSource is first until open is set, then first and then together.
type gatedSource struct {
	first, then staticSource
	open        *atomic.Bool
}

func (g gatedSource) Fetch(ctx context.Context, from, to time.Time) ([]schema.Record, error) {
	if !g.open.Load() {
		return g.first.Fetch(ctx, from, to)
	}
	return staticSource{append(slices.Clone(g.first.recs), g.then.recs...)}.Fetch(ctx, from, to)
}

func (s staticSource) Fetch(_ context.Context, from, to time.Time) ([]schema.Record, error) {
	var out []schema.Record
	end := to.AddDate(0, 0, 1).UnixMilli()
	for _, r := range s.recs {
		if r.FollowTime >= from.UnixMilli() && r.FollowTime < end {
			out = append(out, r)
		}
	}
	return out, nil
}

// TestDiskFaultPublishesOneBatchPerOutage makes every commit fail (a full disk) for eight
// consecutive cycles while 2 500 records are due, with a batch size of 1 000 (after a first
// cycle that published one record, reading the topic back first as every process does). The
// first failed cycle publishes one batch, which Kafka acknowledges and the store cannot commit. The poller used to
// forget those records and publish the same batch again every failed cycle, so the duplicates grew
// with the length of the outage. Now: that one batch is the only thing published for the whole
// outage (each later failed cycle publishes nothing and the state does not move), and once the disk
// heals the next cycle commits it and publishes the other 1 500, each id exactly once overall.
func TestDiskFaultPublishesOneBatchPerOutage(t *testing.T) {
	t.Parallel()
	const (
		total = 2500
		batch = 1000
	)
	now := time.Now()
	var recs []schema.Record
	for i := range total {
		ft := now.Add(-time.Duration(i) * time.Second).UnixMilli()
		recs = append(recs, schema.Record{ID: int64(10_000 + i), FollowTime: ft, Raw: []byte(`{"id":1}`)})
	}
	seed := schema.Record{ID: 1, FollowTime: now.Add(-time.Hour).UnixMilli(), Raw: []byte(`{"id":1}`)}
	pub := &nopPublisher{}
	store := &pollertest.MemStore{}
	var open atomic.Bool
	// The clock moves on past the first cycle's readiness (three intervals) once it is done.
	var shift atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	p, err := poller.New(poller.Config{StartFrom: "24h", BatchSize: batch, Clock: clock}, gatedSource{staticSource{[]schema.Record{seed}}, staticSource{recs}, &open}, pub, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := p.Status(ctx); err != nil { // loads the (empty) state
		t.Fatal(err)
	}
	if err := p.SetWatermark(ctx, now.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Cycle(ctx); err != nil { // the seed: the read-back, the publish, their commits
		t.Fatal(err)
	}
	if n := len(pub.published()); n != 1 {
		t.Fatalf("the first cycle published %d records, want the seed", n)
	}
	pub.reset()
	open.Store(true)
	shift.Store(int64(2 * time.Minute))
	before, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	commits := store.Commits

	store.Fail(errors.New("no space left on device"))
	const cycles = 8
	var inFlight []int64 // the batch published when the disk broke
	for c := 1; c <= cycles; c++ {
		if _, err := p.Cycle(ctx); err == nil {
			t.Fatalf("failed cycle %d: the cycle succeeded although every commit failed", c)
		} else if !strings.Contains(err.Error(), "no space left on device") {
			t.Fatalf("failed cycle %d: the error does not name the disk's: %v", c, err)
		}
		got := pub.published()
		if c == 1 {
			if len(pub.calls) != 1 || len(got) == 0 || len(got) > batch {
				t.Fatalf("the first failed cycle published %d batches (%d records), want one batch of at most %d", len(pub.calls), len(got), batch)
			}
			inFlight = got
			continue
		}
		if len(got) != len(inFlight) {
			t.Fatalf("failed cycle %d published %d more records while the disk stayed broken; only the one batch of %d in flight when it broke may be",
				c, len(got)-len(inFlight), len(inFlight))
		}
		if p.Ready() {
			t.Fatalf("failed cycle %d: the poller says ready while every commit fails", c)
		}
	}
	during, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if during.WatermarkMS != before.WatermarkMS || during.FloorMS != before.FloorMS || during.Seen != before.Seen {
		t.Fatalf("the state moved although nothing could be committed: %+v → %+v", before, during)
	}
	if store.Commits != commits {
		t.Fatalf("%d commits succeeded on a store that refuses every commit", store.Commits-commits)
	}
	publishedWhileBroken := len(pub.published())

	store.Fail(nil)
	if _, err := p.Cycle(ctx); err != nil {
		t.Fatalf("the cycle after the disk recovered: %v", err)
	}
	if !p.Ready() {
		t.Fatal("the poller is not ready after a complete cycle")
	}
	counts := map[int64]int{}
	for _, id := range pub.published() {
		counts[id]++
	}
	for _, r := range recs {
		switch n := counts[r.ID]; {
		case n == 0:
			t.Fatalf("id %d was never published", r.ID)
		case n > 1:
			t.Fatalf("id %d was published %d times", r.ID, n)
		}
	}
	if len(counts) != total {
		t.Fatalf("%d distinct ids published, want %d", len(counts), total)
	}
	st, err := store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if _, ok := st.Seen[r.ID]; !ok {
			t.Fatalf("id %d is published but the store does not remember it", r.ID)
		}
	}
	if _, err := p.Cycle(ctx); err != nil {
		t.Fatalf("a cycle after the recovery: %v", err)
	}
	if n := len(pub.published()); n != total {
		t.Fatalf("a cycle after the recovery published %d records again", n-total)
	}
	figures(t, "records=%d batch=%d failed_cycles=%d published_while_broken=%d published_total=%d duplicates=0 lost=0",
		total, batch, cycles, publishedWhileBroken, total)
}

// TestImplausibleConfigurationIsRefused gives values docs/DESIGN.md §2 calls bad configuration that followpub
// used to accept or mishandle: START_FROM in year 1 (a backfill of 739 945 days) or past now (a
// state after every record, which START_FROM cannot undo), an API URL carrying credentials (refused
// without naming the variable, and echoing the password), out-of-range ports (HTTP_ADDR failed at
// listen time with exit 1; KAFKA_BROKERS accepted them). Each must exit 2 naming the variable,
// without printing the password, from `watermark show` and from `run --once`. `watermark set` must
// refuse such times too (exit 2) without touching the state. Times just inside the bounds are
// accepted.
func TestImplausibleConfigurationIsRefused(t *testing.T) {
	t.Parallel()
	future := time.Now().In(shanghai).AddDate(0, 0, 3).Format(time.DateOnly)
	tests := []struct {
		env, name, secret string
	}{
		{"FOLLOWPUB_START_FROM=0001-01-01", "FOLLOWPUB_START_FROM", ""},
		{"FOLLOWPUB_START_FROM=1999-06-30", "FOLLOWPUB_START_FROM", ""},
		{"FOLLOWPUB_START_FROM=9999-12-31", "FOLLOWPUB_START_FROM", ""},
		{"FOLLOWPUB_START_FROM=" + future, "FOLLOWPUB_START_FROM", ""},
		{"FOLLOWPUB_START_FROM=250000h", "FOLLOWPUB_START_FROM", ""},
		{"FOLLOWPUB_API_BASE_URL=https://user:pw-NEVERPRINT@127.0.0.1:1", "FOLLOWPUB_API_BASE_URL", "pw-NEVERPRINT"},
		// A user name alone is refused too, and not printed either (a token is sometimes passed as one).
		{"FOLLOWPUB_API_BASE_URL=http://someone-NEVERPRINT@127.0.0.1:1", "FOLLOWPUB_API_BASE_URL", "someone-NEVERPRINT"},
		{"FOLLOWPUB_HTTP_ADDR=127.0.0.1:99999", "FOLLOWPUB_HTTP_ADDR", ""},
		{"FOLLOWPUB_HTTP_ADDR=127.0.0.1:65536", "FOLLOWPUB_HTTP_ADDR", ""},
		{"FOLLOWPUB_HTTP_ADDR=127.0.0.1:-1", "FOLLOWPUB_HTTP_ADDR", ""},
		{"FOLLOWPUB_KAFKA_BROKERS=127.0.0.1:99999", "FOLLOWPUB_KAFKA_BROKERS", ""},
		{"FOLLOWPUB_KAFKA_BROKERS=127.0.0.1:0", "FOLLOWPUB_KAFKA_BROKERS", ""},
		{"FOLLOWPUB_KAFKA_BROKERS=127.0.0.1:9092,127.0.0.1:70000", "FOLLOWPUB_KAFKA_BROKERS", ""},
	}
	base := func(t *testing.T, extra ...string) []string {
		return append([]string{"PATH=" + os.Getenv("PATH"), "FOLLOWPUB_STATE_PATH=" + filepath.Join(t.TempDir(), "s"),
			"FOLLOWPUB_API_BASE_URL=http://127.0.0.1:1", "FOLLOWPUB_API_ACCESS_TOKEN=" + staticToken,
			"FOLLOWPUB_KAFKA_BROKERS=127.0.0.1:1", "FOLLOWPUB_HTTP_ADDR=", "FOLLOWPUB_LOG_FORMAT=json",
			"FOLLOWPUB_API_TIMEOUT=200ms", "FOLLOWPUB_KAFKA_WRITE_TIMEOUT=1s"}, extra...)
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.env), func(t *testing.T) {
			env := base(t, tt.env)
			for _, args := range [][]string{{"watermark", "show"}, {"run", "--once"}} {
				code, out := run(t, 30*time.Second, env, args...)
				noSecret(t, "the output", out)
				if crashed(code, out) {
					t.Fatalf("followpub %v with %s crashed:\n%s", args, tt.env, head(out, 8))
				}
				if code != 2 || !strings.Contains(out, tt.name) {
					t.Fatalf("followpub %v with %s exited %d, want 2 naming %s:\n%s", args, tt.env, code, tt.name, tail(out, 3))
				}
				if tt.secret != "" && strings.Contains(out, tt.secret) {
					t.Fatalf("followpub %v with %s prints the credentials in the URL:\n%s", args, tt.env, tail(out, 3))
				}
			}
		})
	}
	for _, when := range []string{"0001-01-01", "1999-12-30T23:59:59Z", "9999-12-31", future} {
		t.Run("watermark set "+when, func(t *testing.T) {
			env := base(t)
			statePath := strings.TrimPrefix(env[1], "FOLLOWPUB_STATE_PATH=")
			code, out := run(t, 30*time.Second, env, "watermark", "set", when)
			if crashed(code, out) || code != 2 || !strings.Contains(out, "watermark set") {
				t.Fatalf("watermark set %s exited %d, want 2 (usage):\n%s", when, code, tail(out, 3))
			}
			if _, err := os.Stat(statePath); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused watermark set left a state behind (%v)", err)
			}
		})
	}
	// Just inside the bounds: accepted.
	for _, ok := range []string{"FOLLOWPUB_START_FROM=2000-01-01", "FOLLOWPUB_START_FROM=" + time.Now().In(shanghai).Format(time.DateOnly),
		"FOLLOWPUB_HTTP_ADDR=127.0.0.1:0", "FOLLOWPUB_KAFKA_BROKERS=127.0.0.1:65535"} {
		t.Run("accepted "+strconv.Quote(ok), func(t *testing.T) {
			if code, out := run(t, 30*time.Second, base(t, ok), "watermark", "show"); code != 0 {
				t.Fatalf("watermark show with %s exited %d, want 0:\n%s", ok, code, tail(out, 3))
			}
		})
	}
	figures(t, "values=%d commands=2 exit_2_naming_the_variable=all watermark_set_refused=4 accepted_at_the_bounds=4", len(tests))
}

// countingTransport answers every request with body and counts the requests.
type countingTransport struct {
	bodyTransport
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.bodyTransport.RoundTrip(r)
}

// TestLyingTotalIsRefused answers every page with the same 100 records. Fetch used to trust the
// total and page on — 11 000 to 430 000 requests in 5–10 s, every page kept in memory — until the
// caller's context ended. Now a total of 2^40 is refused as malformed at the first page, and with a
// plausible total of 5 000 (50 pages) a page that repeats another one makes the read inconsistent:
// Fetch gives up with ErrInconsistentPages after its bounded re-reads, reading far fewer pages than
// the total claims.
func TestLyingTotalIsRefused(t *testing.T) {
	t.Parallel()
	recs := make([]string, 100)
	for i := range recs {
		recs[i] = fmt.Sprintf(`{"id":%d,"follow_time":1707292800000}`, i+1)
	}
	day := time.Date(2024, 2, 7, 0, 0, 0, 0, shanghai)
	tests := []struct {
		name    string
		total   int64
		want    error
		says    string
		maxReqs int64
	}{
		// One page read; the client may retry a call, never page on.
		{"implausible total 2^40", 1 << 40, wshoto.ErrMalformed, "not plausible", wshoto.DefaultMaxAttempts},
		// Five reads (wshoto's default MaxReads), each stopped soon after the first repeating page:
		// far below the 250 pages five full reads of 50 pages would take.
		{"plausible total, every page alike", 5000, wshoto.ErrInconsistentPages, "repeats records of other pages", 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"code":0,"msg":"ok","data":{"total":%d,"records":[%s]},"sub_code":"00000"}`, tt.total, strings.Join(recs, ","))
			tr := &countingTransport{bodyTransport: bodyTransport{[]byte(body)}}
			c, err := wshoto.New(wshoto.Config{BaseURL: "http://127.0.0.1:1", AccessToken: staticToken, RateLimit: -1,
				HTTPClient: &http.Client{Transport: tr}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			began := time.Now()
			got, err := c.Fetch(ctx, day, day)
			took := time.Since(began)
			switch {
			case err == nil:
				t.Fatalf("Fetch accepted %d records as a window of %d", len(got), tt.total)
			case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
				t.Fatalf("Fetch was still paging after %d requests and %v: %v", tr.n.Load(), took.Round(time.Millisecond), err)
			case !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says):
				t.Fatalf("Fetch returned %v; want an error wrapping %v that says %q", err, tt.want, tt.says)
			case tr.n.Load() > tt.maxReqs:
				t.Fatalf("Fetch read %d pages before giving up, more than %d", tr.n.Load(), tt.maxReqs)
			}
			noSecret(t, "the error", err.Error())
			figures(t, "total=%d requests=%d took=%v err=%q", tt.total, tr.n.Load(), took.Round(time.Millisecond), err)
		})
	}
}
