package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/state"
	"github.com/followpub/followpub/internal/tenants"
	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
	"github.com/followpub/followpub/schema"
)

// tenantConf is one tenant's settings (docs/DESIGN.md §7): from the environment for the one tenant
// default, or from an entry of TENANTS_FILE over the environment's values.
type tenantConf struct {
	ID string
	// API is the tenant's API client (credentials, base URL, filters, rate limit, concurrency);
	// Logger, Metrics and HTTPClient are set when the tenant is opened.
	API wshoto.Config
	// Pub is the tenant's publisher: its topic, ce_source and ce_tenant; Logger, Metrics and
	// Transport are set when the tenant is opened.
	Pub publisher.Config
	// StartFrom is where the tenant's first run begins (START_FROM).
	StartFrom string
}

// defaultTenant is the one tenant of a deployment without TENANTS_FILE: the environment's API_*,
// FILTER_*, START_FROM, KAFKA_TOPIC and EVENT_SOURCE.
func (c *config) defaultTenant() tenantConf {
	pc := c.publisherConfig()
	pc.Tenant = schema.DefaultTenant
	return tenantConf{ID: schema.DefaultTenant, API: c.apiConfig(), Pub: pc, StartFrom: c.StartFrom}
}

// tenantConfs returns the deployment's tenants, in the order they are polled: the entries of
// TENANTS_FILE over the environment's values, or the one tenant default. A bad file is a usage
// error (exit 2) naming the tenant and the field.
func (c *config) tenantConfs() ([]tenantConf, error) {
	if c.TenantsFile == "" {
		return []tenantConf{c.defaultTenant()}, nil
	}
	ts, err := tenants.Load(c.TenantsFile, tenants.Defaults{
		Topic: c.KafkaTopic, EventSource: c.EventSource, StartFrom: c.StartFrom, APIBaseURL: c.APIBaseURL,
		RateLimit: c.APIRateLimit, Concurrency: c.APIConcurrency, AllowInsecure: c.APIAllowInsecure, Location: c.location,
	}, os.LookupEnv)
	if err != nil {
		return nil, usagef("FOLLOWPUB_TENANTS_FILE: %v", err)
	}
	out := make([]tenantConf, 0, len(ts))
	for _, t := range ts {
		tc := c.defaultTenant()
		tc.ID, tc.StartFrom = t.ID, t.StartFrom
		tc.API.BaseURL, tc.API.Filter = t.APIBaseURL, t.Filter
		tc.API.AppID, tc.API.AppSecret, tc.API.AccessToken = t.AppID, t.AppSecret, t.AccessToken
		tc.API.RateLimit = cmp.Or(t.RateLimit, c.APIRateLimit)
		tc.API.Concurrency = cmp.Or(t.Concurrency, c.APIConcurrency)
		tc.Pub.Topic, tc.Pub.Source, tc.Pub.Tenant = t.Topic, t.EventSource, t.ID
		if err := tc.API.Validate(); err != nil {
			return nil, usagef("FOLLOWPUB_TENANTS_FILE: tenants file %s: tenant %s (line %d): %v", c.TenantsFile, t.ID, t.Line, err)
		}
		if err := tc.Pub.Validate(); err != nil {
			return nil, usagef("FOLLOWPUB_TENANTS_FILE: tenants file %s: tenant %s (line %d): %v", c.TenantsFile, t.ID, t.Line, err)
		}
		if c.StateStore == "kafka" && tc.Pub.Topic == c.StateTopic {
			return nil, usagef("FOLLOWPUB_TENANTS_FILE: tenants file %s: tenant %s (line %d): topic %s is FOLLOWPUB_STATE_TOPIC, which holds followpub's state, not events; give the tenant another topic",
				c.TenantsFile, t.ID, t.Line, t.Topic)
		}
		out = append(out, tc)
	}
	return out, nil
}

// secretsOf returns the secrets of tcs, for redaction.
func secretsOf(tcs []tenantConf) []string {
	var out []string
	for _, tc := range tcs {
		for _, s := range []string{tc.API.AccessToken, tc.API.AppSecret} {
			if s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// statePath is where the file store keeps tenant's state: STATE_PATH for the tenant default (so
// a deployment that moves to TENANTS_FILE with a tenant named default keeps its state), and
// STATE_PATH.ID beside it for every other tenant. Each is a state file of its own, locked on its
// own: the format of one tenant's file is the format of today's single file.
func (c *config) statePath(tenant string) string {
	if tenant == schema.DefaultTenant {
		return c.StatePath
	}
	return c.StatePath + "." + tenant
}

// tenantRun is one tenant at run time: its own API client (token, rate limit, concurrency), its
// publisher (topic, ce_tenant) over the shared connections, its status and metrics and, with
// STATE_STORE=file, its store and poller. One tenant's failures stay in its own components.
type tenantRun struct {
	svc    *service
	conf   tenantConf
	log    *slog.Logger
	status *statusTracker
	api    *wshoto.Client
	pub    *publisher.Publisher
	kafka  *kafka.Transport // the service's transport the tenant was opened over
	store  *state.Store     // STATE_STORE=file
	poller *poller.Poller   // STATE_STORE=file; with kafka, each generation has its own (ha)
}

// openTenant opens tenant tc: with STATE_STORE=file its store first, so that a second process on
// the same state fails before it touches the API or Kafka.
func (s *service) openTenant(tc tenantConf) (_ *tenantRun, err error) {
	t := &tenantRun{svc: s, conf: tc, log: s.log.With("tenant", tc.ID)}
	t.status = newTenantTracker(s.metrics, tc.ID, instanceName(s.cfg), time.Now)
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if s.cfg.StateStore == "file" {
		if t.store, err = state.Open(s.cfg.statePath(tc.ID)); err != nil {
			return nil, s.tenantError(tc.ID, err)
		}
	}
	apiCfg := tc.API
	apiCfg.Logger, apiCfg.Metrics, apiCfg.HTTPClient = t.log.With("component", "api"), t.status, s.httpClient
	if t.api, err = wshoto.New(apiCfg); err != nil {
		return nil, s.tenantError(tc.ID, configError("API configuration", err))
	}
	pubCfg := tc.Pub
	t.kafka = s.transport
	pubCfg.Logger, pubCfg.Metrics, pubCfg.Transport = t.log, t.status, s.transport
	if t.pub, err = publisher.New(pubCfg); err != nil {
		return nil, s.tenantError(tc.ID, configError("Kafka configuration", err))
	}
	if s.cfg.StateStore == "file" {
		if t.poller, err = poller.New(t.pollerConfig(), t.api, t.pub, t.store); err != nil {
			return nil, s.tenantError(tc.ID, usagef("poller configuration: %v", err))
		}
	}
	return t, nil
}

// tenantError names the tenant in err when the deployment has a tenants file; with the one
// tenant default, err is unchanged.
func (s *service) tenantError(tenant string, err error) error {
	if s.cfg.TenantsFile == "" {
		return err
	}
	if ue, ok := err.(*usageError); ok {
		return usagef("tenant %s: %s", tenant, ue.msg)
	}
	return fmt.Errorf("tenant %s: %w", tenant, err)
}

// pollerConfig is the tenant's poller configuration, wired to its logger and metrics.
func (t *tenantRun) pollerConfig() poller.Config {
	pc := t.svc.cfg.pollerConfig()
	pc.StartFrom = t.conf.StartFrom
	pc.Logger, pc.Metrics = t.log.With("component", "poller"), t.status
	pc.Progress = t.svc.progress
	// Keep a fifth of the shutdown budget for closing the writer and the store.
	pc.ShutdownGrace = t.svc.cfg.ShutdownTimeout * 4 / 5
	return pc
}

// close closes in reverse order of opening: the publisher (flushing), then the store.
func (t *tenantRun) close() {
	if t.pub != nil {
		if err := t.pub.Close(); err != nil {
			t.log.Warn("closing the Kafka writer", "err", err)
		}
	}
	if t.store != nil {
		if err := t.store.Close(); err != nil {
			t.log.Warn("closing the state store", "err", err)
		}
	}
}

// run polls the tenant until ctx is done (STATE_STORE=file); with once, it runs one cycle.
func (t *tenantRun) run(ctx context.Context, once bool) error {
	if !once {
		return t.poller.Run(ctx)
	}
	res, err := t.poller.Cycle(ctx)
	if err != nil {
		return fmt.Errorf("the cycle did not complete (published %d before it stopped): %w", res.Published, err)
	}
	return nil
}
