package main

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
)

// metrics is every followpub_ metric (listed in README.md). The series of a tenant's poller, API
// client and publisher carry the label tenant (docs/DESIGN.md §7); each tenant feeds them through
// its own tenantMetrics.
type metrics struct {
	reg *prometheus.Registry

	fetched, published, duplicates, late, outside *prometheus.CounterVec
	cycles                                        *prometheus.CounterVec
	cycleSeconds                                  *prometheus.HistogramVec
	apiRequests                                   *prometheus.CounterVec
	apiSeconds                                    *prometheus.HistogramVec
	tokenRenewals                                 *prometheus.CounterVec
	kafkaSeconds                                  *prometheus.HistogramVec
	kafkaErrors                                   *prometheus.CounterVec
	kafkaRecords                                  *prometheus.CounterVec
	commitSeconds                                 *prometheus.HistogramVec
	commitErrors                                  *prometheus.CounterVec
	lastSuccess                                   *prometheus.GaugeVec
	pollInterval                                  prometheus.Gauge
	readBackFound, ambiguousSettled               *prometheus.CounterVec
	removedBeforeReadBack, topicRewound           *prometheus.CounterVec
	unrecognised                                  *prometheus.CounterVec
	readBackSeconds                               *prometheus.HistogramVec
	watermark                                     *prometheus.GaugeVec
	lag                                           *prometheus.Desc

	mu      sync.Mutex
	tenants map[string]*tenantMetrics
}

// tenantMetrics is one tenant's view of the metrics: every series with its tenant label. It is
// safe for concurrent use.
type tenantMetrics struct {
	m  *metrics
	id string

	fetched, published, duplicates, late, outside prometheus.Counter
	cycles                                        *prometheus.CounterVec
	cycleSeconds                                  prometheus.Observer
	apiRequests                                   *prometheus.CounterVec
	apiSeconds                                    prometheus.ObserverVec
	tokenRenewals                                 prometheus.Counter
	kafkaSeconds                                  prometheus.Observer
	kafkaErrors, kafkaRecords                     prometheus.Counter
	commitSeconds                                 prometheus.Observer
	commitErrors                                  prometheus.Counter
	lastSuccess, watermark                        prometheus.Gauge
	readBackFound, ambiguousSettled               prometheus.Counter
	removedBeforeReadBack, topicRewound           prometheus.Counter
	unrecognised                                  prometheus.Counter
	readBackSeconds                               prometheus.Observer
	watermarkMS                                   atomic.Int64 // for the lag, read at scrape time
}

var (
	_ poller.Metrics    = (*tenantMetrics)(nil)
	_ wshoto.Metrics    = (*tenantMetrics)(nil)
	_ publisher.Metrics = (*tenantMetrics)(nil)
)

// newMetrics returns the metrics of a service polling every interval (POLL_INTERVAL, exported so
// that the alerts need not assume it).
func newMetrics(interval time.Duration) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), tenants: map[string]*tenantMetrics{}}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	tenant := []string{"tenant"}
	counter := func(name, help string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "followpub_" + name, Help: help}, tenant)
		f(c)
		return c
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "followpub_" + name, Help: help, Buckets: buckets}, append(tenant, labels...))
		f(h)
		return h
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "followpub_" + name, Help: help}, tenant)
		f(g)
		return g
	}
	m.fetched = counter("records_fetched_total", "Records the API returned.")
	m.published = counter("records_published_total", "Records Kafka acknowledged and the state committed.")
	m.duplicates = counter("records_duplicate_total", "Records skipped because their id was already published.")
	m.late = counter("records_late_total", "Records skipped because their follow_time is below the floor (counted once per id).")
	m.outside = counter("records_out_of_window_total", "Records the API returned for days it was not asked for; skipped.")
	m.tokenRenewals = counter("api_token_renewals_total", "Access tokens obtained from the token endpoint.")
	m.kafkaErrors = counter("kafka_write_errors_total", "Publish calls and read-backs of the topic that failed.")
	m.kafkaRecords = counter("kafka_records_written_total", "Records handed to Kafka in publish calls (acknowledged or not).")
	m.readBackFound = counter("readback_records_found_total", "Records of ours a read-back of the topic found that the state did not have; committed as published, never re-sent.")
	m.ambiguousSettled = counter("ambiguous_writes_settled_total", "Failed or timed-out writes whose fate a read-back of the topic settled.")
	m.removedBeforeReadBack = counter("readback_records_removed_total", "Records deleted from the topic (retention) before a read-back could see them: a record of ours among them may be published again.")
	m.topicRewound = counter("readback_partitions_rewound_total", "Partitions found ending below the recorded offset (the topic deleted and re-created), read again from their start.")
	m.unrecognised = counter("readback_records_unrecognised_total", "Records read back with this EVENT_SOURCE that are not followpub records; left alone.")
	m.commitErrors = counter("state_commit_errors_total", "State writes the store refused (records Kafka acknowledged stay in memory until one succeeds).")
	m.readBackSeconds = histogram("readback_duration_seconds", "Duration of a read-back of the topic.", prometheus.ExponentialBuckets(0.001, 2, 16))
	m.cycles = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "followpub_cycles_total", Help: "Cycles by result: ok, failed, interrupted."}, []string{"tenant", "result"})
	f(m.cycles)
	m.cycleSeconds = histogram("cycle_duration_seconds", "Duration of a cycle.", prometheus.ExponentialBuckets(0.01, 2, 14))
	m.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "followpub_api_requests_total", Help: "API HTTP requests by endpoint and outcome."}, []string{"tenant", "endpoint", "outcome"})
	f(m.apiRequests)
	m.apiSeconds = histogram("api_request_duration_seconds", "Latency of API HTTP requests.", prometheus.ExponentialBuckets(0.005, 2, 12), "endpoint")
	m.kafkaSeconds = histogram("kafka_write_duration_seconds", "Latency of a publish call until Kafka acknowledged every record.", prometheus.ExponentialBuckets(0.001, 2, 16))
	m.commitSeconds = histogram("state_commit_duration_seconds", "Latency of a durable state commit.", prometheus.ExponentialBuckets(0.0005, 2, 14))
	m.watermark = gauge("watermark_timestamp_seconds", "The watermark: the newest follow_time published, as a Unix timestamp.")
	m.lastSuccess = gauge("last_success_timestamp_seconds", "End of the last cycle that completed, as a Unix timestamp; 0 before the first.")
	m.pollInterval = prometheus.NewGauge(prometheus.GaugeOpts{Name: "followpub_poll_interval_seconds", Help: "POLL_INTERVAL: the time between cycle starts."})
	m.pollInterval.Set(interval.Seconds())
	f(m.pollInterval)
	m.lag = prometheus.NewDesc("followpub_lag_seconds", "Now minus the watermark.", tenant, nil)
	f(lagCollector{m})
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// tenant returns the view of tenant id's series, creating them (at 0) the first time.
func (m *metrics) tenant(id string) *tenantMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.tenants[id]; t != nil {
		return t
	}
	l := prometheus.Labels{"tenant": id}
	t := &tenantMetrics{
		m: m, id: id,
		fetched: m.fetched.With(l), published: m.published.With(l), duplicates: m.duplicates.With(l),
		late: m.late.With(l), outside: m.outside.With(l),
		cycles: m.cycles.MustCurryWith(l), cycleSeconds: m.cycleSeconds.With(l),
		apiRequests: m.apiRequests.MustCurryWith(l), apiSeconds: m.apiSeconds.MustCurryWith(l),
		tokenRenewals: m.tokenRenewals.With(l), kafkaSeconds: m.kafkaSeconds.With(l),
		kafkaErrors: m.kafkaErrors.With(l), kafkaRecords: m.kafkaRecords.With(l),
		commitSeconds: m.commitSeconds.With(l), commitErrors: m.commitErrors.With(l),
		lastSuccess: m.lastSuccess.With(l), watermark: m.watermark.With(l),
		readBackFound: m.readBackFound.With(l), ambiguousSettled: m.ambiguousSettled.With(l),
		removedBeforeReadBack: m.removedBeforeReadBack.With(l), topicRewound: m.topicRewound.With(l),
		unrecognised: m.unrecognised.With(l), readBackSeconds: m.readBackSeconds.With(l),
	}
	m.tenants[id] = t
	return t
}

// forget removes tenant id's series: the tenant was removed from TENANTS_FILE.
func (m *metrics) forget(id string) {
	m.mu.Lock()
	delete(m.tenants, id)
	m.mu.Unlock()
	l := prometheus.Labels{"tenant": id}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.fetched, m.published, m.duplicates, m.late, m.outside, m.cycles, m.cycleSeconds, m.apiRequests,
		m.apiSeconds, m.tokenRenewals, m.kafkaSeconds, m.kafkaErrors, m.kafkaRecords, m.commitSeconds,
		m.commitErrors, m.lastSuccess, m.readBackFound, m.ambiguousSettled, m.removedBeforeReadBack,
		m.topicRewound, m.unrecognised, m.readBackSeconds, m.watermark,
	} {
		v.DeletePartialMatch(l)
	}
}

// lagCollector serves followpub_lag_seconds{tenant}, now minus each tenant's watermark, computed
// at scrape time.
type lagCollector struct{ m *metrics }

func (c lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.lag }

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	for id, t := range c.m.tenants {
		lag := 0.0
		if ms := t.watermarkMS.Load(); ms != 0 {
			lag = time.Since(time.UnixMilli(ms)).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(c.m.lag, prometheus.GaugeValue, lag, id)
	}
}

func (t *tenantMetrics) RecordsFetched(n int)    { t.fetched.Add(float64(n)) }
func (t *tenantMetrics) RecordsPublished(n int)  { t.published.Add(float64(n)) }
func (t *tenantMetrics) DuplicatesSkipped(n int) { t.duplicates.Add(float64(n)) }
func (t *tenantMetrics) LateDropped(n int)       { t.late.Add(float64(n)) }
func (t *tenantMetrics) OutOfWindow(n int)       { t.outside.Add(float64(n)) }

func (t *tenantMetrics) ReadBackDone(found int, d time.Duration) {
	t.readBackFound.Add(float64(found))
	t.readBackSeconds.Observe(d.Seconds())
}

func (t *tenantMetrics) AmbiguousWritesSettled(n int) { t.ambiguousSettled.Add(float64(n)) }

func (t *tenantMetrics) ReadBackAnomalies(removed int64, rewound, unrecognised int) {
	t.removedBeforeReadBack.Add(float64(removed))
	t.topicRewound.Add(float64(rewound))
	t.unrecognised.Add(float64(unrecognised))
}

func (t *tenantMetrics) CycleDone(result string, d time.Duration) {
	t.cycles.WithLabelValues(result).Inc()
	t.cycleSeconds.Observe(d.Seconds())
}

func (t *tenantMetrics) CycleSucceeded(end time.Time) {
	t.lastSuccess.Set(float64(end.UnixMilli()) / 1000)
}

func (t *tenantMetrics) StateCommitFailed() { t.commitErrors.Inc() }

func (t *tenantMetrics) StateCommitted(w time.Time, d time.Duration) {
	t.commitSeconds.Observe(d.Seconds())
	t.setWatermark(w)
}

func (t *tenantMetrics) setWatermark(w time.Time) {
	t.watermark.Set(float64(w.UnixMilli()) / 1000)
	t.watermarkMS.Store(w.UnixMilli())
}

func (t *tenantMetrics) ObserveRequest(endpoint, outcome string, d time.Duration) {
	t.apiRequests.WithLabelValues(endpoint, outcome).Inc()
	t.apiSeconds.WithLabelValues(endpoint).Observe(d.Seconds())
}

func (t *tenantMetrics) TokenRenewed() { t.tokenRenewals.Inc() }

// ObserveReadBack counts a failed read-back as a Kafka error: the brokers did not answer it.
func (t *tenantMetrics) ObserveReadBack(_ time.Duration, err error) {
	if err != nil {
		t.kafkaErrors.Inc()
	}
}

func (t *tenantMetrics) ObserveWrite(n int, d time.Duration, err error) {
	t.kafkaRecords.Add(float64(n))
	if err != nil {
		t.kafkaErrors.Inc()
		return
	}
	t.kafkaSeconds.Observe(d.Seconds())
}

// tenantOwnedDesc is followpub_tenant_owned: per tenant, so that an alert can name the tenant no
// instance owns (docs/DESIGN.md §7).
var tenantOwnedDesc = prometheus.NewDesc("followpub_tenant_owned",
	"1 for each tenant this instance polls now, 0 for the deployment's other tenants (another instance owns them, or none does).",
	[]string{"tenant"}, nil)

// tenantOwned exports followpub_tenant_owned from status, read at scrape time: the deployment's
// tenants and those this instance owns.
type tenantOwned func() (all, owned []string)

func (f tenantOwned) Describe(ch chan<- *prometheus.Desc) { ch <- tenantOwnedDesc }

func (f tenantOwned) Collect(ch chan<- prometheus.Metric) {
	all, owned := f()
	for _, t := range all {
		ch <- prometheus.MustNewConstMetric(tenantOwnedDesc, prometheus.GaugeValue, boolFloat(slices.Contains(owned, t)), t)
	}
}

// registerTenantOwned adds followpub_tenant_owned, read from status at each scrape.
func (m *metrics) registerTenantOwned(status func() (all, owned []string)) {
	m.reg.MustRegister(tenantOwned(status))
}
