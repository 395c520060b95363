package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/kafkastate"
	"github.com/followpub/followpub/internal/ownership"
	"github.com/followpub/followpub/internal/retry"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
)

var _ poller.Store = (*kafkastate.Store)(nil)

// errOnceDone ends the group's run after `run --once` completed its cycle.
var errOnceDone = errors.New("the one cycle is done")

// ha is what STATE_STORE=kafka adds to the service: the group membership, the state store's
// settings, and the poller of each tenant this instance owns in the current generation.
type ha struct {
	tenants  []string                        // the ids the group shares out
	group    atomic.Pointer[ownership.Group] // replaced when a reload changes the tenants
	groupCfg ownership.Config
	stateCfg kafkastate.Config
	client   *kafka.Client

	mu      sync.Mutex
	pollers map[string]*poller.Poller
	done    map[string]bool // tenants whose one cycle of run --once completed
	readers map[int32]*genReader
	readyAt time.Time // when /readyz last found this instance ready (ready)
}

// genReader is the PartitionReader the tenants loaded in one generation share, and how many of
// them still run.
type genReader struct {
	r     *kafkastate.PartitionReader
	users int
}

// reader returns the PartitionReader of generation gen, and the function to call when the
// tenant that uses it stops: the last one of the generation drops its snapshots.
func (h *ha) reader(gen int32) (*kafkastate.PartitionReader, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.readers == nil {
		h.readers = map[int32]*genReader{}
	}
	g := h.readers[gen]
	if g == nil {
		g = &genReader{r: kafkastate.NewPartitionReader()}
		h.readers[gen] = g
	}
	g.users++
	return g.r, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if g.users--; g.users == 0 {
			g.r.Close()
			delete(h.readers, gen)
		}
	}
}

// onceDone records that tenant finished its one cycle (run --once) and reports whether every
// tenant of owned has.
func (h *ha) onceDone(tenant string, owned []string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done == nil {
		h.done = map[string]bool{}
	}
	h.done[tenant] = true
	for _, t := range owned {
		if !h.done[t] {
			return false
		}
	}
	return true
}

func (h *ha) setPoller(tenant string, p *poller.Poller) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p == nil {
		delete(h.pollers, tenant)
		return
	}
	h.pollers[tenant] = p
}

// identity names the deployment without a secret: the API it polls, with which app id, into which
// topic and with which ce_source. A fixed access token is not part of it (it changes when it is
// rotated), so two deployments that differ only in their fixed token are not told apart.
func identity(c *config) string {
	return digest(c.APIBaseURL, c.APIAppID, c.KafkaTopic, c.EventSource)
}

func digest(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:8])
}

// stateIdentity is what a tenant's state in STATE_TOPIC is marked with, so that another
// deployment's tenant of the same id is refused (kafkastate.ErrForeign): without TENANTS_FILE
// the deployment's identity, with it the tenant's own API, app id, topic and ce_source.
func (c *config) stateIdentity(tc tenantConf) string {
	if c.TenantsFile == "" {
		return identity(c)
	}
	return digest(tc.API.BaseURL, tc.API.AppID, tc.Pub.Topic, tc.Pub.Source)
}

// tenantsIdentityPrefix starts the group identity of a deployment with TENANTS_FILE: its tenants'
// state identities, "id=digest" each, sorted (identitySample of them at most).
const tenantsIdentityPrefix = "tenants:"

// identitySample bounds the tenants a group identity lists: every member's identity travels in
// the group's metadata, which the broker stores as one record of at most a megabyte, so it must
// not grow with the tenants (docs/DESIGN.md §7).
const identitySample = 64

// groupIdentity is what this instance tells the group it is (ownership.Config.Identity). With
// more than identitySample tenants it lists those of the smallest hash of their id: the same
// sample in every member with the same tenants, and nearly the same while a change rolls out, so
// that sameDeployment still finds shared tenants. A tenant of another deployment outside the
// sample is then refused when its state is loaded (kafkastate.ErrForeign), not before joining.
func (c *config) groupIdentity(tcs []tenantConf) string {
	if c.TenantsFile == "" {
		return identity(c)
	}
	type entry struct{ rank, id string }
	var ids []entry
	for _, tc := range tcs {
		ids = append(ids, entry{digest(tc.ID), tc.ID + "=" + c.stateIdentity(tc)})
	}
	if len(ids) > identitySample {
		slices.SortFunc(ids, func(a, b entry) int { return strings.Compare(a.rank, b.rank) })
		ids = ids[:identitySample]
	}
	slices.SortFunc(ids, func(a, b entry) int { return strings.Compare(a.id, b.id) })
	var list []string
	for _, e := range ids {
		list = append(list, e.id)
	}
	return tenantsIdentityPrefix + strings.Join(list, ",")
}

// sameDeployment reports whether another member's group identity is this deployment's. With
// TENANTS_FILE the files may differ while a change rolls out (some instances SIGHUPed, some not):
// they are one deployment when they share a tenant and every shared tenant has the same identity;
// disjoint tenants, or one tenant id with other credentials or another topic, are another's.
func sameDeployment(mine, theirs string) bool {
	if !strings.HasPrefix(mine, tenantsIdentityPrefix) || !strings.HasPrefix(theirs, tenantsIdentityPrefix) {
		return mine == theirs
	}
	parse := func(s string) map[string]string {
		m := map[string]string{}
		for _, kv := range strings.Split(strings.TrimPrefix(s, tenantsIdentityPrefix), ",") {
			if id, d, ok := strings.Cut(kv, "="); ok {
				m[id] = d
			}
		}
		return m
	}
	a, b := parse(mine), parse(theirs)
	shared := 0
	for id, d := range a {
		if other, ok := b[id]; ok {
			if other != d {
				return false
			}
			shared++
		}
	}
	return shared > 0
}

// instanceName is how the other members and `watermark show` name this process:
// FOLLOWPUB_INSTANCE_ID, or its host name and pid.
func instanceName(c *config) string {
	if c.InstanceID != "" {
		return c.InstanceID
	}
	host, _ := os.Hostname()
	return host + "/" + strconv.Itoa(os.Getpid())
}

// openHA prepares STATE_STORE=kafka for the tenants tcs: the state store's settings and the group
// membership. It does not touch the network.
func (s *service) openHA(tcs []tenantConf) error {
	ids := tenantIDsOf(tcs)
	pc := s.cfg.publisherConfig()
	pc.Topic = s.cfg.StateTopic // the transport fetches metadata of this topic
	transport, dialer, err := publisher.NewTransport(pc)
	if err != nil {
		return configError("Kafka configuration", err)
	}
	h := &ha{tenants: ids, pollers: map[string]*poller.Poller{}, client: &kafka.Client{Addr: kafka.TCP(s.cfg.brokers...), Transport: transport, Timeout: s.cfg.KafkaWriteTimeout}}
	h.stateCfg = kafkastate.Config{
		Brokers: s.cfg.brokers, Topic: s.cfg.StateTopic, Transport: transport, // Identity: per tenant (stateIdentity)
		Replication: s.cfg.KafkaTopicReplication, Timeout: s.cfg.KafkaWriteTimeout, Logger: s.log,
	}
	h.groupCfg = ownership.Config{
		Brokers: s.cfg.brokers, GroupID: s.cfg.GroupID, Topic: s.cfg.StateTopic, Tenants: ids, PartitionOf: kafkastate.PartitionOf,
		SessionTimeout: s.cfg.GroupSessionTimeout, Instance: instanceName(s.cfg), SameDeployment: sameDeployment,
		Dialer: dialer, Transport: transport, Logger: s.log,
	}
	if err := h.setTenants(ids, s.cfg.groupIdentity(tcs)); err != nil {
		return usagef("group configuration: %v", err)
	}
	s.ha = h
	return nil
}

// setTenants makes the group share out ids, this instance saying it is identity: a new membership
// (the next Run joins with it).
func (h *ha) setTenants(ids []string, identity string) error {
	gc := h.groupCfg
	gc.Tenants, gc.Identity = ids, identity
	g, err := ownership.New(gc)
	if err != nil {
		return err
	}
	h.group.Store(g)
	h.tenants = ids
	return nil
}

// registerGroupMetrics adds the ownership gauges to /metrics; with STATE_STORE=file the one
// process owns every tenant and is in no group, so the group's own gauges are left out.
func (s *service) registerGroupMetrics() {
	status := func() ownership.Status {
		if s.ha == nil {
			return ownership.Status{Owned: s.tenantIDs()}
		}
		return s.ha.group.Load().Status()
	}
	gauge := func(name, help string, f func(ownership.Status) float64) {
		s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "followpub_" + name, Help: help},
			func() float64 { return f(status()) }))
	}
	gauge("tenants_owned", "Tenants this instance polls now: those it owns in the current generation with STATE_STORE=kafka.",
		func(st ownership.Status) float64 { return float64(len(st.Owned)) })
	s.metrics.registerTenantOwned(func() (all, owned []string) { return s.tenantIDs(), status().Owned })
	if s.cfg.StateStore != "kafka" {
		return // the group's gauges: a file store is in no group, and the alerts count members by them
	}
	gauge("group_generation", "The group generation this instance is in (STATE_STORE=kafka); 0 before it joined.",
		func(st ownership.Status) float64 { return float64(st.Generation) })
	gauge("group_member", "1 while this instance is a member of a group generation (STATE_STORE=kafka), else 0.",
		func(st ownership.Status) float64 { return boolFloat(st.Joined) })
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ready is /readyz (README "Metrics and health"): at least one tenant polled here completed a
// cycle within three poll intervals; with STATE_STORE=kafka, this instance is also a member of a
// generation, and one that owns no tenant (a standby) is ready. One tenant's revoked credentials
// or dead API do not make the instance unready: that is the tenant's failure, shown by its own
// metrics and /status; a failure every tenant shares (Kafka, the state, the network) does.
func (s *service) ready() bool {
	if s.ha == nil {
		return s.readyNow()
	}
	ok, now := s.readyNow(), time.Now()
	s.ha.mu.Lock()
	defer s.ha.mu.Unlock()
	if ok {
		s.ha.readyAt = now
		return true
	}
	// A rebalance or a SIGHUP's rejoin stops every tenant here and starts them again with new
	// pollers: readiness holds through it for the window a cycle has anyway (three poll
	// intervals), so that one instance joining does not make every owner unready.
	return !s.ha.readyAt.IsZero() && now.Sub(s.ha.readyAt) <= 3*s.cfg.PollInterval
}

// readyNow is ready without the hold through a rebalance.
func (s *service) readyNow() bool {
	owned := s.tenantIDs()
	if s.ha != nil {
		st := s.ha.group.Load().Status()
		if !st.Joined {
			return false
		}
		if owned = st.Owned; len(owned) == 0 {
			return true
		}
	}
	for _, id := range owned {
		if p := s.pollerOf(id); p != nil && p.Ready() {
			return true
		}
	}
	return false
}

// pollerOf returns the poller of tenant id polled here now, nil when there is none (with
// STATE_STORE=kafka: a tenant another instance owns).
func (s *service) pollerOf(id string) *poller.Poller {
	if s.ha == nil {
		if t := s.tenant(id); t != nil {
			return t.poller
		}
		return nil
	}
	s.ha.mu.Lock()
	defer s.ha.mu.Unlock()
	return s.ha.pollers[id]
}

// errStandby is /status' state error on an instance that does not own the tenant.
var errStandby = errors.New("another instance owns the tenant: this one is a standby")

// Status is the tenant's state for /status: from its poller with STATE_STORE=file, or from the
// poller of the generation that owns the tenant here with kafka.
func (t *tenantRun) Status(ctx context.Context) (poller.Status, error) {
	p := t.svc.pollerOf(t.conf.ID)
	if p == nil {
		return poller.Status{}, errStandby
	}
	return p.Status(ctx)
}

// Membership is this instance's standing for the tenant, for /status.
func (t *tenantRun) Membership() membership {
	s := t.svc
	p := s.pollerOf(t.conf.ID)
	m := membership{Ready: p != nil && p.Ready()}
	if s.ha == nil {
		return m
	}
	st := s.ha.group.Load().Status()
	if st.Joined {
		g := int64(st.Generation)
		m.Generation = &g
	}
	m.Standby = !slices.Contains(st.Owned, t.conf.ID)
	if m.Standby {
		m.Ready = s.ready()
	}
	return m
}

// checkHA makes sure, before this instance joins the group, that the state topic is compacted
// and that the group and the state belong to this deployment: a second deployment pointed at the
// same GROUP_ID or STATE_TOPIC exits 2 without touching the first. Brokers that are down or still
// starting (no group coordinator yet) are waited for, as a cycle would wait for them.
func (s *service) checkHA(ctx context.Context) error {
	policy := retry.New(200*time.Millisecond, 5*time.Second)
	for {
		err := s.checkHAOnce(ctx)
		var ue *usageError
		switch {
		case err == nil, errors.As(err, &ue), errors.Is(err, kafkastate.ErrCorrupt), ctx.Err() != nil:
			return err
		}
		wait := policy.Next()
		s.log.Warn("checking the state topic and the group before joining failed; retrying", "err", err, "retry_in", wait)
		if retry.Sleep(ctx, wait) != nil {
			return err
		}
	}
}

// checkHAOnce is one attempt of checkHA. Each step has KAFKA_WRITE_TIMEOUT of its own: the topic
// and the group, then each tenant's load, so that many tenants do not share one deadline.
func (s *service) checkHAOnce(ctx context.Context) error {
	sc := s.ha.stateCfg
	err := s.withWriteTimeout(ctx, func(ctx context.Context) error {
		if _, err := kafkastate.EnsureTopic(ctx, s.ha.client, sc.Topic, kafkastate.DefaultPartitions, sc.Replication, s.log); err != nil {
			if errors.Is(err, kafkastate.ErrNotCompacted) {
				return usagef("FOLLOWPUB_STATE_TOPIC=%s: %v", sc.Topic, err)
			}
			return err
		}
		return s.sharedError(s.ha.group.Load().CheckShared(ctx))
	})
	if err != nil {
		return err
	}
	sc.Reader = kafkastate.NewPartitionReader() // one read of each partition for all the tenants
	defer sc.Reader.Close()
	for _, t := range s.tenantList() {
		sc.Tenant, sc.Identity = t.conf.ID, s.cfg.stateIdentity(t.conf)
		err := s.withWriteTimeout(ctx, func(ctx context.Context) error {
			store, err := kafkastate.Open(ctx, sc)
			if err != nil {
				return err
			}
			_, err = store.Load(ctx)
			_ = store.Close() // read only
			return s.sharedError(err)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// withWriteTimeout runs f with KAFKA_WRITE_TIMEOUT beyond ctx.
func (s *service) withWriteTimeout(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.KafkaWriteTimeout)
	defer cancel()
	return f(ctx)
}

// sharedError turns a group or a state of another deployment into a usage error naming both
// variables; other errors pass.
func (s *service) sharedError(err error) error {
	if errors.Is(err, ownership.ErrShared) || errors.Is(err, kafkastate.ErrForeign) {
		return usagef("FOLLOWPUB_GROUP_ID=%s and FOLLOWPUB_STATE_TOPIC=%s are in use by another deployment: %v; give each deployment its own GROUP_ID and STATE_TOPIC",
			s.cfg.GroupID, s.cfg.StateTopic, err)
	}
	return err
}

// runGroup is `run` with STATE_STORE=kafka: join the group and poll each tenant this instance
// owns, for as long as it owns it, until ctx ends (then leave the group). With once, it waits
// until it owns the tenant, runs one cycle and leaves.
func (s *service) runGroup(ctx context.Context, once bool) error {
	if err := s.checkHA(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting for the brokers
		}
		return err
	}
	for {
		// A SIGHUP with a tenants file that loads ends this membership; the instance joins again
		// with the new tenants. A file that does not load changes nothing.
		gctx, leave := context.WithCancel(ctx)
		reloaded := make(chan []tenantConf, 1)
		go s.watchReloads(gctx, once, func(next []tenantConf) {
			reloaded <- next
			leave()
		})
		err := s.ha.group.Load().Run(gctx, func(gctx context.Context, ten ownership.Tenancy) error {
			return s.own(gctx, ten, once)
		})
		leave()
		switch {
		case errors.Is(err, errOnceDone):
			return nil
		case errors.Is(err, ownership.ErrSessionTimeout):
			return usagef("FOLLOWPUB_GROUP_SESSION_TIMEOUT=%s: %v", s.cfg.GroupSessionTimeout, err)
		case err != nil:
			return s.sharedError(err)
		}
		select {
		case next := <-reloaded:
			if ctx.Err() == nil {
				s.reloadGroup(next)
				continue
			}
		default:
		}
		return nil
	}
}

// watchReloads reads TENANTS_FILE again on each SIGHUP until ctx ends, and hands a file that
// loads to apply (once). With once, or without a tenants file, a SIGHUP is logged and ignored.
func (s *service) watchReloads(ctx context.Context, once bool, apply func([]tenantConf)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.hangups():
		}
		if once || s.cfg.TenantsFile == "" {
			s.log.Info("SIGHUP: no FOLLOWPUB_TENANTS_FILE to read again (or run --once); nothing changes")
			continue
		}
		next, err := s.cfg.tenantConfs()
		if err != nil {
			s.log.Error("SIGHUP: reading FOLLOWPUB_TENANTS_FILE again failed; the running tenants go on unchanged", "tenants_file", s.cfg.TenantsFile, "err", err)
			continue
		}
		s.log.Info("SIGHUP: FOLLOWPUB_TENANTS_FILE read; leaving the group to join again with its tenants", "tenants", len(next))
		apply(next)
		return
	}
}

// reloadGroup applies a tenants file read again (STATE_STORE=kafka) while this instance is out
// of the group, so no tenant runs: tenants removed are closed (their state stays in
// STATE_TOPIC), changed ones reopened, added ones opened; the group then shares out the new ids.
func (s *service) reloadGroup(next []tenantConf) {
	_, added, removed, changed, failed := s.applyTenants(next, nil)
	if err := s.ha.setTenants(s.tenantIDs(), s.cfg.groupIdentity(s.tenantConfList())); err != nil {
		s.log.Error("SIGHUP: the group could not take the new tenants; joining with the old ones", "err", err)
	}
	s.log.Info("SIGHUP: FOLLOWPUB_TENANTS_FILE applied", "tenants", len(s.tenantIDs()), "added", added, "removed", removed, "changed", changed, "failed", failed)
}

// own polls one tenant for one generation: it loads the tenant's state (the poller reads the
// topic back before its first publish), then runs cycles until the generation ends. A state that
// does not decode, or that is another deployment's, ends the process; failing to reach the
// brokers is retried.
func (s *service) own(ctx context.Context, ten ownership.Tenancy, once bool) error {
	log := s.log.With("tenant", ten.Tenant, "generation", ten.Generation)
	t := s.tenant(ten.Tenant)
	if t == nil {
		// Returning would end the generation of every tenant here (kafka-go ends a generation
		// when one of its functions returns): wait for its end instead.
		log.Info("tenant assigned but not configured here; not polled")
		<-ctx.Done()
		return nil
	}
	began := time.Now()
	sc := s.ha.stateCfg
	sc.Tenant, sc.Fence, sc.Identity = ten.Tenant, ten.Fence, s.cfg.stateIdentity(t.conf)
	// The tenants of a partition are all owned here in a generation: one read loads them all.
	var release func()
	sc.Reader, release = s.ha.reader(ten.Generation)
	defer release()
	pc := t.pollerConfig()
	pc.Fence = ten.Fence
	// The generation's end waits for the cycle to stop; the fence bounds every write anyway.
	pc.ShutdownGrace = min(pc.ShutdownGrace, s.cfg.GroupSessionTimeout/2)
	policy := retry.New(200*time.Millisecond, 5*time.Second)
	for {
		store, p, st, err := t.load(ctx, sc, pc)
		if err == nil {
			defer func() { _ = store.Close() }() // every commit was acknowledged before it returned
			log.Info("tenant owned: state loaded", "load_duration", time.Since(began).Round(time.Millisecond),
				"exists", st.Exists, "watermark", st.Watermark, "seen", st.Seen)
			s.ha.setPoller(ten.Tenant, p)
			defer s.ha.setPoller(ten.Tenant, nil)
			if c := store.Pending(); c != nil {
				if err := applyRequest(ctx, p, store, *c, log); err != nil {
					return nil // the generation is ending: the next owner applies it
				}
			}
			if once {
				if res, err := p.Cycle(ctx); err != nil {
					return fmt.Errorf("the cycle did not complete (published %d before it stopped): %w", res.Published, err)
				}
				// The last tenant owned here to finish its cycle ends the run; the others wait
				// for it, as returning would end the generation of all.
				if s.ha.onceDone(ten.Tenant, s.ha.group.Load().Status().Owned) {
					return errOnceDone
				}
				<-ctx.Done()
				return nil
			}
			return s.runOwned(ctx, p, store, log)
		}
		if errors.Is(err, kafkastate.ErrCorrupt) || errors.Is(err, kafkastate.ErrForeign) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := policy.Next()
		log.Warn("loading the state failed; retrying", "err", err, "retry_in", wait)
		if retry.Sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// runOwned runs p's cycles until ctx ends, reading the tenant's partition every POLL_INTERVAL
// for a request of `watermark set|reset`: one stops the cycles after the batch in flight, is
// applied, and the cycles go on from the new state.
func (s *service) runOwned(ctx context.Context, p *poller.Poller, store *kafkastate.Store, log *slog.Logger) error {
	since := store.End()
	for {
		cctx, cancel := context.WithCancel(ctx)
		var got *kafkastate.Command
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			for retry.Sleep(cctx, s.cfg.PollInterval) == nil {
				c, next, err := store.NextCommand(cctx, since)
				if err != nil {
					if cctx.Err() == nil {
						log.Warn("reading the state topic for watermark requests failed", "err", err)
					}
					continue
				}
				since = next
				if c != nil {
					got = c
					cancel()
					return
				}
			}
		}()
		err := p.Run(cctx)
		cancel()
		<-watched
		if got == nil || ctx.Err() != nil {
			return err
		}
		if err := applyRequest(ctx, p, store, *got, log); err != nil {
			return nil // the generation is ending: the next owner applies it
		}
	}
}

// applyRequest applies a `watermark set|reset` request and deletes it.
func applyRequest(ctx context.Context, p *poller.Poller, store *kafkastate.Store, c kafkastate.Command, log *slog.Logger) error {
	var err error
	switch c.Op {
	case "set":
		err = p.SetWatermark(ctx, time.UnixMilli(c.TimeMS))
	case "reset":
		err = p.Reset(ctx)
	}
	if err == nil {
		err = store.Done(ctx, c)
	}
	if err != nil {
		log.Warn("applying a watermark request failed; the next owner applies it", "op", c.Op, "err", err)
		return err
	}
	log.Info("watermark request applied", "op", c.Op, "watermark", time.UnixMilli(c.TimeMS).UTC())
	return nil
}

// load opens the tenant's store and a poller over it, and loads the state.
func (t *tenantRun) load(ctx context.Context, sc kafkastate.Config, pc poller.Config) (*kafkastate.Store, *poller.Poller, poller.Status, error) {
	store, err := kafkastate.Open(ctx, sc)
	if err != nil {
		return nil, nil, poller.Status{}, err
	}
	p, err := poller.New(pc, t.api, t.pub, store)
	if err == nil {
		var st poller.Status
		if st, err = p.Status(ctx); err == nil {
			return store, p, st, nil
		}
	}
	_ = store.Close()
	return nil, nil, poller.Status{}, err
}

// owner returns the instance that owns tenant now ("" for none), for `watermark`.
func (h *ha) owner(ctx context.Context, tenant string, partitions int) (string, error) {
	members, err := h.group.Load().Members(ctx)
	if err != nil {
		return "", err
	}
	for _, m := range members {
		if slices.Contains(m.Partitions, kafkastate.PartitionOf(tenant, partitions)) {
			return cmp.Or(m.Instance, m.ID), nil
		}
	}
	return "", nil
}

// watermarkKafka is `watermark show|set|reset` with STATE_STORE=kafka, which works while
// instances run: show names the owner; set and reset are handed to the owner, which applies them
// at its next cycle (a replay without downtime), or applied here when no instance owns the tenant.
func watermarkKafka(ctx context.Context, cfg *config, tcs []tenantConf, args []string, stdout, stderr io.Writer) error {
	log := newLogger(stderr, cfg.LogFormat, "warn", newSecretMask(cfg.secrets()))
	s := &service{cfg: cfg, log: log, metrics: newMetrics(cfg.PollInterval)}
	if err := s.openHA(tcs); err != nil {
		return err
	}
	wait := 2*cfg.GroupSessionTimeout + 2*cfg.PollInterval + 30*time.Second
	ctx, cancel := context.WithTimeout(ctx, cfg.KafkaWriteTimeout+wait)
	defer cancel()
	parts, err := kafkastate.EnsureTopic(ctx, s.ha.client, cfg.StateTopic, kafkastate.DefaultPartitions, cfg.KafkaTopicReplication, log)
	if errors.Is(err, kafkastate.ErrNotCompacted) {
		return usagef("FOLLOWPUB_STATE_TOPIC=%s: %v", cfg.StateTopic, err)
	}
	if err != nil {
		return err
	}
	for _, tc := range tcs {
		tenant := tc.ID
		sc := s.ha.stateCfg
		sc.Tenant, sc.Identity = tenant, cfg.stateIdentity(tc)
		owner, err := s.ha.owner(ctx, tenant, parts)
		if err != nil {
			return err
		}
		store, err := kafkastate.Open(ctx, sc)
		if err != nil {
			return err
		}
		defer func() { _ = store.Close() }() // each write was acknowledged
		pc := cfg.pollerConfig()
		pc.Logger, pc.StartFrom = log, tc.StartFrom
		p, err := poller.New(pc, nil, nil, store)
		if err != nil {
			return err
		}
		if _, err := p.Status(ctx); err != nil {
			return s.sharedError(err)
		}
		var at time.Time
		if args[0] == "set" {
			at, _ = poller.ParseTimeOrDate(args[1], cfg.location)
		}
		switch {
		case args[0] == "show":
		case owner == "" && args[0] == "set":
			err = p.SetWatermark(ctx, at)
		case owner == "" && args[0] == "reset":
			err = p.Reset(ctx)
		default:
			err = request(ctx, store, kafkastate.Command{Op: args[0], TimeMS: at.UnixMilli(), ID: strconv.FormatInt(time.Now().UnixNano(), 36)}, owner, wait)
		}
		if err != nil {
			return err
		}
		if p, err = poller.New(pc, nil, nil, store); err != nil { // the state as it is now
			return err
		}
		st, err := p.Status(ctx)
		if err != nil {
			return err
		}
		if args[0] == "reset" {
			fmt.Fprintf(stdout, "state of tenant %s in %s reset; its next cycle starts from %s\n", tenant, cfg.StateTopic, startFromName(cfg, tc))
			continue
		}
		b, err := json.Marshal(struct {
			poller.Status
			Tenant     string  `json:"tenant"`
			StateTopic string  `json:"state_topic"`
			Owner      *string `json:"owner"`
		}{st, tenant, cfg.StateTopic, nilIfEmpty(owner)})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
	}
	return nil
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// request hands c to the tenant's owner and waits until it applied it (deleted the request).
func request(ctx context.Context, store *kafkastate.Store, c kafkastate.Command, owner string, wait time.Duration) error {
	if err := store.Request(ctx, c); err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	for {
		if _, err := store.Load(ctx); err != nil {
			return err
		}
		if p := store.Pending(); p == nil || p.ID != c.ID {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("watermark %s: handed to the owner %s, which did not apply it within %s; it stays requested, and the tenant's next owner applies it", c.Op, owner, wait)
		}
		if err := retry.Sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}
