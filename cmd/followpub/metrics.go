package main

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
)

// metrics is every followpub_ metric (listed in README.md), fed by the poller, the API client and
// the publisher through their Metrics interfaces.
type metrics struct {
	reg *prometheus.Registry

	fetched, published, duplicates, late, outside prometheus.Counter
	cycles                                        *prometheus.CounterVec
	cycleSeconds                                  prometheus.Histogram
	apiRequests                                   *prometheus.CounterVec
	apiSeconds                                    *prometheus.HistogramVec
	tokenRenewals                                 prometheus.Counter
	kafkaSeconds                                  prometheus.Histogram
	kafkaErrors                                   prometheus.Counter
	kafkaRecords                                  prometheus.Counter
	commitSeconds                                 prometheus.Histogram
	commitErrors                                  prometheus.Counter
	lastSuccess, pollInterval                     prometheus.Gauge
	readBackFound, ambiguousSettled               prometheus.Counter
	removedBeforeReadBack, topicRewound           prometheus.Counter
	unrecognised                                  prometheus.Counter
	readBackSeconds                               prometheus.Histogram
	watermark                                     prometheus.Gauge
	watermarkMS                                   atomic.Int64 // for the lag, read at scrape time
}

var (
	_ poller.Metrics    = (*metrics)(nil)
	_ wshoto.Metrics    = (*metrics)(nil)
	_ publisher.Metrics = (*metrics)(nil)
)

// newMetrics returns the metrics of a service polling every interval (POLL_INTERVAL, exported so
// that the alerts need not assume it).
func newMetrics(interval time.Duration) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "followpub_" + name, Help: help})
		f(c)
		return c
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
	m.readBackSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "followpub_readback_duration_seconds", Help: "Duration of a read-back of the topic.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)})
	f(m.readBackSeconds)
	m.cycles = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "followpub_cycles_total", Help: "Cycles by result: ok, failed, interrupted."}, []string{"result"})
	m.cycleSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "followpub_cycle_duration_seconds", Help: "Duration of a cycle.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)})
	m.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "followpub_api_requests_total", Help: "API HTTP requests by endpoint and outcome."}, []string{"endpoint", "outcome"})
	m.apiSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "followpub_api_request_duration_seconds", Help: "Latency of API HTTP requests.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"endpoint"})
	m.kafkaSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "followpub_kafka_write_duration_seconds", Help: "Latency of a publish call until Kafka acknowledged every record.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)})
	m.commitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "followpub_state_commit_duration_seconds", Help: "Latency of a durable state commit.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
	m.watermark = prometheus.NewGauge(prometheus.GaugeOpts{Name: "followpub_watermark_timestamp_seconds", Help: "The watermark: the newest follow_time published, as a Unix timestamp."})
	m.commitErrors = counter("state_commit_errors_total", "State writes the store refused (records Kafka acknowledged stay in memory until one succeeds).")
	m.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{Name: "followpub_last_success_timestamp_seconds", Help: "End of the last cycle that completed, as a Unix timestamp; 0 before the first."})
	m.pollInterval = prometheus.NewGauge(prometheus.GaugeOpts{Name: "followpub_poll_interval_seconds", Help: "POLL_INTERVAL: the time between cycle starts."})
	m.pollInterval.Set(interval.Seconds())
	f(m.lastSuccess)
	f(m.pollInterval)
	f(m.cycles)
	f(m.cycleSeconds)
	f(m.apiRequests)
	f(m.apiSeconds)
	f(m.kafkaSeconds)
	f(m.commitSeconds)
	f(m.watermark)
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "followpub_lag_seconds", Help: "Now minus the watermark."}, func() float64 {
		ms := m.watermarkMS.Load()
		if ms == 0 {
			return 0
		}
		return time.Since(time.UnixMilli(ms)).Seconds()
	}))
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) RecordsFetched(n int)    { m.fetched.Add(float64(n)) }
func (m *metrics) RecordsPublished(n int)  { m.published.Add(float64(n)) }
func (m *metrics) DuplicatesSkipped(n int) { m.duplicates.Add(float64(n)) }
func (m *metrics) LateDropped(n int)       { m.late.Add(float64(n)) }
func (m *metrics) OutOfWindow(n int)       { m.outside.Add(float64(n)) }

func (m *metrics) ReadBackDone(found int, d time.Duration) {
	m.readBackFound.Add(float64(found))
	m.readBackSeconds.Observe(d.Seconds())
}

func (m *metrics) AmbiguousWritesSettled(n int) { m.ambiguousSettled.Add(float64(n)) }

func (m *metrics) ReadBackAnomalies(removed int64, rewound, unrecognised int) {
	m.removedBeforeReadBack.Add(float64(removed))
	m.topicRewound.Add(float64(rewound))
	m.unrecognised.Add(float64(unrecognised))
}

func (m *metrics) CycleDone(result string, d time.Duration) {
	m.cycles.WithLabelValues(result).Inc()
	m.cycleSeconds.Observe(d.Seconds())
}

func (m *metrics) CycleSucceeded(end time.Time) {
	m.lastSuccess.Set(float64(end.UnixMilli()) / 1000)
}

func (m *metrics) StateCommitFailed() { m.commitErrors.Inc() }

func (m *metrics) StateCommitted(w time.Time, d time.Duration) {
	m.commitSeconds.Observe(d.Seconds())
	m.setWatermark(w)
}

func (m *metrics) setWatermark(w time.Time) {
	m.watermark.Set(float64(w.UnixMilli()) / 1000)
	m.watermarkMS.Store(w.UnixMilli())
}

func (m *metrics) ObserveRequest(endpoint, outcome string, d time.Duration) {
	m.apiRequests.WithLabelValues(endpoint, outcome).Inc()
	m.apiSeconds.WithLabelValues(endpoint).Observe(d.Seconds())
}

func (m *metrics) TokenRenewed() { m.tokenRenewals.Inc() }

// ObserveReadBack counts a failed read-back as a Kafka error: the brokers did not answer it.
func (m *metrics) ObserveReadBack(_ time.Duration, err error) {
	if err != nil {
		m.kafkaErrors.Inc()
	}
}

func (m *metrics) ObserveWrite(n int, d time.Duration, err error) {
	m.kafkaRecords.Add(float64(n))
	if err != nil {
		m.kafkaErrors.Inc()
		return
	}
	m.kafkaSeconds.Observe(d.Seconds())
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
