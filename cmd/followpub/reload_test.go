package main

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/syncbuf"
)

// A reload that added topics left the old transport behind: it is closed once no tenant uses it.
func TestReloadClosesTransportsNoTenantUses(t *testing.T) {
	old, used, current := &kafka.Transport{}, &kafka.Transport{}, &kafka.Transport{}
	s := &service{
		transport:  current,
		transports: []*kafka.Transport{old, used, current},
		tenants:    []*tenantRun{{kafka: used}, {kafka: current}},
	}
	s.closeUnusedTransports()
	if want := []*kafka.Transport{used, current}; !slices.Equal(s.transports, want) {
		t.Fatalf("transports after the reload: %p, want %p (the unused %p closed)", s.transports, want, old)
	}
	s.tenants = nil
	s.closeUnusedTransports()
	if want := []*kafka.Transport{current}; !slices.Equal(s.transports, want) {
		t.Fatalf("transports with no tenant: %p, want only the current one %p", s.transports, want)
	}
}

// A reload masks the secrets of the tenants file it read from then on, and keeps masking the old.
func TestReloadMasksTheNewTenantsSecrets(t *testing.T) {
	t.Setenv("FOLLOWPUB_STATE_PATH", t.TempDir()+"/s")
	t.Setenv("FOLLOWPUB_API_ACCESS_TOKEN", "first-s3cret")
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.TenantsFile = "(the test's tenants)"
	tcs := []tenantConf{cfg.defaultTenant()}
	mask := newSecretMask(append(cfg.secrets(), secretsOf(tcs)...))
	var logs syncbuf.Buffer
	svc, err := openService(cfg, tcs, newLogger(&logs, "json", "info", mask), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.close()
	svc.mask = mask
	added := cfg.defaultTenant()
	added.ID, added.Pub.Tenant, added.API.AccessToken = "added", "added", "added-s3cret"
	if _, _, _, _, failed := svc.applyTenants([]tenantConf{added}, map[string]*poll{}); len(failed) > 0 {
		t.Fatalf("the reload failed to open %v; log:\n%s", failed, logs.String())
	}
	svc.log.Info("a line with first-s3cret", "err", errors.New("refused added-s3cret"))
	if out := logs.String(); strings.Contains(out, "s3cret") || !strings.Contains(out, "a line with ***") {
		t.Fatalf("a secret reached the log after the reload:\n%s", out)
	}
}
