package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/followpub/followpub/internal/state"
	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
)

// Compile-time checks of the wiring: the adapters satisfy the poller's interfaces.
var (
	_ poller.Source            = (*wshoto.Client)(nil)
	_ poller.IncrementalSource = (*wshoto.Client)(nil)
	_ poller.Publisher         = (*publisher.Publisher)(nil)
	_ poller.Store             = (*state.Store)(nil)
)

// service is followpub wired together: the store, the API client, the publisher and the poller.
type service struct {
	cfg     *config
	log     *slog.Logger
	metrics *metrics
	status  *statusTracker // feeds metrics, and keeps what /status shows
	store   *state.Store
	api     *wshoto.Client
	pub     *publisher.Publisher
	poller  *poller.Poller // STATE_STORE=file; with kafka, each owned tenant has its own (ha)
	ha      *ha            // STATE_STORE=kafka
	// progress receives the pollers' progress reports (the bar of run --once); nil: log lines.
	progress poller.ProgressReporter
}

// openService opens the store first, so that a second process on the same state fails before it
// touches the API or Kafka. With STATE_STORE=kafka there is no store to open: the state is loaded
// per tenant once this instance owns it (runGroup). progress receives the pollers' progress
// reports; nil means log lines.
func openService(cfg *config, log *slog.Logger, progress poller.ProgressReporter) (*service, error) {
	s := &service{cfg: cfg, log: log, metrics: newMetrics(cfg.PollInterval), progress: progress}
	s.status = newStatusTracker(s.metrics, time.Now)
	s.registerGroupMetrics()
	var err error
	if cfg.StateStore == "file" {
		if s.store, err = state.Open(cfg.StatePath); err != nil {
			return nil, err
		}
	}
	apiCfg := cfg.apiConfig()
	apiCfg.Logger, apiCfg.Metrics = log.With("component", "api"), s.status
	if s.api, err = wshoto.New(apiCfg); err != nil {
		s.close()
		return nil, configError("API configuration", err)
	}
	pubCfg := cfg.publisherConfig()
	pubCfg.Logger, pubCfg.Metrics = log, s.status
	if s.pub, err = publisher.New(pubCfg); err != nil {
		s.close()
		return nil, configError("Kafka configuration", err)
	}
	if cfg.StateStore == "kafka" {
		if err := s.openHA(); err != nil {
			s.close()
			return nil, err
		}
		return s, nil
	}
	if s.poller, err = poller.New(s.pollerConfig(), s.api, s.pub, s.store); err != nil {
		s.close()
		return nil, usagef("poller configuration: %v", err)
	}
	return s, nil
}

// pollerConfig is the poller's configuration, wired to the service's logger and metrics.
func (s *service) pollerConfig() poller.Config {
	pc := s.cfg.pollerConfig()
	pc.Logger, pc.Metrics = s.log.With("component", "poller"), s.status
	pc.Progress = s.progress
	// Keep a fifth of the shutdown budget for closing the writer and the store.
	pc.ShutdownGrace = s.cfg.ShutdownTimeout * 4 / 5
	return pc
}

// close closes in reverse order of opening: the publisher (flushing), then the store.
func (s *service) close() {
	if s.pub != nil {
		if err := s.pub.Close(); err != nil {
			s.log.Warn("closing the Kafka writer", "err", err)
		}
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.log.Warn("closing the state store", "err", err)
		}
	}
}

// serveHTTP serves /healthz, /readyz, /metrics, /status and its page / on addr until ctx is done.
// It returns once the listener is bound, so that a port in use is reported at start-up.
func (s *service) serveHTTP(ctx context.Context, addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on FOLLOWPUB_HTTP_ADDR=%s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready() {
			http.Error(w, "not ready: no cycle completed within the last three poll intervals, or not a member of the group", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /status", s.status.handleStatus(s))
	mux.Handle("GET /{$}", s.status.handlePage(s))
	go s.status.watchState(ctx, s)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("HTTP endpoint stopped", "addr", addr, "err", err)
		}
	}()
	s.log.Info("serving /metrics, /healthz, /readyz, /status, /", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}
