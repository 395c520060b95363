package main_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/schema"
	"github.com/followpub/followpub/schema/schematest"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// token is the simulator's fixed token; it must never appear in any output.
const token = "tok-e2e-Zq8Xw3SECRET"

// world is a simulator, a fresh topic on the real broker and a state path: what a user has.
type world struct {
	sim     *wshotosim.Server
	url     string
	brokers []string
	topic   string
	state   string
}

func newWorld(t *testing.T, cfg wshotosim.Config) *world {
	t.Helper()
	brokers := kafkatest.Brokers(t)
	cfg.StaticToken = token
	sim, url := e2etest.Sim(t, cfg)
	return &world{sim: sim, url: url, brokers: brokers, topic: kafkatest.Topic(t, brokers, 3),
		state: filepath.Join(t.TempDir(), "followpub.state")}
}

// env is the followpub environment for this world, plus extra variables.
func (w *world) env(extra ...string) []string {
	return e2etest.Env(append([]string{
		"FOLLOWPUB_API_BASE_URL=" + w.url,
		"FOLLOWPUB_API_ACCESS_TOKEN=" + token,
		"FOLLOWPUB_KAFKA_BROKERS=" + strings.Join(w.brokers, ","),
		"FOLLOWPUB_KAFKA_TOPIC=" + w.topic,
		"FOLLOWPUB_STATE_PATH=" + w.state,
		"FOLLOWPUB_HTTP_ADDR=",
		"FOLLOWPUB_START_FROM=48h",
		"FOLLOWPUB_POLL_INTERVAL=300ms",
		"FOLLOWPUB_API_RATE_LIMIT=200",
	}, extra...)...)
}

// expected returns the ids the simulator shows with follow_time at or after from.
func (w *world) expected(from time.Time) map[string]schema.Record {
	out := map[string]schema.Record{}
	for _, r := range w.sim.Visible() {
		if r.FollowTime >= from.UnixMilli() {
			out[strconv.FormatInt(r.ID, 10)] = r
		}
	}
	return out
}

// assertTopic checks that the topic holds every expected record exactly once, byte for byte, with
// valid values and headers, and returns the messages.
func (w *world) assertTopic(t *testing.T, want map[string]schema.Record) []kafka.Message {
	t.Helper()
	msgs := e2etest.ReadTopic(t, w.brokers, w.topic)
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
	code, out := e2etest.Run(t, 60*time.Second, w.env(), "run", "--once")
	if code != 0 {
		t.Fatalf("run --once exited %d:\n%s", code, out)
	}
	noToken(t, out)
	start := time.Now().Add(-48 * time.Hour)
	w.assertTopic(t, w.expected(start))

	// A second run publishes nothing new.
	code, out = e2etest.Run(t, 60*time.Second, w.env(), "run", "--once")
	if code != 0 {
		t.Fatalf("second run --once exited %d:\n%s", code, out)
	}
	w.assertTopic(t, w.expected(start))

	// watermark show prints the state as one JSON object.
	code, out = e2etest.Run(t, 20*time.Second, w.env(), "watermark", "show")
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

func TestRunWithArrivalsThenSIGTERM(t *testing.T) {
	w := newWorld(t, wshotosim.Config{Count: 100, Span: 12 * time.Hour, Rate: 40, LateFraction: 0.2, LateBy: 10 * time.Minute})
	addr := e2etest.FreeAddr(t)
	p := e2etest.Start(t, w.env("FOLLOWPUB_HTTP_ADDR="+addr), "run")
	if !e2etest.WaitFor(20*time.Second, func() bool { code, _ := e2etest.Get("http://" + addr + "/readyz"); return code == 200 }) {
		t.Fatalf("/readyz never answered 200; output:\n%s", p.Output())
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

	// Freeze the simulator's arrivals so the last records are visible before the final cycle.
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(35 * time.Second); code != 0 {
		t.Fatalf("after SIGTERM followpub exited %d:\n%s", code, p.Output())
	}
	noToken(t, p.Output())
	// Whatever arrived up to the stop and was not published yet is published by the next run.
	// Records that arrive during that run may or may not be in it: expect what was visible before.
	want := w.expected(time.Now().Add(-48 * time.Hour))
	code, out := e2etest.Run(t, 60*time.Second, w.env(), "run", "--once")
	if code != 0 {
		t.Fatalf("run --once after the restart exited %d:\n%s", code, out)
	}
	msgs := e2etest.ReadTopic(t, w.brokers, w.topic)
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
		t.Fatalf("after run + SIGTERM + run --once: %d records lost, %d duplicated (of %d)", lost, dups, len(want))
	}
	t.Logf("%d records published, none lost, none duplicated", len(counts))
}

func TestReplay(t *testing.T) {
	w := newWorld(t, wshotosim.Config{Count: 300, Span: 40 * time.Hour})
	if code, out := e2etest.Run(t, 60*time.Second, w.env(), "run", "--once"); code != 0 {
		t.Fatalf("run --once exited %d:\n%s", code, out)
	}
	first := e2etest.CountKeys(e2etest.ReadTopic(t, w.brokers, w.topic))
	replayFrom := time.Now().Add(-20 * time.Hour).UTC().Truncate(time.Second)
	code, out := e2etest.Run(t, 20*time.Second, w.env(), "watermark", "set", replayFrom.Format(time.RFC3339))
	if code != 0 {
		t.Fatalf("watermark set exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, `"seen":0`) {
		t.Fatalf("watermark set should forget every id; printed %s", out)
	}
	if code, out := e2etest.Run(t, 60*time.Second, w.env(), "run", "--once"); code != 0 {
		t.Fatalf("run --once after the replay exited %d:\n%s", code, out)
	}
	after := e2etest.CountKeys(e2etest.ReadTopic(t, w.brokers, w.topic))
	replayed := 0
	for _, r := range w.sim.Visible() {
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
	if code, out := e2etest.Run(t, 20*time.Second, w.env(), "watermark", "reset"); code != 0 {
		t.Fatalf("watermark reset exited %d:\n%s", code, out)
	}
	_, out = e2etest.Run(t, 20*time.Second, w.env(), "watermark", "show")
	if !strings.Contains(out, `"exists":false`) {
		t.Fatalf("after reset, show printed %s", out)
	}
}

func TestSecondInstanceExitsAtOnce(t *testing.T) {
	w := newWorld(t, wshotosim.Config{Count: 10, Rate: 5})
	first := e2etest.Start(t, w.env(), "run")
	if !e2etest.WaitFor(20*time.Second, func() bool { return strings.Contains(first.Output(), "cycle done") }) {
		t.Fatalf("the first instance never completed a cycle:\n%s", first.Output())
	}
	began := time.Now()
	code, out := e2etest.Run(t, 10*time.Second, w.env(), "run")
	if code != 1 {
		t.Fatalf("second instance exited %d, want 1:\n%s", code, out)
	}
	if time.Since(began) > 5*time.Second {
		t.Fatalf("second instance took %v to give up", time.Since(began))
	}
	if !strings.Contains(out, w.state) || !strings.Contains(out, "in use") {
		t.Fatalf("second instance's message does not name the state and say it is in use:\n%s", out)
	}
	first.Signal(syscall.SIGTERM)
	if code := first.Wait(30 * time.Second); code != 0 {
		t.Fatalf("first instance exited %d after SIGTERM:\n%s", code, first.Output())
	}
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
	code, out := e2etest.Run(t, 30*time.Second, w.env(), "check")
	if code != 0 || strings.Count(out, "ok ") < 4 {
		t.Fatalf("check exited %d:\n%s", code, out)
	}
	noToken(t, out)
	// Unreachable Kafka: check says which part failed, exits 1.
	code, out = e2etest.Run(t, 60*time.Second, w.env("FOLLOWPUB_KAFKA_BROKERS="+e2etest.FreeAddr(t), "FOLLOWPUB_KAFKA_WRITE_TIMEOUT=3s"), "check")
	if code != 1 || !strings.Contains(out, "FAIL  Kafka brokers") {
		t.Fatalf("check against no broker exited %d:\n%s", code, out)
	}
	// A wrong token: the API check fails, without printing the token.
	code, out = e2etest.Run(t, 60*time.Second, w.env("FOLLOWPUB_API_ACCESS_TOKEN=wrong-"+token), "check")
	if code != 1 || !strings.Contains(out, "FAIL  API") {
		t.Fatalf("check with a wrong token exited %d:\n%s", code, out)
	}
	noToken(t, out)
}

func TestTail(t *testing.T) {
	w := newWorld(t, wshotosim.Config{Count: 50, Span: 10 * time.Hour})
	if code, out := e2etest.Run(t, 60*time.Second, w.env(), "run", "--once"); code != 0 {
		t.Fatalf("run --once exited %d:\n%s", code, out)
	}
	want := w.expected(time.Now().Add(-48 * time.Hour))
	code, out := e2etest.Run(t, 60*time.Second, w.env(), "tail", "--from", "beginning", "--json", "--idle", "2s")
	if code != 0 {
		t.Fatalf("tail exited %d:\n%s", code, out)
	}
	got := 0
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") || !strings.Contains(line, `"partition"`) {
			continue
		}
		var ev struct {
			Key     string            `json:"key"`
			Headers map[string]string `json:"headers"`
			Value   json.RawMessage   `json:"value"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("tail printed a bad JSON line %q: %v", line, err)
		}
		if _, ok := want[ev.Key]; !ok || ev.Headers["ce_id"] != ev.Key {
			t.Fatalf("tail printed an unexpected event %s", line)
		}
		got++
	}
	if got != len(want) {
		t.Fatalf("tail printed %d events, want %d:\n%s", got, len(want), out)
	}
}

func TestDemoPrintsEvents(t *testing.T) {
	code, out := e2etest.Run(t, 60*time.Second, e2etest.Env(), "demo", "--duration", "5s")
	if code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, "EMBEDDED") || !strings.Contains(out, "for demonstration only") {
		t.Fatalf("demo does not say its broker is embedded and for demonstration:\n%s", out)
	}
	events := e2etest.Lines(out, " id=")
	if len(events) < 5 {
		t.Fatalf("demo printed %d events in 5 s:\n%s", len(events), out)
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
	_ = fmt.Sprint()
}

func TestHelpFlagPrintsAndStops(t *testing.T) {
	for _, cmd := range []string{"sim", "run", "tail", "demo"} {
		code, out := e2etest.Run(t, 10*time.Second, e2etest.Env(), cmd, "-h")
		if code != 0 || !strings.Contains(out, "-") || strings.Contains(out, "simulator at") || strings.Contains(out, "followpub demo\n") {
			t.Fatalf("followpub %s -h: exit %d, output:\n%s", cmd, code, out)
		}
	}
}
