package e2etest

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/schema"
)

// Secrets a World hands to followpub; none may ever appear in anything followpub prints or serves.
const (
	// Token is the simulator's fixed access token (FOLLOWPUB_API_ACCESS_TOKEN).
	Token = "tok-e2e-Zq8Xw3NEVERPRINT"
	// AppID and AppSecret are the credentials the simulator's token endpoint accepts.
	AppID     = "e2e-app"
	AppSecret = "appsecret-Qx7Vb2NEVERPRINT"
)

// World is what a user of followpub has: an API (the simulator, possibly behind a wrapper), a
// fresh three-partition topic on a real broker, and a state path.
type World struct {
	Sim     *wshotosim.Server
	SimURL  string // the simulator itself
	APIURL  string // what followpub is pointed at; a test may point it at a proxy instead
	Brokers []string
	Topic   string
	State   string
	// Start is START_FROM, a fixed instant: the records a run must publish are exactly those with
	// follow_time at or after it.
	Start time.Time
	// Tokens makes followpub fetch tokens with AppID and AppSecret instead of using Token.
	Tokens bool
}

// WorldOption changes what NewWorld builds.
type WorldOption func(*worldOptions)

type worldOptions struct {
	brokers []string
	wrap    func(http.Handler) http.Handler
	tokens  bool
	state   string
}

// WithBrokers puts the topic on these brokers instead of the shared test broker.
func WithBrokers(b []string) WorldOption { return func(o *worldOptions) { o.brokers = b } }

// WithWrap serves the simulator through wrap.
func WithWrap(wrap func(http.Handler) http.Handler) WorldOption {
	return func(o *worldOptions) { o.wrap = wrap }
}

// WithTokens makes followpub fetch tokens with the app id and secret instead of a fixed token.
func WithTokens() WorldOption { return func(o *worldOptions) { o.tokens = true } }

// WithState puts the state at path instead of a file in the test's temporary directory.
func WithState(path string) WorldOption { return func(o *worldOptions) { o.state = path } }

// NewWorld serves a simulator with cfg (its token and credentials set to Token, AppID and
// AppSecret) on loopback and creates a topic with three partitions, both for the test's duration.
// START_FROM is start, truncated to the second.
func NewWorld(t testing.TB, cfg wshotosim.Config, start time.Time, opts ...WorldOption) *World {
	t.Helper()
	var o worldOptions
	for _, f := range opts {
		f(&o)
	}
	if o.brokers == nil {
		o.brokers = kafkatest.Brokers(t)
	}
	cfg.StaticToken = Token
	cfg.AppID, cfg.AppSecret = AppID, AppSecret
	sim, err := wshotosim.New(cfg)
	if err != nil {
		t.Fatalf("starting the simulator: %v", err)
	}
	var h http.Handler = sim
	if o.wrap != nil {
		h = o.wrap(sim)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if o.state == "" {
		o.state = filepath.Join(t.TempDir(), "followpub.state")
	}
	return &World{
		Sim: sim, SimURL: srv.URL, APIURL: srv.URL, Brokers: o.brokers,
		Topic: kafkatest.Topic(t, o.brokers, 3), State: o.state,
		Start: start.UTC().Truncate(time.Second), Tokens: o.tokens,
	}
}

// Env is followpub's environment for this world (on top of Env's base), plus extra variables;
// later ones win.
func (w *World) Env(extra ...string) []string {
	kv := []string{
		"FOLLOWPUB_API_BASE_URL=" + w.APIURL,
		"FOLLOWPUB_KAFKA_BROKERS=" + strings.Join(w.Brokers, ","),
		"FOLLOWPUB_KAFKA_TOPIC=" + w.Topic,
		"FOLLOWPUB_STATE_PATH=" + w.State,
		"FOLLOWPUB_HTTP_ADDR=",
		"FOLLOWPUB_START_FROM=" + w.Start.Format(time.RFC3339),
		"FOLLOWPUB_POLL_INTERVAL=300ms",
		"FOLLOWPUB_API_RATE_LIMIT=2000",
		"FOLLOWPUB_SHUTDOWN_TIMEOUT=20s",
	}
	if w.Tokens {
		kv = append(kv, "FOLLOWPUB_API_APP_ID="+AppID, "FOLLOWPUB_API_APP_SECRET="+AppSecret)
	} else {
		kv = append(kv, "FOLLOWPUB_API_ACCESS_TOKEN="+Token)
	}
	return Env(append(kv, extra...)...)
}

// Want returns the records the simulator shows now with follow_time at or after Start, by id.
func (w *World) Want() map[int64]schema.Record {
	out := map[int64]schema.Record{}
	for _, r := range w.Sim.Visible() {
		if r.FollowTime >= w.Start.UnixMilli() {
			out[r.ID] = r
		}
	}
	return out
}
