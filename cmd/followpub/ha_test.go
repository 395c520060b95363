package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/kafkastate"
	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/internal/ownership"
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

// TestGroupIdentityOfManyTenantsStaysSmall: with 10,000 tenants the identity lists a sample of
// identitySample, small enough for a group of many instances, and still tells a rollout (tenants
// added) from another deployment (other tenants, or the same ids with other app ids).
func TestGroupIdentityOfManyTenantsStaysSmall(t *testing.T) {
	cfg := &config{TenantsFile: "(the test's tenants)"}
	tenants := func(from, n int, app string) []tenantConf {
		var tcs []tenantConf
		for i := from; i < from+n; i++ {
			tc := tenantConf{ID: fmt.Sprintf("enterprise-%05d", i)}
			tc.API.AppID, tc.Pub.Topic = app, "followups"
			tcs = append(tcs, tc)
		}
		return tcs
	}
	mine := cfg.groupIdentity(tenants(0, 10_000, "app"))
	if n := len(mine); n > 4096 {
		t.Fatalf("the group identity of 10,000 tenants has %d bytes, want at most 4 KiB", n)
	}
	if got := strings.Count(mine, "="); got != identitySample {
		t.Fatalf("the identity lists %d tenants, want %d", got, identitySample)
	}
	rollout := cfg.groupIdentity(append(tenants(0, 10_000, "app"), tenants(10_000, 200, "app")...))
	for _, tt := range []struct {
		name   string
		theirs string
		same   bool
	}{
		{"the same tenants", cfg.groupIdentity(tenants(0, 10_000, "app")), true},
		{"200 tenants added while the change rolls out", rollout, true},
		{"100 tenants removed while the change rolls out", cfg.groupIdentity(tenants(100, 9_900, "app")), true},
		{"another deployment's tenants", cfg.groupIdentity(tenants(20_000, 10_000, "app")), false},
		{"the same ids with other app ids", cfg.groupIdentity(tenants(0, 10_000, "other-app")), false},
	} {
		if got := sameDeployment(mine, tt.theirs); got != tt.same {
			t.Errorf("%s: sameDeployment = %v, want %v", tt.name, got, tt.same)
		}
	}
	// A member of the version before, which listed every tenant, is still told apart rightly.
	var full []string
	for _, tc := range tenants(0, 10_000, "app") {
		full = append(full, tc.ID+"="+cfg.stateIdentity(tc))
	}
	slices.Sort(full)
	if !sameDeployment(mine, tenantsIdentityPrefix+strings.Join(full, ",")) {
		t.Error("a member listing every tenant, as the version before did, is refused")
	}
}

// TestGroupOfTenThousandTenantsForms: five instances of one deployment of 10,000 tenants, each
// with the group identity groupIdentity gives, form a group against a real broker in which every
// tenant has one owner: the group's metadata stays under the broker's record limit.
func TestGroupOfTenThousandTenantsForms(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const n, instances = 10_000, 5
	cfg := &config{TenantsFile: "(the test's tenants)"}
	var tcs []tenantConf
	for i := range n {
		tc := tenantConf{ID: fmt.Sprintf("enterprise-%05d", i)}
		tc.API.AppID, tc.Pub.Topic = "app", "followups"
		tcs = append(tcs, tc)
	}
	ids := tenantIDsOf(tcs)
	topic := "followpub-large-group-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kafkastate.EnsureTopic(ctx, &kafka.Client{Addr: kafka.TCP(brokers...)}, topic, 12, -1, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	gc := ownership.Config{Brokers: brokers, GroupID: topic, Topic: topic, Tenants: ids, PartitionOf: kafkastate.PartitionOf,
		SessionTimeout: 10 * time.Second, Identity: cfg.groupIdentity(tcs), SameDeployment: sameDeployment}
	var groups []*ownership.Group
	for i := range instances {
		c := gc
		c.Instance = fmt.Sprintf("replica-%d", i)
		g, err := ownership.New(c)
		if err != nil {
			t.Fatal(err)
		}
		rctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- g.Run(rctx, func(ctx context.Context, _ ownership.Tenancy) error { <-ctx.Done(); return nil })
		}()
		t.Cleanup(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("replica-%d: Run: %v", i, err)
			}
		})
		groups = append(groups, g)
	}
	formed := e2etest.WaitFor(90*time.Second, func() bool {
		owned, gens := 0, map[int32]bool{}
		for _, g := range groups {
			st := g.Status()
			owned += len(st.Owned)
			gens[st.Generation] = true
		}
		return owned == n && len(gens) == 1
	})
	if !formed {
		for i, g := range groups {
			st := g.Status()
			t.Logf("replica-%d: joined %v, generation %d, %d tenants owned", i, st.Joined, st.Generation, len(st.Owned))
		}
		t.Fatalf("five instances of 10,000 tenants did not form one group owning every tenant within 90 s")
	}
}
