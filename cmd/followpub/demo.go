package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/poller"
)

// cmdDemo runs everything in one process with no set-up: the API simulator with live arrivals, a
// broker (an embedded in-process one unless FOLLOWPUB_KAFKA_BROKERS is set), the poller, and a live
// view of the events as they land. Ctrl-C (or --duration) stops it with status 0. A broker it
// cannot reach, or a topic it cannot read (nothing published in time, or reading it fails), end it
// with a message that says what failed and what to check, and status 1.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	duration := fs.Duration("duration", 0, "stop after this long (0 = run until Ctrl-C)")
	rate := fs.Float64("rate", 3, "new follow-ups per second in the simulator")
	ha := fs.Bool("ha", false, "two instances with STATE_STORE=kafka sharing the tenant; the owner is SIGKILLed every --kill-every")
	killEvery := fs.Duration("kill-every", 12*time.Second, "with --ha: how often the owner is killed")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	externalBrokers := os.Getenv("FOLLOWPUB_KAFKA_BROKERS")
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "followpub-demo-")
	if err != nil {
		return fmt.Errorf("making the demo's state directory: %w", err)
	}
	defer os.RemoveAll(dir)

	// The simulator: three days of history and live arrivals, some late.
	sim, err := wshotosim.New(wshotosim.Config{Count: 120, Span: 72 * time.Hour, Rate: *rate, LateFraction: 0.1, LateBy: 20 * time.Minute, Order: "shuffled"})
	if err != nil {
		return err
	}
	apiURL, stopSim, err := serveLoopback(sim)
	if err != nil {
		return err
	}
	defer stopSim()

	broker := "an external broker"
	if externalBrokers == "" {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return fmt.Errorf("starting the embedded broker: %w", err)
		}
		defer cluster.Close()
		cfg.KafkaBrokers = cluster.ListenAddrs()[0]
		cfg.brokers = cluster.ListenAddrs()
		broker = "an EMBEDDED in-process broker (kfake) — for demonstration only, it keeps nothing"
	}
	simCfg := sim.Config()
	cfg.APIBaseURL, cfg.APIAppID, cfg.APIAppSecret, cfg.APIAccessToken = apiURL, simCfg.AppID, simCfg.AppSecret, ""
	cfg.StatePath = filepath.Join(dir, "followpub.state")
	cfg.PollInterval = time.Second
	cfg.StartFrom = poller.StartOfDay(time.Now().Add(-24*time.Hour), cfg.location).Format(time.RFC3339) // yesterday and today
	cfg.HTTPAddr = ""
	cfg.KafkaTopicReplication = -1

	fmt.Fprintf(stdout, "followpub demo\n  API simulator: %s (%.0f new follow-ups/s, 10%% late, shuffled pages)\n  Kafka: %s at %s, topic %s\n  state: %s (deleted on exit)\nPress Ctrl-C to stop.\n\n",
		apiURL, *rate, broker, cfg.KafkaBrokers, cfg.KafkaTopic, cfg.StatePath)

	if *ha {
		return demoHA(ctx, cfg, sim, *killEvery, stdout, stderr)
	}
	log := newLogger(stderr, cfg.LogFormat, "warn", newSecretMask(cfg.secrets()))
	svc, err := openService(cfg, []tenantConf{cfg.defaultTenant()}, log, nil)
	if err != nil {
		return err
	}
	defer svc.close()

	// Without a broker the demo cannot show anything: say so at once rather than retry in silence.
	kctx, cancel := context.WithTimeout(ctx, min(cfg.KafkaWriteTimeout, demoBrokerCheckTimeout))
	err = svc.tenants[0].pub.Check(kctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C during the check
		}
		if externalBrokers == "" {
			return fmt.Errorf("demo: the embedded broker at %s does not answer: %w", cfg.KafkaBrokers, err)
		}
		return fmt.Errorf("demo: checking Kafka at FOLLOWPUB_KAFKA_BROKERS=%s: %w; check that a broker runs there and "+
			"answers on that address (followpub check tests the configuration), or unset FOLLOWPUB_KAFKA_BROKERS to use the embedded broker",
			cfg.KafkaBrokers, err)
	}

	// The first failure of the poller or the live view stops the demo, which then exits 1.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		failOnce sync.Once
		failure  error
	)
	fail := func(err error) {
		failOnce.Do(func() { failure = err })
		stop()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := svc.tenants[0].poller.Run(runCtx); err != nil && runCtx.Err() == nil {
			fail(fmt.Errorf("demo: the poller stopped: %w", err))
		}
	}()
	view := &liveView{w: stdout, start: time.Now()}
	if err := followTopic(runCtx, cfg, view, stdout, cfg.KafkaWriteTimeout+demoTopicWait); err != nil {
		fail(err)
	}
	stop()
	wg.Wait()
	view.summary()
	return failure
}

const (
	// demoBrokerCheckTimeout bounds the demo's first contact with the brokers.
	demoBrokerCheckTimeout = 10 * time.Second
	// demoTopicWait is how long, beyond one write timeout, the live view waits for the poller's
	// first publish to create the topic.
	demoTopicWait = 20 * time.Second
)

// followTopic runs the demo's live view until ctx is done. The topic appears with the poller's
// first publish, so until an event arrives a failed attempt to read it is retried, for at most
// wait; after that, or once events have arrived, an error ends the view. It returns nil when ctx
// is done.
func followTopic(ctx context.Context, cfg *config, view *liveView, w io.Writer, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		_, err := tailTopic(ctx, cfg, tailOptions{from: "beginning", print: view.print}, w)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			return nil // tailTopic returns nil only when ctx is done, or on options the demo does not set
		case view.count() > 0:
			return fmt.Errorf("demo: reading topic %s from FOLLOWPUB_KAFKA_BROKERS=%s stopped: %w; check that the broker is still up",
				cfg.KafkaTopic, cfg.KafkaBrokers, err)
		case time.Now().After(deadline):
			return fmt.Errorf("demo: topic %s could not be read within %s of the start: %w; the poller's messages above say why "+
				"nothing was published (check FOLLOWPUB_KAFKA_BROKERS=%s and that the topic can be created)",
				cfg.KafkaTopic, wait, err, cfg.KafkaBrokers)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// serveLoopback serves h on a free loopback port and returns its base URL.
func serveLoopback(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listening on loopback: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "followpub demo: simulator:", err)
		}
	}()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// liveView prints one compact line per event and a running count, rate and lag every few seconds.
type liveView struct {
	mu       sync.Mutex
	w        io.Writer
	start    time.Time
	n        int
	lastLine time.Time
	lag      time.Duration
	// onEvent, when set, is also given every event (demo --ha counts them).
	onEvent func(kafka.Message)
}

func (v *liveView) print(_ io.Writer, m kafka.Message) {
	if v.onEvent != nil {
		v.onEvent(m)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.n++
	var rec struct {
		Title   string `json:"title"`
		Content string `json:"content"`
		User    string `json:"follow_user_id"`
	}
	_ = json.Unmarshal(m.Value, &rec)
	ceTime := header(m, "ce_time")
	if t, err := time.Parse(time.RFC3339Nano, ceTime); err == nil {
		v.lag = time.Since(t)
	}
	fmt.Fprintf(v.w, "%6d  p%d@%-5d %s  id=%-20s %-8s %s\n", v.n, m.Partition, m.Offset, ceTime, m.Key, rec.User, truncate(rec.Title+" "+rec.Content, 40))
	if time.Since(v.lastLine) >= 3*time.Second {
		v.lastLine = time.Now()
		v.statusLocked()
	}
}

// count returns the number of events printed so far.
func (v *liveView) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.n
}

func (v *liveView) statusLocked() {
	elapsed := time.Since(v.start).Seconds()
	fmt.Fprintf(v.w, "  ── %d events, %.1f/s, lag of the last one %s ──\n", v.n, float64(v.n)/elapsed, v.lag.Round(time.Millisecond))
}

func (v *liveView) summary() {
	v.mu.Lock()
	defer v.mu.Unlock()
	fmt.Fprintln(v.w)
	v.statusLocked()
}

// truncate shortens s to n runes on one line.
func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
