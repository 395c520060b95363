package main

import (
	"testing"
	"time"
)

// TestMetricsTheAlertsRead checks the metrics FollowpubNoSuccessfulCycle and
// FollowpubStateCommitsFailing are built on, through the status tracker as the service wires them.
func TestMetricsTheAlertsRead(t *testing.T) {
	m := newMetrics(45 * time.Second)
	tr := newStatusTracker(m, time.Now)
	if got := value(t, m, "followpub_poll_interval_seconds"); got != 45 {
		t.Errorf("followpub_poll_interval_seconds = %v, want 45", got)
	}
	if got := value(t, m, "followpub_last_success_timestamp_seconds"); got != 0 {
		t.Errorf("followpub_last_success_timestamp_seconds = %v before any cycle, want 0", got)
	}
	end := time.UnixMilli(1_700_000_000_250)
	tr.CycleSucceeded(end)
	if got := value(t, m, "followpub_last_success_timestamp_seconds"); got != 1_700_000_000.25 {
		t.Errorf("followpub_last_success_timestamp_seconds = %v, want 1700000000.25", got)
	}
	tr.StateCommitFailed()
	tr.StateCommitFailed()
	if got := value(t, m, "followpub_state_commit_errors_total"); got != 2 {
		t.Errorf("followpub_state_commit_errors_total = %v after two refused commits, want 2", got)
	}
}

// value returns the value of the gauge or counter name as m's registry exposes it.
func value(t *testing.T, m *metrics, name string) float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			s := f.GetMetric()[0]
			return s.GetGauge().GetValue() + s.GetCounter().GetValue()
		}
	}
	t.Fatalf("the registry has no single-series metric %s", name)
	return 0
}
