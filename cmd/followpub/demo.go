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
// view of the events as they land. Ctrl-C (or --duration) stops it.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	duration := fs.Duration("duration", 0, "stop after this long (0 = run until Ctrl-C)")
	rate := fs.Float64("rate", 3, "new follow-ups per second in the simulator")
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

	log := newLogger(stderr, cfg.LogFormat, "warn", cfg.secrets())
	svc, err := openService(cfg, log)
	if err != nil {
		return err
	}
	defer svc.close()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = svc.poller.Run(ctx)
	}()
	view := &liveView{w: stdout, start: time.Now()}
	_, err = tailTopic(ctx, cfg, tailOptions{from: "beginning", print: view.print}, stdout)
	for err != nil && ctx.Err() == nil {
		// The topic appears with the first publish; until then there is nothing to tail.
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
		_, err = tailTopic(ctx, cfg, tailOptions{from: "beginning", print: view.print}, stdout)
	}
	wg.Wait()
	view.summary()
	return nil
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
}

func (v *liveView) print(_ io.Writer, m kafka.Message) {
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
