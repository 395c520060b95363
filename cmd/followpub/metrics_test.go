package main

import (
	"io"
	"log/slog"
	"maps"
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

// TestTenantOwned checks followpub_tenant_owned, which names the tenant no instance owns: 1 for
// the one tenant of a file store, 0 on a kafka-store instance not yet in the group, and per tenant
// of several. The group's own gauges are left out with a file store, so that the alerts count only
// the instances of a group.
func TestTenantOwned(t *testing.T) {
	one := []*tenantRun{{conf: tenantConf{ID: "default"}}}
	file := &service{cfg: &config{StateStore: "file"}, metrics: newMetrics(time.Second), tenants: one}
	file.registerGroupMetrics()
	if got := byTenant(t, file.metrics); !maps.Equal(got, map[string]float64{"default": 1}) {
		t.Errorf("STATE_STORE=file: followpub_tenant_owned %v, want default=1", got)
	}
	if got := value(t, file.metrics, "followpub_tenants_owned"); got != 1 {
		t.Errorf("STATE_STORE=file: followpub_tenants_owned = %v, want 1", got)
	}
	for _, name := range []string{"followpub_group_member", "followpub_group_generation"} {
		if has(t, file.metrics, name) {
			t.Errorf("STATE_STORE=file exports %s: the instance-count alert would count it as a group member that left", name)
		}
	}

	t.Setenv("FOLLOWPUB_STATE_STORE", "kafka")
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	standby := &service{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), metrics: newMetrics(time.Second), tenants: one}
	standby.registerGroupMetrics()
	if err := standby.openHA(standby.tenantConfList()); err != nil {
		t.Fatal(err)
	}
	if got := byTenant(t, standby.metrics); !maps.Equal(got, map[string]float64{"default": 0}) {
		t.Errorf("STATE_STORE=kafka, not in the group: followpub_tenant_owned %v, want default=0", got)
	}
	if got := value(t, standby.metrics, "followpub_group_member"); got != 0 {
		t.Errorf("STATE_STORE=kafka, not in the group: followpub_group_member = %v, want 0", got)
	}

	several := newMetrics(time.Second)
	several.registerTenantOwned(func() (all, owned []string) { return []string{"t01", "t02", "t03"}, []string{"t02"} })
	if got := byTenant(t, several); !maps.Equal(got, map[string]float64{"t01": 0, "t02": 1, "t03": 0}) {
		t.Errorf("three tenants, t02 owned: followpub_tenant_owned %v", got)
	}
}

// byTenant returns followpub_tenant_owned by its tenant label.
func byTenant(t *testing.T, m *metrics) map[string]float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "followpub_tenant_owned" {
			continue
		}
		for _, s := range f.GetMetric() {
			if len(s.GetLabel()) != 1 || s.GetLabel()[0].GetName() != "tenant" {
				t.Fatalf("followpub_tenant_owned has labels %v, want only tenant", s.GetLabel())
			}
			out[s.GetLabel()[0].GetValue()] = s.GetGauge().GetValue()
		}
	}
	return out
}

// has reports whether m's registry exposes name.
func has(t *testing.T, m *metrics, name string) bool {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return true
		}
	}
	return false
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
