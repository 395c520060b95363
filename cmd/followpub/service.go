package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"

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

// service is followpub wired together: per tenant an API client, a publisher, a status and, with
// STATE_STORE=file, a store and a poller; shared by every tenant: the HTTP transport to the API,
// the Kafka connections and the metrics.
type service struct {
	cfg     *config
	log     *slog.Logger
	metrics *metrics
	// httpClient sends every tenant's API requests: one connection pool for all of them.
	httpClient *http.Client
	// transport carries the tenants' Kafka writes and read-backs: one connection pool (a reload
	// that adds topics opens its tenants over a new one: transports holds every one, to close).
	transport  *kafka.Transport
	transports []*kafka.Transport
	ha         *ha // STATE_STORE=kafka
	// progress receives the pollers' progress reports (the bar of run --once); nil: log lines.
	progress poller.ProgressReporter

	serving atomic.Bool // serveHTTP runs: a tenant that starts later needs its status watched
	// hup delivers SIGHUP: read TENANTS_FILE again (STATE_STORE=file). Nil: never.
	hup <-chan os.Signal
	// mask is the logger's: a reload adds the secrets of the tenants file it read. Nil: none.
	mask *secretMask

	mu      sync.Mutex
	tenants []*tenantRun // in the order of tenantConfs
}

// openService opens every tenant of tcs (with STATE_STORE=file, each tenant's store first, so that
// a second process on the same state fails before it touches the API or Kafka). With
// STATE_STORE=kafka there is no store to open: the state is loaded per tenant once this instance
// owns it (runGroup). progress receives the pollers' progress reports; nil means log lines.
func openService(cfg *config, tcs []tenantConf, log *slog.Logger, progress poller.ProgressReporter) (*service, error) {
	s := &service{cfg: cfg, log: log, metrics: newMetrics(cfg.PollInterval), progress: progress}
	s.registerGroupMetrics()
	s.httpClient = sharedHTTPClient(tcs)
	if err := s.newTransport(tcs); err != nil {
		return nil, err
	}
	for _, tc := range tcs {
		t, err := s.openTenant(tc)
		if err != nil {
			s.close()
			return nil, err
		}
		s.tenants = append(s.tenants, t)
	}
	if cfg.StateStore == "kafka" {
		if err := s.openHA(s.tenantConfList()); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// newTransport makes the Kafka transport the tenants opened from now on share: it fetches the
// metadata of their topics only (kafka-go fixes the list when the pool first connects, so a reload
// that adds topics makes a new transport for the tenants it opens; the others keep theirs).
func (s *service) newTransport(tcs []tenantConf) error {
	pc := s.cfg.publisherConfig()
	transport, _, err := publisher.NewTransport(pc)
	if err != nil {
		return configError("Kafka configuration", err)
	}
	transport.MetadataTopics = nil
	for _, tc := range tcs {
		if !slices.Contains(transport.MetadataTopics, tc.Pub.Topic) {
			transport.MetadataTopics = append(transport.MetadataTopics, tc.Pub.Topic)
		}
	}
	s.transport = transport
	s.transports = append(s.transports, transport)
	return nil
}

// covers reports whether the current transport fetches the metadata of every topic of tcs.
func (s *service) covers(tcs []tenantConf) bool {
	for _, tc := range tcs {
		if !slices.Contains(s.transport.MetadataTopics, tc.Pub.Topic) {
			return false
		}
	}
	return true
}

// sharedHTTPClient returns the client of every tenant's API requests: it keeps enough idle
// connections for each tenant's API_CONCURRENCY and, like the client's own default, does not
// follow redirects.
func sharedHTTPClient(tcs []tenantConf) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	idle := 0
	for _, tc := range tcs {
		idle += max(tc.API.Concurrency, 1) + 1
	}
	tr.MaxIdleConnsPerHost = idle
	tr.MaxIdleConns = max(tr.MaxIdleConns, idle)
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// tenantList returns the tenants now, in order.
func (s *service) tenantList() []*tenantRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tenants)
}

// tenant returns the tenant id, nil when there is none.
func (s *service) tenant(id string) *tenantRun {
	for _, t := range s.tenantList() {
		if t.conf.ID == id {
			return t
		}
	}
	return nil
}

// tenantIDs returns the ids of the tenants, in order.
// tenantConfList returns the configuration of every tenant, in the order they are polled.
func (s *service) tenantConfList() []tenantConf {
	var tcs []tenantConf
	for _, t := range s.tenantList() {
		tcs = append(tcs, t.conf)
	}
	return tcs
}

func tenantIDsOf(tcs []tenantConf) []string {
	ids := make([]string, 0, len(tcs))
	for _, tc := range tcs {
		ids = append(ids, tc.ID)
	}
	return ids
}

func (s *service) tenantIDs() []string {
	var ids []string
	for _, t := range s.tenantList() {
		ids = append(ids, t.conf.ID)
	}
	return ids
}

// runTenants is `run` with STATE_STORE=file: every tenant polls in its own goroutine, so that
// one tenant's dead API or revoked credentials never delay another, until ctx ends (pollTenants).
// With once, each tenant runs one cycle; the error names every tenant whose cycle did not
// complete.
func (s *service) runTenants(ctx context.Context, once bool) error {
	if !once {
		return s.pollTenants(ctx)
	}
	ts := s.tenantList()
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = t.run(ctx, once)
		}()
	}
	wg.Wait()
	if len(ts) == 1 {
		return errs[0]
	}
	var failed []error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Errorf("tenant %s: %w", ts[i].conf.ID, err))
		}
	}
	return errors.Join(failed...)
}

// close closes every tenant, then the shared connections.
func (s *service) close() {
	for _, t := range s.tenantList() {
		t.close()
	}
	for _, t := range s.transports {
		t.CloseIdleConnections()
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
			http.Error(w, "not ready: no tenant completed a cycle within the last three poll intervals, or not a member of the group", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /status", serveStatus(s.statusDoc))
	mux.Handle("GET /{$}", servePage(s.statusDoc))
	s.serving.Store(true)
	for _, t := range s.tenantList() {
		go t.status.watchState(ctx, t)
	}
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

// statusDoc is what /status shows: the instance, its generation, and every tenant.
func (s *service) statusDoc() statusDoc {
	ts := s.tenantList()
	doc := statusDoc{Tenants: []tenantDoc{}}
	for i, t := range ts {
		m := t.Membership()
		if i == 0 {
			doc.Instance, doc.Generation = t.status.instance, m.Generation
		}
		doc.Tenants = append(doc.Tenants, t.status.tenantDoc(m))
	}
	return doc
}
