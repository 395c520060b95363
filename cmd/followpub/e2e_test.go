package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/internal/modroot"
	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/schema"
	"github.com/followpub/followpub/schema/schematest"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// token is the worlds' fixed token; it must never appear in any output.
const token = e2etest.Token

// newWorld is a simulator, a fresh topic on the real broker and a state path, with START_FROM two
// days back: what a user has.
func newWorld(t *testing.T, cfg wshotosim.Config) *e2etest.World {
	t.Helper()
	return e2etest.NewWorld(t, cfg, time.Now().Add(-48*time.Hour))
}

// byKey re-keys records by their Kafka key, the follow id in decimal.
func byKey(recs map[int64]schema.Record) map[string]schema.Record {
	out := make(map[string]schema.Record, len(recs))
	for id, r := range recs {
		out[strconv.FormatInt(id, 10)] = r
	}
	return out
}

// assertTopic checks that the topic holds every expected record exactly once, byte for byte, with
// valid values and headers, and returns the messages.
func assertTopic(t *testing.T, w *e2etest.World, want map[string]schema.Record) []kafka.Message {
	t.Helper()
	msgs := e2etest.ReadTopic(t, w.Brokers, w.Topic)
	counts := e2etest.CountKeys(msgs)
	for id := range want {
		if counts[id] != 1 {
			t.Errorf("id %s is in the topic %d times, want once", id, counts[id])
		}
	}
	for id, n := range counts {
		if _, ok := want[id]; !ok {
			t.Errorf("id %s is in the topic %d times but was not expected", id, n)
		}
	}
	for _, m := range msgs {
		rec, ok := want[string(m.Key)]
		if !ok {
			continue
		}
		if string(m.Value) != string(rec.Raw) {
			t.Fatalf("value of %s differs from the API's record:\n got %s\nwant %s", m.Key, m.Value, rec.Raw)
		}
		if err := schematest.Validate(m.Value); err != nil {
			t.Fatalf("value of %s does not validate: %v", m.Key, err)
		}
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		if h["ce_id"] != string(m.Key) || h["ce_specversion"] != "1.0" || h["ce_type"] != "com.wshoto.crm.follow.system" ||
			h["ce_time"] != schema.FormatTime(rec.FollowTime) || h["content-type"] != "application/json" || h["ce_source"] == "" {
			t.Fatalf("headers of %s: %v", m.Key, h)
		}
	}
	return msgs
}

func noToken(t *testing.T, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		if strings.Contains(o, token) {
			t.Fatalf("the access token appears in the output:\n%s", o)
		}
	}
}

func TestRunOnce(t *testing.T) {
	w := newWorld(t, wshotosim.Config{Count: 400, Span: 40 * time.Hour, Order: "shuffled"})
	code, out := e2etest.Run(t, 60*time.Second, w.Env(), "run", "--once")
	if code != 0 {
		t.Fatalf("run --once exited %d:\n%s", code, out)
	}
	noToken(t, out)
	assertTopic(t, w, byKey(w.Want()))

	// A second run publishes nothing new.
	code, out = e2etest.Run(t, 60*time.Second, w.Env(), "run", "--once")
	if code != 0 {
		t.Fatalf("second run --once exited %d:\n%s", code, out)
	}
	assertTopic(t, w, byKey(w.Want()))

	// watermark show prints the state as one JSON object.
	code, out = e2etest.Run(t, 20*time.Second, w.Env(), "watermark", "show")
	if code != 0 {
		t.Fatalf("watermark show exited %d:\n%s", code, out)
	}
	var st struct {
		Watermark   string `json:"watermark"`
		WatermarkMS int64  `json:"watermark_ms"`
		Floor       string `json:"floor"`
		Seen        int    `json:"seen"`
		WindowStart string `json:"window_start"`
		UpdatedAt   string `json:"updated_at"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &st); err != nil {
		t.Fatalf("watermark show printed %q: %v", out, err)
	}
	if st.WatermarkMS == 0 || st.Seen == 0 || st.UpdatedAt == "" || st.WindowStart == "" {
		t.Fatalf("watermark show = %+v", st)
	}
	noToken(t, out)
}

func TestRunWithArrivalsThenSIGTERM(t *testing.T) { runWithArrivalsThenSignal(t, syscall.SIGTERM) }

func TestRunWithArrivalsThenSIGINT(t *testing.T) { runWithArrivalsThenSignal(t, syscall.SIGINT) }

// runWithArrivalsThenSignal runs followpub while records arrive, stops it with sig, and checks that
// it exits 0 within SHUTDOWN_TIMEOUT and that a following run --once leaves every record in the
// topic exactly once.
func runWithArrivalsThenSignal(t *testing.T, sig syscall.Signal) {
	const shutdownTimeout = 15 * time.Second
	w := newWorld(t, wshotosim.Config{Count: 100, Span: 12 * time.Hour, Rate: 40, LateFraction: 0.2, LateBy: 10 * time.Minute})
	addr := e2etest.FreeAddr(t)
	instance := "e2e-" + sig.String()
	p := e2etest.Start(t, w.Env("FOLLOWPUB_HTTP_ADDR="+addr, "FOLLOWPUB_SHUTDOWN_TIMEOUT="+shutdownTimeout.String(), "FOLLOWPUB_INSTANCE_ID="+instance), "run")
	if !e2etest.WaitFor(20*time.Second, func() bool { code, _ := e2etest.Get("http://" + addr + "/readyz"); return code == 200 }) {
		t.Fatalf("/readyz never answered 200; output:\n%s", p.Output())
	}
	var status struct {
		Instance struct {
			ID string `json:"id"`
		} `json:"instance"`
	}
	if _, body := e2etest.Get("http://" + addr + "/status"); json.Unmarshal([]byte(body), &status) != nil || status.Instance.ID != instance {
		t.Errorf("/status does not name the instance %q (FOLLOWPUB_INSTANCE_ID):\n%s", instance, body)
	}
	if code, _ := e2etest.Get("http://" + addr + "/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	time.Sleep(2 * time.Second) // records keep arriving
	code, metrics := e2etest.Get("http://" + addr + "/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, name := range []string{"followpub_records_published_total", "followpub_api_requests_total", "followpub_watermark_timestamp_seconds",
		"followpub_cycles_total", "followpub_kafka_write_duration_seconds", "followpub_lag_seconds", "followpub_records_duplicate_total"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	noToken(t, metrics)

	// Stop followpub while records keep arriving (every 25 ms): the signal lands in a cycle or
	// between two, and the cycle in progress must stop without committing past what Kafka
	// acknowledged.
	signalled := time.Now()
	p.Signal(sig)
	if code := p.Wait(shutdownTimeout + 5*time.Second); code != 0 {
		t.Fatalf("after %v followpub exited %d:\n%s", sig, code, p.Output())
	}
	if took := time.Since(signalled); took > shutdownTimeout {
		t.Fatalf("after %v followpub took %v to exit, more than FOLLOWPUB_SHUTDOWN_TIMEOUT=%v", sig, took, shutdownTimeout)
	}
	if !strings.Contains(p.Output(), `"msg":"followpub stopped"`) {
		t.Fatalf("after %v followpub did not log that it stopped:\n%s", sig, p.Output())
	}
	noToken(t, p.Output())
	// Whatever arrived up to the stop and was not published yet is published by the next run.
	// Records that arrive during that run may or may not be in it: expect what was visible before.
	want := byKey(w.Want())
	code, out := e2etest.Run(t, 60*time.Second, w.Env(), "run", "--once")
	if code != 0 {
		t.Fatalf("run --once after the restart exited %d:\n%s", code, out)
	}
	msgs := e2etest.ReadTopic(t, w.Brokers, w.Topic)
	counts := e2etest.CountKeys(msgs)
	lost := 0
	for id, r := range want {
		if counts[id] == 0 {
			lost++
			t.Errorf("lost: id %s follow_time %s", id, r.Time())
		}
	}
	dups := 0
	for _, n := range counts {
		if n > 1 {
			dups++
		}
	}
	if lost > 0 || dups > 0 {
		t.Fatalf("after run + %v + run --once: %d records lost, %d duplicated (of %d)", sig, lost, dups, len(want))
	}
	t.Logf("%d records published, none lost, none duplicated", len(counts))
}

func TestReplay(t *testing.T) {
	w := newWorld(t, wshotosim.Config{Count: 300, Span: 40 * time.Hour})
	code, out := e2etest.Run(t, 60*time.Second, w.Env(), "run", "--once")
	if code != 0 {
		t.Fatalf("run --once exited %d:\n%s", code, out)
	}
	noToken(t, out)
	first := e2etest.CountKeys(e2etest.ReadTopic(t, w.Brokers, w.Topic))
	replayFrom := time.Now().Add(-20 * time.Hour).UTC().Truncate(time.Second)
	code, out = e2etest.Run(t, 20*time.Second, w.Env(), "watermark", "set", replayFrom.Format(time.RFC3339))
	if code != 0 {
		t.Fatalf("watermark set exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, `"seen":0`) {
		t.Fatalf("watermark set should forget every id; printed %s", out)
	}
	noToken(t, out)
	code, out = e2etest.Run(t, 60*time.Second, w.Env(), "run", "--once")
	if code != 0 {
		t.Fatalf("run --once after the replay exited %d:\n%s", code, out)
	}
	noToken(t, out)
	after := e2etest.CountKeys(e2etest.ReadTopic(t, w.Brokers, w.Topic))
	replayed := 0
	for _, r := range w.Sim.Visible() {
		id := strconv.FormatInt(r.ID, 10)
		if first[id] == 0 {
			continue // not in the first window
		}
		want := 1
		if r.FollowTime >= replayFrom.UnixMilli() {
			want = 2
			replayed++
		}
		if after[id] != want {
			t.Fatalf("id %s (follow_time %s) is in the topic %d times after the replay from %s, want %d",
				id, r.Time(), after[id], replayFrom, want)
		}
	}
	if replayed == 0 {
		t.Fatal("the replay window held no record: the test proves nothing")
	}
	t.Logf("replay from %s published %d records once more, nothing older", replayFrom, replayed)

	// reset deletes the state; show then reports none.
	code, out = e2etest.Run(t, 20*time.Second, w.Env(), "watermark", "reset")
	if code != 0 {
		t.Fatalf("watermark reset exited %d:\n%s", code, out)
	}
	noToken(t, out)
	_, out = e2etest.Run(t, 20*time.Second, w.Env(), "watermark", "show")
	if !strings.Contains(out, `"exists":false`) {
		t.Fatalf("after reset, show printed %s", out)
	}
	noToken(t, out)
}

func TestSecondInstanceExitsAtOnce(t *testing.T) {
	w := newWorld(t, wshotosim.Config{Count: 10, Rate: 5})
	first := e2etest.Start(t, w.Env(), "run")
	if !e2etest.WaitFor(20*time.Second, func() bool { return strings.Contains(first.Output(), "cycle done") }) {
		t.Fatalf("the first instance never completed a cycle:\n%s", first.Output())
	}
	began := time.Now()
	code, out := e2etest.Run(t, 10*time.Second, w.Env(), "run")
	if code != 1 {
		t.Fatalf("second instance exited %d, want 1:\n%s", code, out)
	}
	if time.Since(began) > 5*time.Second {
		t.Fatalf("second instance took %v to give up", time.Since(began))
	}
	if !strings.Contains(out, w.State) || !strings.Contains(out, "in use") {
		t.Fatalf("second instance's message does not name the state path %s and say it is in use:\n%s", w.State, out)
	}
	noToken(t, out)
	first.Signal(syscall.SIGTERM)
	if code := first.Wait(30 * time.Second); code != 0 {
		t.Fatalf("first instance exited %d after SIGTERM:\n%s", code, first.Output())
	}
	noToken(t, first.Output())
}

func TestBadConfigurationExits2NamingTheVariable(t *testing.T) {
	tests := []struct {
		env  string
		name string
	}{
		{"FOLLOWPUB_API_PAGE_SIZE=101", "FOLLOWPUB_API_PAGE_SIZE"},
		{"FOLLOWPUB_API_PAGE_SIZE=ten", "FOLLOWPUB_API_PAGE_SIZE"},
		{"FOLLOWPUB_POLL_INTERVAL=5 minutes", "FOLLOWPUB_POLL_INTERVAL"},
		{"FOLLOWPUB_API_TIMEZONE=Mars/Olympus", "FOLLOWPUB_API_TIMEZONE"},
		{"FOLLOWPUB_START_FROM=last tuesday", "FOLLOWPUB_START_FROM"},
		{"FOLLOWPUB_API_BASE_URL=http://api.example.com", "FOLLOWPUB_API_BASE_URL"},
		{"FOLLOWPUB_KAFKA_COMPRESSION=brotli", "FOLLOWPUB_KAFKA_COMPRESSION"},
		{"FOLLOWPUB_KAFKA_BROKERS=nohostport", "FOLLOWPUB_KAFKA_BROKERS"},
	}
	base := e2etest.Env("FOLLOWPUB_API_ACCESS_TOKEN="+token, "FOLLOWPUB_STATE_PATH="+filepath.Join(t.TempDir(), "s"))
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			code, out := e2etest.Run(t, 10*time.Second, append(base, tt.env), "run", "--once")
			if code != 2 || !strings.Contains(out, tt.name) {
				t.Fatalf("exit %d, output %q: want 2 and the variable named", code, out)
			}
			noToken(t, out)
		})
	}
	t.Run("app id without secret", func(t *testing.T) {
		code, out := e2etest.Run(t, 10*time.Second, e2etest.Env("FOLLOWPUB_API_APP_ID=x"), "check")
		if code != 2 || !strings.Contains(out, "FOLLOWPUB_API_APP_SECRET") {
			t.Fatalf("exit %d, output %q", code, out)
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		code, out := e2etest.Run(t, 10*time.Second, base, "run", "--twice")
		if code != 2 || !strings.Contains(out, "twice") {
			t.Fatalf("exit %d, output %q", code, out)
		}
	})
}

func TestCheck(t *testing.T) {
	w := newWorld(t, wshotosim.Config{Count: 10})
	code, out := e2etest.Run(t, 30*time.Second, w.Env(), "check")
	if code != 0 || strings.Count(out, "ok ") < 4 {
		t.Fatalf("check exited %d:\n%s", code, out)
	}
	noToken(t, out)
	// Unreachable Kafka: check says which part failed, exits 1.
	code, out = e2etest.Run(t, 60*time.Second, w.Env("FOLLOWPUB_KAFKA_BROKERS="+e2etest.FreeAddr(t), "FOLLOWPUB_KAFKA_WRITE_TIMEOUT=3s"), "check")
	if code != 1 || !strings.Contains(out, "FAIL  Kafka brokers") {
		t.Fatalf("check against no broker exited %d:\n%s", code, out)
	}
	// A wrong token: the API check fails, without printing the token.
	code, out = e2etest.Run(t, 60*time.Second, w.Env("FOLLOWPUB_API_ACCESS_TOKEN=wrong-"+token), "check")
	if code != 1 || !strings.Contains(out, "FAIL  API") {
		t.Fatalf("check with a wrong token exited %d:\n%s", code, out)
	}
	noToken(t, out)
}

// tailEvent is one event as tail --json prints it.
type tailEvent struct {
	Key       string            `json:"key"`
	Partition int               `json:"partition"`
	Offset    int64             `json:"offset"`
	Headers   map[string]string `json:"headers"`
	Value     json.RawMessage   `json:"value"`
}

// tailJSON returns the events in the output of tail --json, skipping its other lines and an
// unfinished last line.
func tailJSON(t *testing.T, out string) []tailEvent {
	t.Helper()
	lines := strings.Split(out, "\n")
	var evs []tailEvent
	for _, line := range lines[:len(lines)-1] {
		if !strings.HasPrefix(line, "{") || !strings.Contains(line, `"partition"`) {
			continue
		}
		var ev tailEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("tail printed a bad JSON line %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// position is where a message is in the topic.
type position struct {
	partition int
	offset    int64
}

func byPosition(msgs []kafka.Message) map[position]kafka.Message {
	out := make(map[position]kafka.Message, len(msgs))
	for _, m := range msgs {
		out[position{m.Partition, m.Offset}] = m
	}
	return out
}

// assertPrinted checks that tail printed every wanted message once, as it is in Kafka, and
// nothing else.
func assertPrinted(t *testing.T, what string, got []tailEvent, want map[position]kafka.Message) {
	t.Helper()
	seen := map[position]bool{}
	for _, ev := range got {
		p := position{ev.Partition, ev.Offset}
		m, ok := want[p]
		switch {
		case !ok:
			t.Fatalf("%s printed partition %d offset %d (key %s), which it should not have", what, p.partition, p.offset, ev.Key)
		case seen[p]:
			t.Fatalf("%s printed partition %d offset %d twice", what, p.partition, p.offset)
		case ev.Key != string(m.Key) || ev.Headers["ce_id"] != ev.Key || string(ev.Value) != string(m.Value):
			t.Fatalf("%s printed partition %d offset %d as key %s ce_id %s value %s; Kafka holds key %s value %s",
				what, p.partition, p.offset, ev.Key, ev.Headers["ce_id"], ev.Value, m.Key, m.Value)
		}
		seen[p] = true
	}
	if len(seen) != len(want) {
		t.Fatalf("%s printed %d of the %d events it should have", what, len(seen), len(want))
	}
}

// tailText is a line of tail's text output.
var tailText = regexp.MustCompile(`^key=(\S+) partition=(\d+) offset=(\d+) ce_time=(\S+) value=(.*)$`)

func TestTail(t *testing.T) {
	w := newWorld(t, wshotosim.Config{Count: 50, Span: 10 * time.Hour})
	if code, out := e2etest.Run(t, 60*time.Second, w.Env(), "run", "--once"); code != 0 {
		t.Fatalf("run --once exited %d:\n%s", code, out)
	}
	want := byKey(w.Want())
	first := byPosition(e2etest.ReadTopic(t, w.Brokers, w.Topic))
	if len(first) != len(want) {
		t.Fatalf("the topic holds %d messages, want %d", len(first), len(want))
	}

	// --from beginning --json: every event, as JSON lines.
	code, out := e2etest.Run(t, 60*time.Second, w.Env(), "tail", "--from", "beginning", "--json", "--idle", "2s")
	if code != 0 {
		t.Fatalf("tail exited %d:\n%s", code, out)
	}
	noToken(t, out)
	evs := tailJSON(t, out)
	for _, ev := range evs {
		if _, ok := want[ev.Key]; !ok {
			t.Fatalf("tail printed an unexpected event %+v", ev)
		}
	}
	assertPrinted(t, "tail --from beginning --json", evs, first)
	if !strings.Contains(out, fmt.Sprintf("followpub tail: %d events", len(first))) {
		t.Fatalf("tail does not say it printed %d events:\n%s", len(first), out)
	}

	// Text: one line per event with key, partition, offset, ce_time and the value as it is.
	code, out = e2etest.Run(t, 60*time.Second, w.Env(), "tail", "--from", "beginning", "--idle", "2s")
	if code != 0 {
		t.Fatalf("tail (text) exited %d:\n%s", code, out)
	}
	noToken(t, out)
	printed := map[position]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := tailText.FindStringSubmatch(line)
		if f == nil {
			continue
		}
		part, _ := strconv.Atoi(f[2])
		off, _ := strconv.ParseInt(f[3], 10, 64)
		p := position{part, off}
		m, ok := first[p]
		if !ok || printed[p] {
			t.Fatalf("tail (text) printed partition %d offset %d, which is not in the topic or came twice: %s", part, off, line)
		}
		printed[p] = true
		rec := want[string(m.Key)]
		if f[1] != string(m.Key) || f[4] != schema.FormatTime(rec.FollowTime) || f[5] != string(m.Value) {
			t.Fatalf("tail (text) printed\n%s\nfor key %s ce_time %s value %s", line, m.Key, schema.FormatTime(rec.FollowTime), m.Value)
		}
	}
	if len(printed) != len(first) {
		t.Fatalf("tail (text) printed %d events, want %d:\n%s", len(printed), len(first), out)
	}

	// --from OFFSET: that offset on in every partition.
	fromOffset := map[position]kafka.Message{}
	for p, m := range first {
		if p.offset >= 2 {
			fromOffset[p] = m
		}
	}
	if len(fromOffset) == 0 || len(fromOffset) == len(first) {
		t.Fatalf("%d of %d messages are at offset 2 or more: --from 2 proves nothing", len(fromOffset), len(first))
	}
	code, out = e2etest.Run(t, 60*time.Second, w.Env(), "tail", "--from", "2", "--json", "--idle", "2s")
	if code != 0 {
		t.Fatalf("tail --from 2 exited %d:\n%s", code, out)
	}
	noToken(t, out)
	assertPrinted(t, "tail --from 2", tailJSON(t, out), fromOffset)

	// --from end prints only what is published after tail started, and --from TIME only what Kafka
	// received at or after TIME: a replay publishes part of the window once more, after both.
	time.Sleep(10 * time.Millisecond)
	since := time.Now()
	time.Sleep(10 * time.Millisecond)
	tail := e2etest.Start(t, w.Env(), "tail", "--from", "end", "--json")
	if !e2etest.WaitFor(30*time.Second, func() bool { return strings.Contains(tail.Output(), "followpub tail: reading 3 partitions") }) {
		t.Fatalf("tail --from end never said it was reading:\n%s", tail.Output())
	}
	replayFrom := time.Now().Add(-5 * time.Hour).UTC().Truncate(time.Second)
	if code, out := e2etest.Run(t, 20*time.Second, w.Env(), "watermark", "set", replayFrom.Format(time.RFC3339)); code != 0 {
		t.Fatalf("watermark set exited %d:\n%s", code, out)
	}
	if code, out := e2etest.Run(t, 60*time.Second, w.Env(), "run", "--once"); code != 0 {
		t.Fatalf("run --once after the replay exited %d:\n%s", code, out)
	}
	replayed := map[position]kafka.Message{}
	for p, m := range byPosition(e2etest.ReadTopic(t, w.Brokers, w.Topic)) {
		if _, ok := first[p]; !ok {
			replayed[p] = m
		}
	}
	if len(replayed) == 0 || len(replayed) == len(first) {
		t.Fatalf("the replay published %d of %d records: --from end and --from TIME prove nothing", len(replayed), len(first))
	}
	if !e2etest.WaitFor(30*time.Second, func() bool { return len(tailJSON(t, tail.Output())) >= len(replayed) }) {
		t.Fatalf("tail --from end printed %d events, want %d:\n%s", len(tailJSON(t, tail.Output())), len(replayed), tail.Output())
	}
	tail.Signal(syscall.SIGINT)
	if code := tail.Wait(20 * time.Second); code != 0 {
		t.Fatalf("tail exited %d after SIGINT:\n%s", code, tail.Output())
	}
	out = tail.Output()
	noToken(t, out)
	assertPrinted(t, "tail --from end", tailJSON(t, out), replayed)
	if !strings.Contains(out, fmt.Sprintf("followpub tail: %d events", len(replayed))) {
		t.Fatalf("tail --from end does not say it printed %d events:\n%s", len(replayed), out)
	}

	code, out = e2etest.Run(t, 60*time.Second, w.Env(), "tail", "--from", since.Format(time.RFC3339Nano), "--json", "--max", strconv.Itoa(len(replayed)))
	if code != 0 {
		t.Fatalf("tail --from %s exited %d:\n%s", since.Format(time.RFC3339Nano), code, out)
	}
	noToken(t, out)
	assertPrinted(t, "tail --from TIME", tailJSON(t, out), replayed)
}

// statusLine is the demo's running count, rate and lag.
var statusLine = regexp.MustCompile(`── (\d+) events, \d+\.\d/s, lag of the last one \S+ ──`)

func TestDemoPrintsEvents(t *testing.T) {
	code, out := e2etest.Run(t, 60*time.Second, e2etest.Env("FOLLOWPUB_API_ACCESS_TOKEN="+token), "demo", "--duration", "5s")
	if code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, out)
	}
	noToken(t, out)
	if !strings.Contains(out, "EMBEDDED") || !strings.Contains(out, "for demonstration only") {
		t.Fatalf("demo does not say its broker is embedded and for demonstration:\n%s", out)
	}
	events := e2etest.Lines(out, " id=")
	if len(events) < 5 {
		t.Fatalf("demo printed %d events in 5 s:\n%s", len(events), out)
	}
	// A status line with the first event, every 3 s after, and one at the end with the total.
	status := statusLine.FindAllStringSubmatch(out, -1)
	if len(status) < 2 {
		t.Fatalf("demo printed %d count/rate/lag lines, want one while it ran and one at the end:\n%s", len(status), out)
	}
	if n, _ := strconv.Atoi(status[len(status)-1][1]); n != len(events) {
		t.Fatalf("demo's last status line counts %d events, it printed %d:\n%s", n, len(events), out)
	}
}

func TestDemoStopsOnSIGINT(t *testing.T) {
	p := e2etest.Start(t, e2etest.Env("FOLLOWPUB_API_ACCESS_TOKEN="+token), "demo")
	if !e2etest.WaitFor(60*time.Second, func() bool { return len(e2etest.Lines(p.Output(), " id=")) >= 3 }) {
		t.Fatalf("demo printed no events:\n%s", p.Output())
	}
	p.Signal(syscall.SIGINT)
	if code := p.Wait(20 * time.Second); code != 0 {
		t.Fatalf("demo exited %d after SIGINT:\n%s", code, p.Output())
	}
	out := p.Output()
	noToken(t, out)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !statusLine.MatchString(lines[len(lines)-1]) {
		t.Fatalf("demo did not end with its summary after SIGINT:\n%s", out)
	}
	if strings.Contains(out, "followpub:") {
		t.Fatalf("demo reported an error after SIGINT:\n%s", out)
	}
}

func TestDemoReportsAnUnreachableBroker(t *testing.T) {
	addr := e2etest.FreeAddr(t) // nothing listens there
	began := time.Now()
	code, out := e2etest.Run(t, 60*time.Second, e2etest.Env("FOLLOWPUB_KAFKA_BROKERS="+addr), "demo")
	if code != 1 {
		t.Fatalf("demo against no broker exited %d, want 1:\n%s", code, out)
	}
	for _, s := range []string{"followpub: demo: checking Kafka at FOLLOWPUB_KAFKA_BROKERS=" + addr, "check that a broker runs there", "unset FOLLOWPUB_KAFKA_BROKERS"} {
		if !strings.Contains(out, s) {
			t.Fatalf("demo's message does not say %q:\n%s", s, out)
		}
	}
	if took := time.Since(began); took > 30*time.Second {
		t.Fatalf("demo took %v to give up on an unreachable broker", took)
	}
	if len(e2etest.Lines(out, " id=")) > 0 {
		t.Fatalf("demo printed events without a broker:\n%s", out)
	}
}

func TestRunLogFormatAutoAndLevel(t *testing.T) {
	w := newWorld(t, wshotosim.Config{Count: 30, Span: 5 * time.Hour})
	// e2etest.Env asks for JSON; here auto decides, and the output is a pipe, not a terminal.
	code, out := e2etest.Run(t, 60*time.Second, w.Env("FOLLOWPUB_LOG_FORMAT=auto", "FOLLOWPUB_LOG_LEVEL=debug"), "run", "--once")
	if code != 0 {
		t.Fatalf("run --once exited %d:\n%s", code, out)
	}
	noToken(t, out)
	lines := e2etest.JSONLines(t, out)
	levels := map[string]int{}
	var start []map[string]any
	for _, l := range lines {
		levels[fmt.Sprint(l["level"])]++
		if l["msg"] == "followpub starting" {
			start = append(start, l)
		}
	}
	if levels["DEBUG"] == 0 || levels["INFO"] == 0 {
		t.Fatalf("LOG_LEVEL=debug logged %v lines by level, want DEBUG and INFO:\n%s", levels, out)
	}
	if len(start) != 1 {
		t.Fatalf("%d start-up lines, want one:\n%s", len(start), out)
	}
	for k, v := range map[string]any{"api_access_token": "***", "api_base_url": w.APIURL, "kafka_topic": w.Topic,
		"kafka_brokers": strings.Join(w.Brokers, ","), "state_path": w.State, "start_from": w.Start.Format(time.RFC3339), "once": true} {
		if start[0][k] != v {
			t.Errorf("start-up line: %s = %v, want %v", k, start[0][k], v)
		}
	}

	code, out = e2etest.Run(t, 60*time.Second, w.Env("FOLLOWPUB_LOG_FORMAT=auto", "FOLLOWPUB_LOG_LEVEL=warn"), "run", "--once")
	if code != 0 {
		t.Fatalf("run --once exited %d:\n%s", code, out)
	}
	noToken(t, out)
	for _, l := range e2etest.JSONLines(t, out) {
		if l["level"] == "INFO" || l["level"] == "DEBUG" {
			t.Fatalf("LOG_LEVEL=warn logged a %s line:\n%s", l["level"], out)
		}
	}
}

// documentedMetric is a row of README.md's metrics table.
type documentedMetric struct {
	typ    string
	labels string // comma-separated, sorted
	// kafkaOnly: the row says "`STATE_STORE=kafka` only", so a file-store instance must not serve it.
	kafkaOnly bool
}

// readmeMetrics returns the metrics README.md's "Metrics and health" section lists.
func readmeMetrics(t *testing.T) map[string]documentedMetric {
	t.Helper()
	root, err := modroot.Dir()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, "\n## Metrics and health")
	if i < 0 {
		t.Fatal(`README.md has no "## Metrics and health" section`)
	}
	section := readme[i+1:]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	row := regexp.MustCompile("(?m)^\\| `(followpub_\\w+)(?:\\{([\\w,]+)\\})?` \\| (\\w+) \\|( `STATE_STORE=kafka` only)?")
	out := map[string]documentedMetric{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		labels := strings.Split(m[2], ",")
		sort.Strings(labels)
		out[m[1]] = documentedMetric{typ: m[3], labels: strings.Trim(strings.Join(labels, ","), ","), kafkaOnly: m[4] != ""}
	}
	if len(out) < 10 {
		t.Fatalf("found %d metrics in README.md's table; has its format changed?\n%s", len(out), section)
	}
	return out
}

// servedMetrics returns the followpub_ metrics of a /metrics page with their types and label names.
func servedMetrics(page string) map[string]documentedMetric {
	types := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (followpub_\w+) (\w+)$`).FindAllStringSubmatch(page, -1) {
		types[m[1]] = m[2]
	}
	labels := map[string]map[string]bool{}
	sample := regexp.MustCompile(`(?m)^(followpub_\w+)(?:\{(.*)\})? `)
	labelName := regexp.MustCompile(`(\w+)="`)
	for _, m := range sample.FindAllStringSubmatch(page, -1) {
		name := m[1]
		if _, ok := types[name]; !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				name = strings.TrimSuffix(name, suffix)
			}
		}
		if labels[name] == nil {
			labels[name] = map[string]bool{}
		}
		for _, l := range labelName.FindAllStringSubmatch(m[2], -1) {
			if l[1] != "le" {
				labels[name][l[1]] = true
			}
		}
	}
	out := map[string]documentedMetric{}
	for name, typ := range types {
		var ls []string
		for l := range labels[name] {
			ls = append(ls, l)
		}
		sort.Strings(ls)
		out[name] = documentedMetric{typ: typ, labels: strings.Join(ls, ",")}
	}
	return out
}

func TestMetricsMatchREADME(t *testing.T) {
	documented := readmeMetrics(t)
	w := newWorld(t, wshotosim.Config{Count: 30, Span: 5 * time.Hour})
	addr := e2etest.FreeAddr(t)
	p := e2etest.Start(t, w.Env("FOLLOWPUB_HTTP_ADDR="+addr), "run")
	if !e2etest.WaitFor(20*time.Second, func() bool { code, _ := e2etest.Get("http://" + addr + "/readyz"); return code == 200 }) {
		t.Fatalf("/readyz never answered 200; output:\n%s", p.Output())
	}
	code, page := e2etest.Get("http://" + addr + "/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	served := servedMetrics(page)
	for name, doc := range documented {
		got, ok := served[name]
		got.kafkaOnly = doc.kafkaOnly
		switch {
		case doc.kafkaOnly && ok:
			t.Errorf("README.md lists %s as STATE_STORE=kafka only; a file-store /metrics serves it", name)
		case doc.kafkaOnly:
		case !ok:
			t.Errorf("README.md lists %s; /metrics does not serve it", name)
		case got != doc:
			t.Errorf("%s: README.md says %s with labels {%s}; /metrics serves a %s with labels {%s}", name, doc.typ, doc.labels, got.typ, got.labels)
		}
	}
	for name := range served {
		if _, ok := documented[name]; !ok {
			t.Errorf("/metrics serves %s; README.md does not list it", name)
		}
	}
	t.Logf("README.md lists %d followpub_ metrics; /metrics serves %d", len(documented), len(served))
	// "Plus the Go runtime and process collectors."
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(page, "\n"+name+" ") {
			t.Errorf("/metrics has no %s", name)
		}
	}
	noToken(t, page)
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(35 * time.Second); code != 0 {
		t.Fatalf("after SIGTERM followpub exited %d:\n%s", code, p.Output())
	}
}

func TestEnvAndVersion(t *testing.T) {
	code, out := e2etest.Run(t, 10*time.Second, e2etest.Env(), "env")
	if code != 0 {
		t.Fatalf("env exited %d", code)
	}
	for _, v := range []string{"FOLLOWPUB_API_BASE_URL", "FOLLOWPUB_KAFKA_BROKERS", "FOLLOWPUB_LOOKBACK", "FOLLOWPUB_STATE_PATH", "FOLLOWPUB_SHUTDOWN_TIMEOUT"} {
		if !strings.Contains(out, v) {
			t.Errorf("followpub env does not list %s", v)
		}
	}
	code, out = e2etest.Run(t, 10*time.Second, e2etest.Env(), "version")
	if code != 0 || !strings.HasPrefix(out, "followpub ") {
		t.Fatalf("version exited %d: %q", code, out)
	}
	if code, _ := e2etest.Run(t, 10*time.Second, e2etest.Env(), "frobnicate"); code != 2 {
		t.Fatalf("an unknown command exited %d, want 2", code)
	}
}

func TestMakeBuildStampsTheVersion(t *testing.T) {
	root, err := modroot.Dir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "followpub")
	cmd := exec.Command("make", "-s", "build", "BIN="+bin, "VERSION=v9.9.9-stamp", "COMMIT=abc1234")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "followpub v9.9.9-stamp (commit abc1234)" {
		t.Fatalf("followpub version from make build: %q, %v; want the version and commit make was given", out, err)
	}
}

func TestHelpFlagPrintsAndStops(t *testing.T) {
	for _, cmd := range []string{"sim", "run", "tail", "demo"} {
		code, out := e2etest.Run(t, 10*time.Second, e2etest.Env(), cmd, "-h")
		if code != 0 || !strings.Contains(out, "-") || strings.Contains(out, "simulator at") || strings.Contains(out, "followpub demo\n") {
			t.Fatalf("followpub %s -h: exit %d, output:\n%s", cmd, code, out)
		}
	}
}
