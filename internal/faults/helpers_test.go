package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/internal/state"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/schema"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// batchSize is the binary's publish batch (cmd does not change poller.Config.BatchSize's
// default): the most a crash may leave published but not committed.
const batchSize = poller.DefaultBatchSize

// Secrets the tests hand to followpub (through e2etest.World); none may ever appear in anything it
// prints or serves.
const (
	staticToken = e2etest.Token
	appID       = e2etest.AppID
	appSecret   = e2etest.AppSecret
	// simTokenPrefix starts every token the simulator issues.
	simTokenPrefix = "simtok_"
)

// proc is a followpub process with its output captured (e2etest.Proc).
type proc = e2etest.Proc

// start starts followpub with args and env.
func start(t testing.TB, env []string, args ...string) *proc { return e2etest.Start(t, env, args...) }

// run runs followpub to completion (at most timeout) and returns its exit status and output.
func run(t testing.TB, timeout time.Duration, env []string, args ...string) (int, string) {
	t.Helper()
	return e2etest.Run(t, timeout, env, args...)
}

// tail returns the last n lines of s, for failure messages.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("… (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// noSecret fails the test if any secret, or any token the simulator issued, appears in outputs.
func noSecret(t testing.TB, what string, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		for _, s := range []string{staticToken, appSecret, simTokenPrefix} {
			if i := strings.Index(o, s); i >= 0 {
				lo, hi := max(0, i-200), min(len(o), i+200)
				t.Fatalf("%s shows a secret (%q…): …%s…", what, s[:6], o[lo:hi])
			}
		}
	}
}

// tally reads a topic incrementally and counts the copies of each key.
type tally struct {
	brokers []string
	topic   string
	next    map[int]int64 // partition → next offset to read
	readers map[int]*kafka.Reader
	counts  map[int64]int
	total   int
}

func newTally(t testing.TB, brokers []string, topic string) *tally {
	ta := &tally{brokers: brokers, topic: topic, next: map[int]int64{}, readers: map[int]*kafka.Reader{}, counts: map[int64]int{}}
	t.Cleanup(func() {
		for _, r := range ta.readers {
			_ = r.Close()
		}
	})
	return ta
}

// sync reads every message appended since the last call and returns them. It rides out a broker
// that is restarting (up to a minute).
func (ta *tally) sync(t testing.TB) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []kafka.Message
	for {
		msgs, err := ta.read(ctx)
		out = append(out, msgs...)
		if err == nil {
			return out
		}
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v", ta.topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// read reads up to the current end offsets. After an error it drops its readers; the next call
// starts again where this one stopped.
func (ta *tally) read(ctx context.Context) ([]kafka.Message, error) {
	ends, err := ta.ends(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the end offsets: %w", err)
	}
	var out []kafka.Message
	for p, last := range ends {
		if last <= ta.next[p] {
			continue
		}
		r := ta.readers[p]
		if r == nil {
			r = kafka.NewReader(kafka.ReaderConfig{Brokers: ta.brokers, Topic: ta.topic, Partition: p,
				MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
			if err := r.SetOffset(ta.next[p]); err != nil {
				return out, err
			}
			ta.readers[p] = r
		}
		for ta.next[p] < last {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				_ = r.Close()
				delete(ta.readers, p)
				return out, fmt.Errorf("partition %d at %d (end %d): %w", p, ta.next[p], last, err)
			}
			ta.next[p] = m.Offset + 1
			out = append(out, m)
			id, err := strconv.ParseInt(string(m.Key), 10, 64)
			if err != nil {
				return out, fmt.Errorf("a message has the key %q, not a follow id", m.Key)
			}
			ta.counts[id]++
			ta.total++
		}
	}
	return out, nil
}

// ends returns the end offset of every partition.
func (ta *tally) ends(ctx context.Context) (map[int]int64, error) {
	conn, err := kafka.DialContext(ctx, "tcp", ta.brokers[0])
	if err != nil {
		return nil, err
	}
	parts, err := conn.ReadPartitions(ta.topic)
	conn.Close()
	if err != nil {
		return nil, err
	}
	ends := map[int]int64{}
	for _, p := range parts {
		leader := net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port))
		pc, err := kafka.DialLeader(ctx, "tcp", leader, ta.topic, p.ID)
		if err != nil {
			return nil, err
		}
		last, err := pc.ReadLastOffset()
		pc.Close()
		if err != nil {
			return nil, err
		}
		ends[p.ID] = last
	}
	return ends, nil
}

// syncUntil reads the topic until it holds every id of want or timeout passes; it returns the ids
// still missing.
func (ta *tally) syncUntil(t testing.TB, want map[int64]schema.Record, timeout time.Duration) []int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ta.sync(t)
		missing := ta.missing(want)
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// missing returns the ids of want that the topic does not hold.
func (ta *tally) missing(want map[int64]schema.Record) []int64 {
	var out []int64
	for id := range want {
		if ta.counts[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// dups returns the number of extra copies (messages beyond the first of their key) and the number
// of keys that have more than one.
func (ta *tally) dups() (copies, keys int) {
	for _, n := range ta.counts {
		if n > 1 {
			copies += n - 1
			keys++
		}
	}
	return copies, keys
}

// unexpected returns the ids in the topic that want does not hold.
func (ta *tally) unexpected(want map[int64]schema.Record) []int64 {
	var out []int64
	for id := range ta.counts {
		if _, ok := want[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

// loadState opens the store at path (no process may hold it), loads it and closes it.
func loadState(path string) (poller.State, error) {
	s, err := state.Open(path)
	if err != nil {
		return poller.State{}, err
	}
	defer s.Close()
	return s.Load(context.Background())
}

// scrape fetches /metrics from addr; it returns "" when the endpoint does not answer.
func scrape(addr string) string {
	code, body := e2etest.Get("http://" + addr + "/metrics")
	if code != http.StatusOK {
		return ""
	}
	return body
}

// metric returns the value of the sample of name whose labels contain every one of labels
// (e.g. `result="ok"`), summed over the matching samples, and whether there was one.
func metric(body, name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		n, lbl, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(lbl, l) {
				match = false
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// ready reports the status code of /readyz (0 when it does not answer).
func ready(addr string) int {
	code, _ := e2etest.Get("http://" + addr + "/readyz")
	return code
}

// inCI reports whether CI is set: there, a test must run or fail, never skip.
func inCI() bool { return os.Getenv("CI") != "" }

// figures logs a line of measured figures; docs/RELIABILITY.md copies them.
func figures(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURES %s: "+format, append([]any{t.Name()}, args...)...)
}

// lines returns the lines of s that contain every one of subs.
func lines(s string, subs ...string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		ok := true
		for _, sub := range subs {
			if !strings.Contains(l, sub) {
				ok = false
			}
		}
		if ok && l != "" {
			out = append(out, l)
		}
	}
	return out
}

// mustID parses a message key as a follow id.
func mustID(t testing.TB, key []byte) int64 {
	t.Helper()
	id, err := strconv.ParseInt(string(key), 10, 64)
	if err != nil {
		t.Fatalf("key %q is not a follow id", key)
	}
	return id
}

// followTime returns the follow_time of a message value.
func followTime(t testing.TB, value []byte) int64 {
	t.Helper()
	r, err := schema.ParseRecord(value)
	if err != nil {
		t.Fatalf("a value in the topic is not a record: %v: %q", err, value)
	}
	return r.FollowTime
}

// shanghai is the API's time zone (followpub's default FOLLOWPUB_API_TIMEZONE).
var shanghai = schema.APILocation()

// pastDays returns the span of the days days before today (in the API's zone) up to the last
// millisecond of yesterday. Initial records placed there lie in days that no longer change, so
// that reading them is consistent whatever the time of day; records that arrive during a test
// land in today.
func pastDays(days int) (from, to time.Time) {
	today := poller.StartOfDay(time.Now(), shanghai)
	return today.AddDate(0, 0, -days).Add(time.Hour), today.Add(-time.Millisecond)
}

// finalRun runs `run --once` to publish everything still due. A page set that keeps changing while
// it is read (records arrive all the time) makes a cycle fail by design (docs/DESIGN.md §4 "paging is not
// trusted"); such a run is retried, up to five times. Any other failure fails the test.
func finalRun(t testing.TB, env []string) string {
	t.Helper()
	var out string
	for attempt := 1; attempt <= 5; attempt++ {
		var code int
		code, out = run(t, 3*time.Minute, env, "run", "--once")
		noSecret(t, "the final run's log", out)
		if code == 0 {
			if attempt > 1 {
				t.Logf("the final run --once completed at attempt %d", attempt)
			}
			return out
		}
		if code != 1 || !strings.Contains(out, "inconsistent page set") {
			t.Fatalf("the final run --once exited %d:\n%s", code, tail(out, 40))
		}
	}
	t.Fatalf("the final run --once failed five times on a changing page set:\n%s", tail(out, 20))
	return ""
}

// endWatcher sums the end offsets of a topic's partitions cheaply, over connections it keeps, to
// see the moment a publication starts.
type endWatcher struct {
	conns []*kafka.Conn
}

func newEndWatcher(t testing.TB, brokers []string, topic string) *endWatcher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	ew := &endWatcher{}
	t.Cleanup(func() {
		for _, c := range ew.conns {
			c.Close()
		}
	})
	for _, p := range parts {
		c, err := kafka.DialLeader(ctx, "tcp", net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port)), topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		ew.conns = append(ew.conns, c)
	}
	return ew
}

// total returns the sum of the end offsets.
func (ew *endWatcher) total(t testing.TB) int64 {
	t.Helper()
	var sum int64
	for _, c := range ew.conns {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		n, err := c.ReadLastOffset()
		// A topic just created may answer "not the leader" for a moment.
		for deadline := time.Now().Add(10 * time.Second); errors.Is(err, kafka.NotLeaderForPartition) && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			n, err = c.ReadLastOffset()
		}
		if err != nil {
			t.Fatalf("reading an end offset: %v", err)
		}
		sum += n
	}
	return sum
}
