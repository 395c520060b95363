package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/followpub/followpub/internal/e2etest"
)

func TestLogFormatAutoIsJSONWhenNotATerminal(t *testing.T) {
	// A pipe is what stderr is under systemd, docker or a shell redirection.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if isTerminal(w) {
		t.Fatal("a pipe counts as a terminal")
	}
	newLogger(w, "auto", "info", nil).Info("hello", "n", 1)
	w.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	lines := e2etest.JSONLines(t, string(out))
	if len(lines) != 1 || lines[0]["msg"] != "hello" || lines[0]["level"] != "INFO" || lines[0]["n"] != float64(1) {
		t.Fatalf("auto on a pipe wrote %q, want one JSON line", out)
	}

	// A character device that is no terminal (stderr sent to /dev/null): JSON.
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if isTerminal(null) {
		t.Fatal("/dev/null counts as a terminal")
	}

	// Not a file at all: JSON too.
	var b bytes.Buffer
	newLogger(&b, "auto", "info", nil).Info("hello")
	if lines := e2etest.JSONLines(t, b.String()); len(lines) != 1 || lines[0]["msg"] != "hello" {
		t.Fatalf("auto on a buffer wrote %q, want one JSON line", b.String())
	}

	// text is key=value, not JSON: the format is not JSON whatever is asked.
	b.Reset()
	newLogger(&b, "text", "info", nil).Info("hello", "n", 1)
	if got := b.String(); json.Valid([]byte(strings.TrimSpace(got))) || !strings.Contains(got, "msg=hello") || !strings.Contains(got, "n=1") {
		t.Fatalf("text wrote %q, want key=value", got)
	}
}

func TestLogLevel(t *testing.T) {
	tests := []struct {
		level string
		shown []string // of DEBUG, INFO, WARN, ERROR
	}{
		{"debug", []string{"DEBUG", "INFO", "WARN", "ERROR"}},
		{"info", []string{"INFO", "WARN", "ERROR"}},
		{"warn", []string{"WARN", "ERROR"}},
		{"error", []string{"ERROR"}},
		{"WARN", []string{"WARN", "ERROR"}}, // the configuration accepts any case
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			var b bytes.Buffer
			log := newLogger(&b, "json", tt.level, nil)
			log.Debug("d")
			log.Info("i")
			log.Warn("w")
			log.Error("e")
			var got []string
			for _, l := range e2etest.JSONLines(t, b.String()) {
				got = append(got, l["level"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tt.shown, ",") {
				t.Fatalf("LOG_LEVEL=%s wrote levels %v, want %v", tt.level, got, tt.shown)
			}
		})
	}
}

func TestStartLineShowsTheConfigurationWithSecretsMasked(t *testing.T) {
	secrets := map[string]string{
		"FOLLOWPUB_API_ACCESS_TOKEN":    "tok-Startline-1",
		"FOLLOWPUB_API_APP_SECRET":      "appsecret-Startline-2",
		"FOLLOWPUB_KAFKA_SASL_PASSWORD": "saslpw-Startline-3",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	t.Setenv("FOLLOWPUB_API_APP_ID", "app-1")
	t.Setenv("FOLLOWPUB_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
	t.Setenv("FOLLOWPUB_KAFKA_SASL_USERNAME", "alice")
	t.Setenv("FOLLOWPUB_KAFKA_BROKERS", "k1:9092,k2:9092")
	t.Setenv("FOLLOWPUB_STATE_PATH", "/var/lib/followpub/s")
	t.Setenv("FOLLOWPUB_POLL_INTERVAL", "7s")
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	logStart(newLogger(&b, "json", "info", newSecretMask(cfg.secrets())), cfg, true)
	for _, v := range secrets {
		if strings.Contains(b.String(), v) {
			t.Fatalf("the start-up line shows the secret %q:\n%s", v, b.String())
		}
	}
	lines := e2etest.JSONLines(t, b.String())
	if len(lines) != 1 {
		t.Fatalf("logStart wrote %d lines, want one:\n%s", len(lines), b.String())
	}
	want := map[string]any{
		"msg": "followpub starting", "once": true,
		"api_access_token": "***", "api_app_secret": "***", "kafka_sasl_password": "***",
		"api_app_id": "app-1", "kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_brokers": "k1:9092,k2:9092",
		"state_path": "/var/lib/followpub/s", "kafka_topic": "wshoto.crm.follow.system",
		"api_base_url": "https://open.wshoto.com", "start_from": "today", "version": version,
	}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("start-up line: %s = %v, want %v", k, lines[0][k], v)
		}
	}
	// slog writes durations in nanoseconds in JSON.
	if lines[0]["poll_interval"] != float64(7e9) {
		t.Errorf("start-up line: poll_interval = %v, want 7s", lines[0]["poll_interval"])
	}
}

// TestSecretMaskHidesASecretThatExtendsAnother: a reload adds a token whose start is an older
// token (a rotation that appended characters); the new token must not leave its tail in the log.
func TestSecretMaskHidesASecretThatExtendsAnother(t *testing.T) {
	m := newSecretMask([]string{"tok-3f9a"})
	m.add([]string{"tok-3f9a77c1"})
	for _, line := range []string{"token=tok-3f9a77c1", "token=tok-3f9a"} {
		if got := m.replace(line); got != "token=***" {
			t.Errorf("masked %q as %q, want token=***", line, got)
		}
	}
}
