package main

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/publisher"
	"github.com/followpub/followpub/schema"
)

func TestUnprefixedVariablesAreIgnored(t *testing.T) {
	// envconfig falls back to the unprefixed name for fields with an explicit name when given a
	// prefix; followpub names every variable in full, so a stray KAFKA_BROKERS is never read.
	t.Setenv("KAFKA_BROKERS", "stray:1")
	t.Setenv("STATE_PATH", "/stray")
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.KafkaBrokers != "localhost:9092" || c.StatePath != "followpub.state" {
		t.Fatalf("unprefixed variables were read: brokers %q, state %q", c.KafkaBrokers, c.StatePath)
	}
}

func TestEmptyMeansDefaultExceptHTTPAddr(t *testing.T) {
	t.Setenv("FOLLOWPUB_KAFKA_TOPIC", "")
	t.Setenv("FOLLOWPUB_API_PAGE_SIZE", "")
	t.Setenv("FOLLOWPUB_POLL_INTERVAL", "")
	t.Setenv("FOLLOWPUB_HTTP_ADDR", "")
	c, err := loadConfig()
	if err != nil {
		t.Fatalf("empty variables: %v", err)
	}
	if c.KafkaTopic != "wshoto.crm.follow.system" || c.APIPageSize != 100 || c.PollInterval.String() != "30s" {
		t.Fatalf("empty variables did not take their defaults: %q %d %v", c.KafkaTopic, c.APIPageSize, c.PollInterval)
	}
	if c.HTTPAddr != "" {
		t.Fatalf("FOLLOWPUB_HTTP_ADDR= should disable the endpoint, got %q", c.HTTPAddr)
	}
}

func TestValidationNamesTheVariable(t *testing.T) {
	tests := map[string]string{
		"FOLLOWPUB_API_PAGE_SIZE":           "0",
		"FOLLOWPUB_API_CONCURRENCY":         "0",
		"FOLLOWPUB_API_RATE_LIMIT":          "-1",
		"FOLLOWPUB_API_TIMEOUT":             "0s",
		"FOLLOWPUB_LOOKBACK":                "-1h",
		"FOLLOWPUB_LOG_LEVEL":               "loud",
		"FOLLOWPUB_LOG_FORMAT":              "xml",
		"FOLLOWPUB_KAFKA_SASL_MECHANISM":    "GSSAPI",
		"FOLLOWPUB_KAFKA_TOPIC_PARTITIONS":  "0",
		"FOLLOWPUB_API_AUTH_ERROR_CODES":    "10001,x",
		"FOLLOWPUB_FILTER_TARGET_TYPE":      "customer",
		"FOLLOWPUB_FILTER_FOLLOW_DEP_IDS":   "1,two",
		"FOLLOWPUB_HTTP_ADDR":               "9464",
		"FOLLOWPUB_KAFKA_CREATE_TOPIC":      "maybe",
		"FOLLOWPUB_KAFKA_TOPIC_REPLICATION": "0",
		"FOLLOWPUB_START_FROM":              "0001-01-01",
		"FOLLOWPUB_KAFKA_BROKERS":           "127.0.0.1:99999",
		"FOLLOWPUB_API_BASE_URL":            "https://tok-NEVERPRINT@api.example.com",
		"FOLLOWPUB_STATE_STORE":             "bolt",
		"FOLLOWPUB_STATE_TOPIC":             "state topic",
		"FOLLOWPUB_GROUP_SESSION_TIMEOUT":   "-1s",
	}
	for name, value := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			_, err := loadConfig()
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "NEVERPRINT") {
				t.Fatalf("%s=%s: error %v, want a usage error naming the variable", name, value, err)
			}
		})
	}
	t.Run("LOOKBACK of 0", func(t *testing.T) { // the poller's zero means its default, 1h: refused rather than changed
		t.Setenv("FOLLOWPUB_LOOKBACK", "0s")
		if _, err := loadConfig(); err == nil || !strings.Contains(err.Error(), "FOLLOWPUB_LOOKBACK") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("the output topic is the state topic", func(t *testing.T) {
		t.Setenv("FOLLOWPUB_STATE_STORE", "kafka")
		t.Setenv("FOLLOWPUB_KAFKA_TOPIC", "followpub.state")
		if _, err := loadConfig(); err == nil || !strings.Contains(err.Error(), "FOLLOWPUB_STATE_TOPIC") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("TLS files without TLS", func(t *testing.T) {
		t.Setenv("FOLLOWPUB_KAFKA_TLS_CA_FILE", "/ca.pem")
		if _, err := loadConfig(); err == nil || !strings.Contains(err.Error(), "FOLLOWPUB_KAFKA_TLS") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("SASL without password", func(t *testing.T) {
		t.Setenv("FOLLOWPUB_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
		t.Setenv("FOLLOWPUB_KAFKA_SASL_USERNAME", "u")
		if _, err := loadConfig(); err == nil || !strings.Contains(err.Error(), "FOLLOWPUB_KAFKA_SASL_PASSWORD") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestFiltersReachTheClientConfig(t *testing.T) {
	t.Setenv("FOLLOWPUB_FILTER_TARGET_TYPE", "3")
	t.Setenv("FOLLOWPUB_FILTER_TARGET_IDS", "a, b")
	t.Setenv("FOLLOWPUB_FILTER_FOLLOW_USER_IDS", "u1")
	t.Setenv("FOLLOWPUB_FILTER_FOLLOW_DEP_IDS", "1001,1002")
	t.Setenv("FOLLOWPUB_FILTER_TITLE", "系统自动跟进")
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	f := c.apiConfig().Filter
	if *f.TargetType != 3 || !reflect.DeepEqual(f.TargetIDs, []string{"a", "b"}) || !reflect.DeepEqual(f.FollowUserIDs, []string{"u1"}) ||
		!reflect.DeepEqual(f.FollowDepIDs, []int64{1001, 1002}) || f.Title != "系统自动跟进" {
		t.Fatalf("filter = %+v", f)
	}
}

func TestEnvListsEverySpecVariable(t *testing.T) {
	var b bytes.Buffer
	if err := printEnv(&b); err != nil {
		t.Fatal(err)
	}
	// docs/DESIGN.md §3, in full.
	for _, v := range strings.Fields(`API_BASE_URL API_ACCESS_TOKEN API_APP_ID API_APP_SECRET API_PAGE_SIZE API_TIMEZONE
		API_TIMEOUT API_RATE_LIMIT API_CONCURRENCY API_AUTH_ERROR_CODES API_ALLOW_INSECURE FILTER_TARGET_TYPE FILTER_TARGET_IDS
		FILTER_FOLLOW_USER_IDS FILTER_FOLLOW_DEP_IDS FILTER_TITLE POLL_INTERVAL LOOKBACK START_FROM KAFKA_BROKERS KAFKA_TOPIC
		KAFKA_CREATE_TOPIC KAFKA_TOPIC_PARTITIONS KAFKA_TOPIC_REPLICATION KAFKA_COMPRESSION KAFKA_SASL_MECHANISM
		KAFKA_SASL_USERNAME KAFKA_SASL_PASSWORD KAFKA_TLS KAFKA_TLS_CA_FILE KAFKA_TLS_CERT_FILE KAFKA_TLS_KEY_FILE
		KAFKA_TLS_INSECURE_SKIP_VERIFY KAFKA_WRITE_TIMEOUT EVENT_SOURCE STATE_PATH HTTP_ADDR LOG_FORMAT LOG_LEVEL SHUTDOWN_TIMEOUT
		STATE_STORE STATE_TOPIC GROUP_ID GROUP_SESSION_TIMEOUT INSTANCE_ID`) {
		if !strings.Contains(b.String(), "FOLLOWPUB_"+v+" ") {
			t.Errorf("followpub env does not list FOLLOWPUB_%s", v)
		}
	}
}

// TestFieldTagsNameRealFields: every `field` tag names a field of the package's Config, so that
// configError can name the variable behind it, and no two variables set the same field.
func TestFieldTagsNameRealFields(t *testing.T) {
	targets := map[string]reflect.Type{"publisher": reflect.TypeFor[publisher.Config](), "wshoto": reflect.TypeFor[wshoto.Config]()}
	seen := map[string]string{}
	ct := reflect.TypeFor[config]()
	for i := range ct.NumField() {
		f := ct.Field(i)
		path := f.Tag.Get("field")
		if path == "" {
			continue
		}
		pkg, rest, _ := strings.Cut(path, ".")
		typ, ok := targets[pkg]
		if !ok {
			t.Errorf("%s: field %q: unknown package %q", f.Name, path, pkg)
			continue
		}
		for _, name := range strings.Split(rest, ".") {
			sf, ok := typ.FieldByName(name)
			if !ok {
				t.Errorf("%s: field %q: %s has no field %s", f.Name, path, typ, name)
				break
			}
			typ = sf.Type
		}
		if other, dup := seen[path]; dup {
			t.Errorf("%s and %s both set %s", other, f.Name, path)
		}
		seen[path] = f.Name
	}
	if len(seen) < 30 {
		t.Fatalf("only %d variables map to a package field", len(seen))
	}
}

// TestEnvDefaultsAreThePackagesDefaults: the defaults followpub env prints are the ones the
// packages apply.
func TestEnvDefaultsAreThePackagesDefaults(t *testing.T) {
	want := map[string]any{
		"APIBaseURL": wshoto.DefaultBaseURL, "APIPageSize": wshoto.DefaultPageSize, "APITimeout": wshoto.DefaultTimeout,
		"APIRateLimit": wshoto.DefaultRateLimit, "APIConcurrency": wshoto.DefaultConcurrency, "APITimezone": schema.APITimeZone,
		"APIAuthErrorCodes": wshoto.DefaultAuthErrorCodes, "KafkaTopic": publisher.DefaultTopic,
		"KafkaTopicPartitions": publisher.DefaultPartitions, "KafkaTopicReplication": publisher.DefaultReplication,
		"KafkaCompression": publisher.DefaultCompression, "KafkaWriteTimeout": publisher.DefaultWriteTimeout,
		"EventSource": schema.DefaultSource,
	}
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(*c)
	for name, def := range want {
		got := v.FieldByName(name).Interface()
		if name == "APIAuthErrorCodes" {
			got = c.authCodes
		}
		if !reflect.DeepEqual(fmt.Sprint(got), fmt.Sprint(def)) {
			t.Errorf("%s defaults to %v in followpub env, to %v in its package", name, got, def)
		}
	}
}

// TestPackageErrorsNameTheVariables: a rule a package checks is reported with the variables of
// the fields it concerns.
func TestPackageErrorsNameTheVariables(t *testing.T) {
	tests := []struct {
		env  []string
		want []string
	}{
		{[]string{"FOLLOWPUB_KAFKA_TLS_INSECURE_SKIP_VERIFY=true"}, []string{"FOLLOWPUB_KAFKA_TLS_INSECURE_SKIP_VERIFY", "FOLLOWPUB_KAFKA_TLS)"}},
		{[]string{"FOLLOWPUB_KAFKA_SASL_MECHANISM=PLAIN", "FOLLOWPUB_KAFKA_SASL_PASSWORD=p"}, []string{"FOLLOWPUB_KAFKA_SASL_USERNAME", "FOLLOWPUB_KAFKA_SASL_MECHANISM"}},
		{[]string{"FOLLOWPUB_KAFKA_SASL_USERNAME=u"}, []string{"FOLLOWPUB_KAFKA_SASL_MECHANISM"}},
		{[]string{"FOLLOWPUB_KAFKA_TLS=true", "FOLLOWPUB_KAFKA_TLS_CERT_FILE=c.pem"}, []string{"FOLLOWPUB_KAFKA_TLS_CERT_FILE", "FOLLOWPUB_KAFKA_TLS_KEY_FILE"}},
		{[]string{"FOLLOWPUB_KAFKA_TOPIC_REPLICATION=40000"}, []string{"FOLLOWPUB_KAFKA_TOPIC_REPLICATION", "32767"}},
		{[]string{"FOLLOWPUB_KAFKA_TOPIC=a/b"}, []string{"FOLLOWPUB_KAFKA_TOPIC"}},
		{[]string{"FOLLOWPUB_KAFKA_BROKERS=:9092"}, []string{"FOLLOWPUB_KAFKA_BROKERS", `":9092"`}},
		{[]string{"FOLLOWPUB_API_CONCURRENCY=65"}, []string{"FOLLOWPUB_API_CONCURRENCY", "1 to 64"}},
		{[]string{"FOLLOWPUB_API_BASE_URL=http://10.0.0.1"}, []string{"FOLLOWPUB_API_BASE_URL", "loopback", "FOLLOWPUB_API_ALLOW_INSECURE"}},
		{[]string{"FOLLOWPUB_API_APP_SECRET=s"}, []string{"FOLLOWPUB_API_APP_ID", "FOLLOWPUB_API_APP_SECRET"}},
		{[]string{"FOLLOWPUB_FILTER_TARGET_TYPE=-3"}, []string{"FOLLOWPUB_FILTER_TARGET_TYPE"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.env, " "), func(t *testing.T) {
			for _, kv := range tt.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			_, err := loadConfig()
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v, want a usage error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
	t.Run("allowed insecure", func(t *testing.T) {
		t.Setenv("FOLLOWPUB_API_BASE_URL", "http://10.0.0.1")
		t.Setenv("FOLLOWPUB_API_ALLOW_INSECURE", "true")
		if _, err := loadConfig(); err != nil {
			t.Fatalf("FOLLOWPUB_API_ALLOW_INSECURE=true: %v", err)
		}
	})
}

// TestConfigErrorOfNewNamesTheVariable: the credentials rule is New's alone (commands that never
// call the API need none), and its error names the variables too.
func TestConfigErrorOfNewNamesTheVariable(t *testing.T) {
	t.Setenv("FOLLOWPUB_STATE_PATH", t.TempDir()+"/s")
	c, err := loadConfig()
	if err != nil {
		t.Fatalf("no credentials at all must load (watermark show needs none): %v", err)
	}
	_, err = openService(c, []tenantConf{c.defaultTenant()}, newLogger(&bytes.Buffer{}, "json", "error", nil), nil)
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "FOLLOWPUB_API_ACCESS_TOKEN") || !strings.Contains(err.Error(), "FOLLOWPUB_API_APP_ID") {
		t.Fatalf("error %v, want a usage error naming FOLLOWPUB_API_ACCESS_TOKEN and FOLLOWPUB_API_APP_ID", err)
	}
}

func TestLoggerMasksSecrets(t *testing.T) {
	var b bytes.Buffer
	log := newLogger(&b, "json", "debug", newSecretMask([]string{"s3cret-token"}))
	log.Info("calling https://x/openapi?access_token=s3cret-token", "url", "https://x/?access_token=s3cret-token", "err", errors.New("dial s3cret-token: refused"))
	if strings.Contains(b.String(), "s3cret-token") {
		t.Fatalf("a secret reached the log: %s", b.String())
	}
	if !strings.Contains(b.String(), "***") {
		t.Fatalf("the masked values are gone: %s", b.String())
	}
}

func TestMissingCAFileNamesTheVariable(t *testing.T) {
	t.Setenv("FOLLOWPUB_KAFKA_TLS", "true")
	t.Setenv("FOLLOWPUB_KAFKA_TLS_CA_FILE", "/nonexistent/ca.pem")
	t.Setenv("FOLLOWPUB_STATE_PATH", t.TempDir()+"/s")
	t.Setenv("FOLLOWPUB_API_ACCESS_TOKEN", "x")
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	_, err = openService(c, []tenantConf{c.defaultTenant()}, newLogger(&bytes.Buffer{}, "json", "error", nil), nil)
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "FOLLOWPUB_KAFKA_TLS_CA_FILE") {
		t.Fatalf("error %v, want a usage error naming FOLLOWPUB_KAFKA_TLS_CA_FILE", err)
	}
}

func TestStartFromInTheFutureIsRefused(t *testing.T) {
	t.Setenv("FOLLOWPUB_START_FROM", "9999-12-31")
	if _, err := loadConfig(); err == nil || !strings.Contains(err.Error(), "future") {
		t.Fatalf("error %v, want START_FROM in the future refused", err)
	}
	t.Setenv("FOLLOWPUB_START_FROM", "2000-01-01")
	if _, err := loadConfig(); err != nil {
		t.Fatalf("a plausible START_FROM refused: %v", err)
	}
}
