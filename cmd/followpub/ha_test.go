package main

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestInstanceID: FOLLOWPUB_INSTANCE_ID names the instance to the group (and so in watermark
// show's owner); unset, the host name and pid do.
func TestInstanceID(t *testing.T) {
	t.Setenv("FOLLOWPUB_INSTANCE_ID", "replica-2")
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if got := instanceName(cfg); got != "replica-2" {
		t.Errorf("with FOLLOWPUB_INSTANCE_ID=replica-2 the instance is named %q", got)
	}
	t.Setenv("FOLLOWPUB_INSTANCE_ID", "")
	if cfg, err = loadConfig(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if got, want := instanceName(cfg), host+"/"+strconv.Itoa(os.Getpid()); got != want {
		t.Errorf("without FOLLOWPUB_INSTANCE_ID the instance is named %q, want %q", got, want)
	}
}

// TestDeploymentsWithTenantsFilesAreToldApart: with FOLLOWPUB_TENANTS_FILE the identities come
// from the file's tenants, so two deployments whose tenant acme has other app ids or topics are
// refused as one another's (the environment alone made them look the same), and so are deployments
// with no tenant in common; instances of one deployment whose files differ while a change rolls
// out are not.
func TestDeploymentsWithTenantsFilesAreToldApart(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("REVIEW_SECRET", "s3cret")
	t.Setenv("FOLLOWPUB_STATE_STORE", "kafka")
	load := func(name string, entries ...[3]string) (*config, []tenantConf) {
		t.Helper()
		body := "tenants:\n"
		for _, e := range entries {
			body += "  - id: " + e[0] + "\n    app_id: " + e[1] + "\n    app_secret_env: REVIEW_SECRET\n    topic: " + e[2] + "\n"
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("FOLLOWPUB_TENANTS_FILE", path)
		cfg, err := loadConfig()
		if err != nil {
			t.Fatal(err)
		}
		tcs, err := cfg.tenantConfs()
		if err != nil {
			t.Fatal(err)
		}
		return cfg, tcs
	}
	xc, xt := load("x.yaml", [3]string{"acme", "app-of-x", "x.acme"}, [3]string{"beta", "app-b", "x.beta"})
	yc, yt := load("y.yaml", [3]string{"acme", "app-of-y", "y.acme"}, [3]string{"beta", "app-b", "x.beta"})
	zc, zt := load("z.yaml", [3]string{"gamma", "app-g", "z.gamma"})
	rc, rt := load("rollout.yaml", [3]string{"acme", "app-of-x", "x.acme"}, [3]string{"beta", "app-b", "x.beta"}, [3]string{"new", "app-n", "x.new"})
	x, y, z, r := xc.groupIdentity(xt), yc.groupIdentity(yt), zc.groupIdentity(zt), rc.groupIdentity(rt)
	if xc.stateIdentity(xt[0]) == yc.stateIdentity(yt[0]) {
		t.Errorf("tenant acme with app ids app-of-x and app-of-y has one state identity %s", xc.stateIdentity(xt[0]))
	}
	if xc.stateIdentity(xt[1]) != yc.stateIdentity(yt[1]) {
		t.Errorf("tenant beta, the same in both files, has two state identities")
	}
	for _, tt := range []struct {
		name        string
		mine, other string
		same        bool
	}{
		{"acme's app id differs", x, y, false},
		{"no tenant in common", x, z, false},
		{"a tenant added while the change rolls out", x, r, true},
		{"the same file", x, x, true},
		{"a deployment without a tenants file", x, identity(xc), false},
	} {
		if got := sameDeployment(tt.mine, tt.other); got != tt.same {
			t.Errorf("%s: sameDeployment = %v, want %v", tt.name, got, tt.same)
		}
	}
}

// TestATenantsTopicIsNotTheStateTopic: a tenant publishing into STATE_TOPIC would mix events into
// the compacted state: refused at start (exit 2), naming the tenant.
func TestATenantsTopicIsNotTheStateTopic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	body := "tenants:\n  - id: acme\n    access_token_env: ACME_TOKEN\n    topic: followpub.state\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ACME_TOKEN", "tok")
	t.Setenv("FOLLOWPUB_STATE_STORE", "kafka")
	t.Setenv("FOLLOWPUB_TENANTS_FILE", path)
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.tenantConfs()
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "tenant acme") || !strings.Contains(err.Error(), "FOLLOWPUB_STATE_TOPIC") {
		t.Fatalf("tenantConfs: %v, want a usage error naming tenant acme and FOLLOWPUB_STATE_TOPIC", err)
	}
}

// TestReadinessHoldsThroughARebalance: out of the group for a moment (a rebalance, a SIGHUP's
// rejoin), an instance that was ready stays ready for three poll intervals, and no longer.
func TestReadinessHoldsThroughARebalance(t *testing.T) {
	t.Setenv("FOLLOWPUB_STATE_STORE", "kafka")
	t.Setenv("FOLLOWPUB_POLL_INTERVAL", "10s")
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	s := &service{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), metrics: newMetrics(cfg.PollInterval)}
	if err := s.openHA([]tenantConf{cfg.defaultTenant()}); err != nil {
		t.Fatal(err)
	}
	if s.ready() {
		t.Fatal("ready before it ever joined the group")
	}
	s.ha.readyAt = time.Now().Add(-25 * time.Second) // ready 25 s ago, then the rebalance began
	if !s.ready() {
		t.Error("unready 25 s into a rebalance, within three poll intervals (30 s) of being ready")
	}
	s.ha.readyAt = time.Now().Add(-31 * time.Second)
	if s.ready() {
		t.Error("still ready 31 s out of the group, past three poll intervals")
	}
}
