package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/followpub/followpub/internal/tooltest"
)

// alertsFile is the shipped rules file, relative to this package.
const alertsFile = "prometheus/alerts.yml"

// ruleFile is the part of a Prometheus rules file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T, path string) ruleFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	return f
}

// alerts returns the alerting rules by name.
func (f ruleFile) alerts() map[string]rule {
	out := map[string]rule{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out[r.Alert] = r
			}
		}
	}
	return out
}

// series is one input series of a promtool test, in promtool's expanding notation
// ('0+1x20' is 0, 1, …, 20 at the test's 30 s interval).
type series struct{ name, values string }

// alertCase is one promtool alert test: the series, the time of evaluation, and what must fire
// (nothing when fire is false).
type alertCase struct {
	name   string
	alert  string
	series []series
	at     string
	fire   bool
	// labels are the labels expected besides alertname, job, instance and the rule's own;
	// summary is the expected rendered summary (the description is the rule's, unrendered).
	labels  map[string]string
	summary string
	// perJob: the alert is about the job (the group), so it has no instance label.
	perJob bool
}

const inst = `job="followpub",instance="a:9464"`

func s(metric, labels, values string) series {
	if labels != "" {
		labels = "," + labels
	}
	return series{metric + "{" + inst + labels + "}", values}
}

// sb is s for a second instance, b, of the same job.
func sb(metric, labels, values string) series {
	sr := s(metric, labels, values)
	sr.name = strings.Replace(sr.name, `instance="a:9464"`, `instance="b:9464"`, 1)
	return sr
}

// cycleSeries are FollowpubNoSuccessfulCycle's inputs: the end of the last completed cycle, the
// poll interval and the process start, in seconds (promtool's time() starts at 0, and each step of
// a series is 30 s, so "0+30x20" is a cycle completing at every step).
func cycleSeries(lastSuccess, interval, start string) []series {
	return []series{
		s("followpub_last_success_timestamp_seconds", "", lastSuccess),
		s("followpub_poll_interval_seconds", "", interval),
		s("process_start_time_seconds", "", start),
	}
}

// alertCases make every alert fire and keep it silent in the situations it is meant to tell apart.
var alertCases = []alertCase{
	{name: "cycles stopped completing", alert: "FollowpubNoSuccessfulCycle", at: "20m", fire: true,
		series:  cycleSeries("0+30x20 600x20", "30x40", "0x40"),
		summary: "followpub a:9464: no cycle completed for 10m 0s"},
	{name: "no cycle ever completed", alert: "FollowpubNoSuccessfulCycle", at: "10m", fire: true,
		series:  cycleSeries("0x20", "30x20", "0x20"),
		summary: "followpub a:9464: no cycle completed for 10m 0s"},
	{name: "a cycle completes every interval", alert: "FollowpubNoSuccessfulCycle", at: "20m",
		series: cycleSeries("0+30x40", "30x40", "0x40")},
	{name: "just started, the first cycle under way", alert: "FollowpubNoSuccessfulCycle", at: "3m",
		series: cycleSeries("0x6", "30x6", "120x6")},
	{name: "POLL_INTERVAL=5m, the last cycle 10 minutes ago", alert: "FollowpubNoSuccessfulCycle", at: "20m",
		series: cycleSeries("0 300x9 600x30", "300x40", "0x40")},
	{name: "an owner (STATE_STORE=kafka) stops completing", alert: "FollowpubNoSuccessfulCycle", at: "20m", fire: true,
		series: []series{
			s("followpub_last_success_timestamp_seconds", `tenant="default"`, "0+30x20 600x20"),
			s("followpub_poll_interval_seconds", "", "30x40"),
			s("process_start_time_seconds", "", "0x40"),
			s("followpub_tenant_owned", `tenant="default"`, "1x40"),
		},
		labels:  map[string]string{"tenant": "default"},
		summary: "followpub a:9464 tenant default: no cycle completed for 10m 0s"},
	{name: "a standby owns no tenant and runs no cycles", alert: "FollowpubNoSuccessfulCycle", at: "20m",
		series: []series{
			s("followpub_last_success_timestamp_seconds", `tenant="default"`, "0x40"),
			s("followpub_poll_interval_seconds", "", "30x40"),
			s("process_start_time_seconds", "", "0x40"),
			s("followpub_tenant_owned", `tenant="default"`, "0x40"),
		}},
	{name: "a tenant moved to another instance; the one kept completes", alert: "FollowpubNoSuccessfulCycle", at: "20m",
		series: []series{
			s("followpub_last_success_timestamp_seconds", `tenant="t01"`, "0+30x40"),
			s("followpub_last_success_timestamp_seconds", `tenant="t02"`, "0+30x10 300x30"),
			s("followpub_poll_interval_seconds", "", "30x40"),
			s("process_start_time_seconds", "", "0x40"),
			s("followpub_tenant_owned", `tenant="t01"`, "1x40"),
			s("followpub_tenant_owned", `tenant="t02"`, "1x10 0x30"),
		}},

	{name: "of two tenants, the one whose cycles stopped is named", alert: "FollowpubNoSuccessfulCycle", at: "20m", fire: true,
		series: []series{
			s("followpub_last_success_timestamp_seconds", `tenant="t01"`, "0+30x40"),
			s("followpub_last_success_timestamp_seconds", `tenant="t02"`, "0+30x20 600x20"),
			s("followpub_poll_interval_seconds", "", "30x40"),
			s("process_start_time_seconds", "", "0x40"),
			s("followpub_tenant_owned", `tenant="t01"`, "1x40"),
			s("followpub_tenant_owned", `tenant="t02"`, "1x40"),
		},
		labels:  map[string]string{"tenant": "t02"},
		summary: "followpub a:9464 tenant t02: no cycle completed for 10m 0s"},
	{name: "of two tenants, the one that never completed a cycle is named", alert: "FollowpubNoSuccessfulCycle", at: "10m", fire: true,
		series: []series{
			s("followpub_last_success_timestamp_seconds", `tenant="t01"`, "0+30x20"),
			s("followpub_last_success_timestamp_seconds", `tenant="t02"`, "0x20"),
			s("followpub_poll_interval_seconds", "", "30x20"),
			s("process_start_time_seconds", "", "0x20"),
		},
		labels:  map[string]string{"tenant": "t02"},
		summary: "followpub a:9464 tenant t02: no cycle completed for 10m 0s"},
	{name: "two tenants, each completing", alert: "FollowpubNoSuccessfulCycle", at: "20m",
		series: []series{
			s("followpub_last_success_timestamp_seconds", `tenant="t01"`, "0+30x40"),
			s("followpub_last_success_timestamp_seconds", `tenant="t02"`, "0+30x40"),
			s("followpub_poll_interval_seconds", "", "30x40"),
			s("process_start_time_seconds", "", "0x40"),
		}},

	{name: "lag above 30 minutes for 10", alert: "FollowpubLagHigh", at: "20m", fire: true,
		series:  []series{s("followpub_lag_seconds", "", "100x10 2000+30x30")},
		summary: "followpub a:9464: the newest published follow-up is 47m 50s old"},
	{name: "lag above 30 minutes for 5", alert: "FollowpubLagHigh", at: "20m",
		series: []series{s("followpub_lag_seconds", "", "100x30 2000+30x10")}},
	{name: "one tenant's lag, named", alert: "FollowpubLagHigh", at: "20m", fire: true,
		series: []series{
			s("followpub_lag_seconds", `tenant="t01"`, "100x40"),
			s("followpub_lag_seconds", `tenant="t02"`, "100x10 2000+30x30"),
		},
		labels:  map[string]string{"tenant": "t02"},
		summary: "followpub a:9464 tenant t02: the newest published follow-up is 47m 50s old"},

	{name: "half the list requests answer 5xx", alert: "FollowpubAPIErrors", at: "30m", fire: true,
		series: []series{
			s("followpub_api_requests_total", `endpoint="listForSystem",outcome="ok"`, "0+10x60"),
			s("followpub_api_requests_total", `endpoint="listForSystem",outcome="http_5xx"`, "0+10x60"),
		},
		labels:  map[string]string{"endpoint": "listForSystem", "outcome": "http_5xx"},
		summary: "followpub a:9464: 50% of listForSystem requests fail with http_5xx"},
	{name: "few 5xx; refused credentials and auth errors are not this alert's", alert: "FollowpubAPIErrors", at: "30m",
		series: []series{
			s("followpub_api_requests_total", `endpoint="listForSystem",outcome="ok"`, "0+100x60"),
			s("followpub_api_requests_total", `endpoint="listForSystem",outcome="http_5xx"`, "0+5x60"),
			s("followpub_api_requests_total", `endpoint="listForSystem",outcome="auth_error"`, "0+200x60"),
			s("followpub_api_requests_total", `endpoint="access_token",outcome="api_error"`, "0+1x60"),
		}},

	{name: "every list call refuses the renewed token", alert: "FollowpubAPICredentialsRefused", at: "30m", fire: true,
		series:  []series{s("followpub_api_requests_total", `endpoint="listForSystem",outcome="auth_error"`, "0+2x60")},
		summary: "followpub a:9464: the API refuses followpub's credentials"},
	{name: "the token endpoint refuses the app secret", alert: "FollowpubAPICredentialsRefused", at: "30m", fire: true,
		series:  []series{s("followpub_api_requests_total", `endpoint="access_token",outcome="api_error"`, "0+1x60")},
		summary: "followpub a:9464: the API refuses followpub's credentials"},
	{name: "one token expired early; the token endpoint had a 5xx", alert: "FollowpubAPICredentialsRefused", at: "12m",
		series: []series{
			s("followpub_api_requests_total", `endpoint="listForSystem",outcome="auth_error"`, "0x20 1x40"),
			s("followpub_api_requests_total", `endpoint="access_token",outcome="ok"`, "0x20 1x40"),
			s("followpub_api_requests_total", `endpoint="access_token",outcome="http_5xx"`, "0+1x60"),
		}},

	{name: "writes fail and nothing is published", alert: "FollowpubKafkaWriteErrors", at: "30m", fire: true,
		series: []series{
			s("followpub_kafka_write_errors_total", "", "0+1x60"),
			s("followpub_records_published_total", "", "500x60"),
		},
		summary: "followpub a:9464: Kafka refuses or does not acknowledge its writes"},
	{name: "of two tenants, the one whose writes fail", alert: "FollowpubKafkaWriteErrors", at: "30m", fire: true,
		series: []series{
			s("followpub_kafka_write_errors_total", `tenant="t01"`, "0x60"),
			s("followpub_records_published_total", `tenant="t01"`, "0+100x60"),
			s("followpub_kafka_write_errors_total", `tenant="t02"`, "0+1x60"),
			s("followpub_records_published_total", `tenant="t02"`, "500x60"),
		},
		labels:  map[string]string{"tenant": "t02"},
		summary: "followpub a:9464 tenant t02: Kafka refuses or does not acknowledge its writes"},
	{name: "one failed write, then publishing goes on", alert: "FollowpubKafkaWriteErrors", at: "15m",
		series: []series{
			s("followpub_kafka_write_errors_total", "", "0x20 1x40"),
			s("followpub_records_published_total", "", "0+100x60"),
		}},

	{name: "every commit is refused", alert: "FollowpubStateCommitsFailing", at: "30m", fire: true,
		series: []series{
			s("followpub_state_commit_errors_total", "", "0x10 1+1x50"),
			s("followpub_state_commit_duration_seconds_count", "", "0+5x10 50x50"),
		},
		summary: "followpub a:9464: the state store does not save"},
	{name: "an owner's commits are refused", alert: "FollowpubStateCommitsFailing", at: "30m", fire: true,
		series: []series{
			s("followpub_state_commit_errors_total", `tenant="default"`, "0x10 1+1x50"),
			s("followpub_state_commit_duration_seconds_count", `tenant="default"`, "0+5x10 50x50"),
			s("followpub_tenant_owned", `tenant="default"`, "1x60"),
		},
		labels:  map[string]string{"tenant": "default"},
		summary: "followpub a:9464 tenant default: the state store does not save"},
	{name: "the fence refused a lost owner's last commits, now a standby", alert: "FollowpubStateCommitsFailing", at: "30m",
		series: []series{
			s("followpub_state_commit_errors_total", `tenant="default"`, "0x10 1+1x5 6x45"),
			s("followpub_state_commit_duration_seconds_count", `tenant="default"`, "0+5x10 50x50"),
			s("followpub_tenant_owned", `tenant="default"`, "1x15 0x45"),
		}},
	{name: "of two tenants, the one whose commits are refused", alert: "FollowpubStateCommitsFailing", at: "30m", fire: true,
		series: []series{
			s("followpub_state_commit_errors_total", `tenant="t01"`, "0x60"),
			s("followpub_state_commit_duration_seconds_count", `tenant="t01"`, "0+5x60"),
			s("followpub_state_commit_errors_total", `tenant="t02"`, "0x10 1+1x50"),
			s("followpub_state_commit_duration_seconds_count", `tenant="t02"`, "0+5x10 50x50"),
			s("followpub_tenant_owned", `tenant="t01"`, "1x60"),
			s("followpub_tenant_owned", `tenant="t02"`, "1x60"),
		},
		labels:  map[string]string{"tenant": "t02"},
		summary: "followpub a:9464 tenant t02: the state store does not save"},
	{name: "one refused commit, then commits go on", alert: "FollowpubStateCommitsFailing", at: "15m",
		series: []series{
			s("followpub_state_commit_errors_total", "", "0x20 1x40"),
			s("followpub_state_commit_duration_seconds_count", "", "0+5x60"),
		}},
	{name: "cycles fail on the API, the store is fine", alert: "FollowpubStateCommitsFailing", at: "30m",
		series: []series{
			s("followpub_cycles_total", `result="failed"`, "0+1x60"),
			s("followpub_state_commit_errors_total", "", "0x60"),
			s("followpub_state_commit_duration_seconds_count", "", "20x60"),
			s("followpub_api_requests_total", `endpoint="listForSystem",outcome="http_5xx"`, "0+10x60"),
		}},

	{name: "late records on a process that runs for hours", alert: "FollowpubLateRecords", at: "15m", fire: true,
		series: []series{
			s("followpub_records_late_total", "", "0x20 5x40"),
			s("process_start_time_seconds", "", "-10000x60"),
		},
		summary: "followpub a:9464: 5 records arrived too late and were not published"},
	{name: "records before START_FROM on the first day, just after a start", alert: "FollowpubLateRecords", at: "20m",
		series: []series{
			s("followpub_records_late_total", "", "0x2 30x58"),
			s("process_start_time_seconds", "", "0x60"),
		}},

	{name: "a write timed out; the read-back found it had landed", alert: "FollowpubAmbiguousWrites", at: "15m", fire: true,
		series: []series{
			s("followpub_ambiguous_writes_settled_total", "", "0x20 1x40"),
			s("followpub_readback_records_found_total", "", "0x20 3x40"),
			s("process_start_time_seconds", "", "-10000x60"),
		},
		summary: "followpub a:9464: a write to Kafka had an unknown fate; reading the topic back settled it"},
	{name: "a write failed and landed nothing", alert: "FollowpubAmbiguousWrites", at: "15m", fire: true,
		series: []series{
			s("followpub_ambiguous_writes_settled_total", "", "0x20 1x40"),
			s("followpub_readback_records_found_total", "", "0x60"),
			s("process_start_time_seconds", "", "-10000x60"),
		},
		summary: "followpub a:9464: a write to Kafka had an unknown fate; reading the topic back settled it"},
	{name: "a restart after a crash found records before its first scrape", alert: "FollowpubAmbiguousWrites", at: "10m", fire: true,
		series: []series{
			s("followpub_ambiguous_writes_settled_total", "", "0x60"),
			s("followpub_readback_records_found_total", "", "4x60"),
			s("process_start_time_seconds", "", "0x60"),
		},
		summary: "followpub a:9464: a write to Kafka had an unknown fate; reading the topic back settled it"},
	{name: "one tenant's write, named", alert: "FollowpubAmbiguousWrites", at: "15m", fire: true,
		series: []series{
			s("followpub_ambiguous_writes_settled_total", `tenant="t01"`, "0x60"),
			s("followpub_ambiguous_writes_settled_total", `tenant="t02"`, "0x20 1x40"),
			s("followpub_readback_records_found_total", `tenant="t01"`, "0x60"),
			s("followpub_readback_records_found_total", `tenant="t02"`, "0x60"),
			s("process_start_time_seconds", "", "-10000x60"),
		},
		labels:  map[string]string{"tenant": "t02"},
		summary: "followpub a:9464 tenant t02: a write to Kafka had an unknown fate; reading the topic back settled it"},
	{name: "every write acknowledged; the read-back at the start found nothing", alert: "FollowpubAmbiguousWrites", at: "20m",
		series: []series{
			s("followpub_ambiguous_writes_settled_total", "", "0x60"),
			s("followpub_readback_records_found_total", "", "0x60"),
			s("followpub_records_published_total", "", "0+10x60"),
			s("process_start_time_seconds", "", "0x60"),
		}},
	{name: "the settled write was 40 minutes ago", alert: "FollowpubAmbiguousWrites", at: "55m",
		series: []series{
			s("followpub_ambiguous_writes_settled_total", "", "0x30 1x90"),
			s("followpub_readback_records_found_total", "", "0x30 2x90"),
			s("process_start_time_seconds", "", "-10000x120"),
		}},

	{name: "neither instance owns the tenant (the brokers are gone)", alert: "FollowpubTenantWithoutOwner", at: "10m", fire: true, perJob: true,
		series: []series{
			s("followpub_tenant_owned", `tenant="default"`, "1x10 0x50"),
			sb("followpub_tenant_owned", `tenant="default"`, "0x60"),
		},
		labels:  map[string]string{"tenant": "default"},
		summary: "followpub: no instance owns tenant default"},
	{name: "of two tenants, the one nobody owns is named", alert: "FollowpubTenantWithoutOwner", at: "10m", fire: true, perJob: true,
		series: []series{
			s("followpub_tenant_owned", `tenant="t01"`, "1x60"),
			s("followpub_tenant_owned", `tenant="t02"`, "1x10 0x50"),
			sb("followpub_tenant_owned", `tenant="t01"`, "0x60"),
			sb("followpub_tenant_owned", `tenant="t02"`, "0x60"),
		},
		labels:  map[string]string{"tenant": "t02"},
		summary: "followpub: no instance owns tenant t02"},
	{name: "failover: the owner died and the standby owns the tenant 90 s later", alert: "FollowpubTenantWithoutOwner", at: "7m",
		series: []series{
			s("followpub_tenant_owned", `tenant="default"`, "1x10 stale"),
			sb("followpub_tenant_owned", `tenant="default"`, "0x14 1x45"),
		}},
	{name: "a file store owns its one tenant", alert: "FollowpubTenantWithoutOwner", at: "20m",
		series: []series{s("followpub_tenant_owned", `tenant="default"`, "1x60")}},

	{name: "one instance left in the group", alert: "FollowpubInstancesBelowTwo", at: "15m", fire: true, perJob: true,
		series: []series{
			s("followpub_group_member", "", "1x60"),
			sb("followpub_group_member", "", "1x10 stale"),
		},
		summary: "followpub: 1 instance(s) in the group, fewer than two"},
	{name: "both scraped, neither in the group", alert: "FollowpubInstancesBelowTwo", at: "15m", fire: true, perJob: true,
		series: []series{
			s("followpub_group_member", "", "1x10 0x50"),
			sb("followpub_group_member", "", "1x10 0x50"),
		},
		summary: "followpub: 0 instance(s) in the group, fewer than two"},
	{name: "two members", alert: "FollowpubInstancesBelowTwo", at: "20m",
		series: []series{
			s("followpub_group_member", "", "1x60"),
			sb("followpub_group_member", "", "1x60"),
		}},
	{name: "a rolling restart: one instance alone for 2 minutes", alert: "FollowpubInstancesBelowTwo", at: "7m",
		series: []series{
			s("followpub_group_member", "", "1x60"),
			sb("followpub_group_member", "", "1x10 stale _x3 1x45"),
		}},
	{name: "a file store is in no group", alert: "FollowpubInstancesBelowTwo", at: "20m",
		series: []series{
			s("followpub_tenants_owned", "", "1x60"),
			s("followpub_tenant_owned", `tenant="default"`, "1x60"),
		}},
}

// promtoolTests renders cases as a promtool test file over rulesPath, taking each expected alert's
// severity and description from the rule itself.
func promtoolTests(t *testing.T, rulesPath string, alerts map[string]rule, cases []alertCase) []byte {
	t.Helper()
	type expAlert struct {
		Labels      map[string]string `yaml:"exp_labels"`
		Annotations map[string]string `yaml:"exp_annotations"`
	}
	type alertTest struct {
		EvalTime  string     `yaml:"eval_time"`
		Alertname string     `yaml:"alertname"`
		ExpAlerts []expAlert `yaml:"exp_alerts"`
	}
	type inputSeries struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	type test struct {
		Name       string        `yaml:"name"`
		Interval   string        `yaml:"interval"`
		Input      []inputSeries `yaml:"input_series"`
		AlertTests []alertTest   `yaml:"alert_rule_test"`
	}
	file := struct {
		RuleFiles          []string `yaml:"rule_files"`
		EvaluationInterval string   `yaml:"evaluation_interval"`
		Tests              []test   `yaml:"tests"`
	}{RuleFiles: []string{rulesPath}, EvaluationInterval: "30s"}
	for _, c := range cases {
		r, ok := alerts[c.alert]
		if !ok {
			t.Fatalf("case %q: no alert %s in %s", c.name, c.alert, alertsFile)
		}
		at := alertTest{EvalTime: c.at, Alertname: c.alert, ExpAlerts: []expAlert{}}
		if c.fire {
			labels := map[string]string{"job": "followpub", "instance": "a:9464"}
			if c.perJob {
				delete(labels, "instance")
			}
			for k, v := range r.Labels {
				labels[k] = v
			}
			for k, v := range c.labels {
				labels[k] = v
			}
			at.ExpAlerts = append(at.ExpAlerts, expAlert{Labels: labels,
				Annotations: map[string]string{"summary": c.summary, "description": r.Annotations["description"]}})
		}
		tc := test{Name: c.alert + ": " + c.name, Interval: "30s", AlertTests: []alertTest{at}}
		for _, sr := range c.series {
			tc.Input = append(tc.Input, inputSeries{sr.name, sr.values})
		}
		file.Tests = append(file.Tests, tc)
	}
	b, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAlertRules checks the rules with promtool and runs the promtool unit tests of every alert:
// each must have a case that fires and one that stays silent, and every rule needs an
// annotation that says what to check and a for: (but FollowpubLateRecords, whose trigger is a
// count that never flaps back).
func TestAlertRules(t *testing.T) {
	promtool := tooltest.Need(t, "promtool")
	rules := loadRules(t, alertsFile)
	alerts := rules.alerts()
	if len(alerts) == 0 {
		t.Fatalf("%s has no alerts", alertsFile)
	}
	for name, r := range alerts {
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: needs a summary and a description", name)
		}
		if strings.Contains(r.Annotations["description"], "{{") {
			t.Errorf("%s: the description is compared unrendered by these tests; keep templates to the summary", name)
		}
		if r.Labels["severity"] == "" {
			t.Errorf("%s: no severity label", name)
		}
		if r.For == "" && name != "FollowpubLateRecords" {
			t.Errorf("%s: no for:, so one bad scrape pages someone", name)
		}
		var fires, silent bool
		for _, c := range alertCases {
			if c.alert == name {
				fires, silent = fires || c.fire, silent || !c.fire
			}
		}
		if !fires || !silent {
			t.Errorf("%s: needs a test case that fires (has one: %v) and one that stays silent (has one: %v)", name, fires, silent)
		}
	}

	abs, err := filepath.Abs(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", abs).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", alertsFile, err, out)
	}
	testFile := filepath.Join(t.TempDir(), "alerts_test.yml")
	if err := os.WriteFile(testFile, promtoolTests(t, abs, alerts, alertCases), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "test", "rules", testFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("promtool test rules: %d cases over %d alerts passed", len(alertCases), len(alerts))
}

// TestAlertRulesCatchBrokenExpectations makes sure a wrong expectation fails promtool, so that
// TestAlertRules could fail at all.
func TestAlertRulesCatchBrokenExpectations(t *testing.T) {
	promtool := tooltest.Need(t, "promtool")
	abs, err := filepath.Abs(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	alerts := loadRules(t, alertsFile).alerts()
	for _, c := range alertCases[:2] {
		c.fire = !c.fire
		c.summary = "followpub a:9464: no cycle completed for 10m 0s"
		testFile := filepath.Join(t.TempDir(), "broken_test.yml")
		if err := os.WriteFile(testFile, promtoolTests(t, abs, alerts, []alertCase{c}), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(promtool, "test", "rules", testFile).CombinedOutput(); err == nil {
			t.Errorf("case %q with fire=%v passed promtool:\n%s", c.name, c.fire, out)
		}
	}
}
