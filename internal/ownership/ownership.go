package ownership

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/followpub/followpub/internal/retry"
)

// Defaults of Config.
const (
	DefaultGroupID        = "followpub"
	DefaultSessionTimeout = 10 * time.Second
)

var (
	// ErrFenced means this member cannot prove that it still owns the tenant: nothing may be
	// written for it.
	ErrFenced = errors.New("not provably the owner")
	// ErrSessionTimeout means the broker refused the session timeout (outside its
	// group.min.session.timeout.ms and group.max.session.timeout.ms).
	ErrSessionTimeout = errors.New("the broker refuses the session timeout")
)

// Config configures a Group. The zero value of each field means its default.
type Config struct {
	// Brokers are the bootstrap servers. Required.
	Brokers []string
	// GroupID is the consumer group of the deployment's instances. Default: DefaultGroupID.
	GroupID string
	// Topic is the state topic, whose partitions are what the group assigns. Required.
	Topic string
	// Tenants are the deployment's tenants. Required.
	Tenants []string
	// PartitionOf maps a tenant to the partition of Topic that holds its state
	// (kafkastate.PartitionOf): its owner owns the tenant. Required.
	PartitionOf func(tenant string, partitions int) int
	// SessionTimeout is how long the coordinator keeps a silent member. Default:
	// DefaultSessionTimeout.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often kafka-go's heartbeat runs; the shorter, the sooner a standby
	// sees the generation end when the owner dies (a heartbeat is one small request). Default: a
	// twentieth of SessionTimeout.
	HeartbeatInterval time.Duration
	// Margin is taken off the session timeout in Fence, for the time a write takes to reach the
	// broker after it was allowed. Default: a fifth of SessionTimeout.
	Margin time.Duration
	// Identity names the deployment (kafkastate.Config.Identity) and Instance this process
	// (host and pid), as the other members and `followpub watermark show` see them. Default: none.
	Identity string
	Instance string
	// SameDeployment reports whether another member's Identity is this deployment's (CheckShared).
	// Default: equal strings.
	SameDeployment func(mine, theirs string) bool
	// Dialer and Transport connect to the brokers (TLS, SASL): the Dialer for the group's own
	// connections, the Transport for Fence's heartbeats. Defaults: kafka-go's.
	Dialer    *kafka.Dialer
	Transport *kafka.Transport
	// Logger receives the group's logs. Default: none.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	c.GroupID = cmp.Or(c.GroupID, DefaultGroupID)
	c.SessionTimeout = cmp.Or(c.SessionTimeout, DefaultSessionTimeout)
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, c.SessionTimeout/20)
	c.Margin = cmp.Or(c.Margin, c.SessionTimeout/5)
	if c.SameDeployment == nil {
		c.SameDeployment = func(mine, theirs string) bool { return mine == theirs }
	}
	if c.Transport == nil {
		c.Transport = &kafka.Transport{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("the group needs at least one broker")
	case c.Topic == "":
		return errors.New("the group needs the state topic")
	case len(c.Tenants) == 0 || c.PartitionOf == nil:
		return errors.New("the group needs the tenants and their partitions")
	case c.SessionTimeout <= 0 || c.HeartbeatInterval <= 0 || c.Margin < 0:
		return errors.New("the session timeout and heartbeat interval must be positive")
	case c.Margin >= c.SessionTimeout:
		return errors.New("the fence margin must be shorter than the session timeout")
	}
	return nil
}

// Tenancy is one tenant owned for one generation.
type Tenancy struct {
	// Tenant is the tenant id.
	Tenant string
	// Generation is the group generation that gave it.
	Generation int32
	// Fence reports whether this member still provably owns the tenant and until when: see the
	// package documentation. It fails with ErrFenced when it cannot prove it.
	Fence func(ctx context.Context) (time.Time, error)
}

// Status is what the group knows of this member now.
type Status struct {
	// Joined is true while this member is in a generation.
	Joined bool
	// Generation and Member identify that generation and this member in it.
	Generation int32
	Member     string
	// Owned are the tenants this member owns in it.
	Owned []string
}

// Group is this instance's membership of the deployment's group.
type Group struct {
	cfg    Config
	log    *slog.Logger
	client *kafka.Client

	mu     sync.Mutex
	status Status
	// heldParts are the state topic's partitions of the current (or last) generation.
	heldParts []int
}

// held returns the partitions this member was given in its last generation.
func (g *Group) held() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.heldParts)
}

// New returns the Group of cfg after filling defaults and validating; it does not touch the
// network (Run does).
func New(cfg Config) (*Group, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Group{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "group", "group_id", cfg.GroupID),
		client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: cfg.Transport, Timeout: cfg.SessionTimeout},
	}, nil
}

// Status returns the membership as it is now.
func (g *Group) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.status
	s.Owned = slices.Clone(s.Owned)
	return s
}

func (g *Group) setStatus(s Status) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.status = s
}

// Run joins the group and, in each generation, runs work once for each tenant this member owns,
// with a context that ends when the generation ends; the next generation starts once every work
// of the last one returned. When ctx ends, Run leaves the group (the work first sees its context
// end) and returns nil. A work that returns an error while its generation goes on ends Run with
// that error, after leaving the group. The broker refusing the session timeout is ErrSessionTimeout.
func (g *Group) Run(ctx context.Context, work func(ctx context.Context, t Tenancy) error) error {
	data, err := json.Marshal(memberData{Identity: g.cfg.Identity, Instance: g.cfg.Instance})
	if err != nil {
		return err
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                g.cfg.GroupID,
		Brokers:           g.cfg.Brokers,
		Dialer:            g.cfg.Dialer,
		Topics:            []string{g.cfg.Topic},
		GroupBalancers:    []kafka.GroupBalancer{tenantBalancer{g: g}, balancer{data: data}},
		HeartbeatInterval: g.cfg.HeartbeatInterval,
		SessionTimeout:    g.cfg.SessionTimeout,
		// A rebalance waits this long for the old owner to stop and rejoin; no shorter than the
		// session, so that a member a rebalance leaves behind is not dropped before its fence
		// has run out.
		RebalanceTimeout: g.cfg.SessionTimeout,
		JoinGroupBackoff: min(time.Second, g.cfg.SessionTimeout/4),
		// An offset is never committed: the group serves only to assign partitions.
		StartOffset: kafka.LastOffset,
		Timeout:     min(5*time.Second, g.cfg.SessionTimeout),
		Logger:      kafka.LoggerFunc(debugf(g.log)),
		ErrorLogger: kafka.LoggerFunc(debugf(g.log.With("kafka_error", true))),
	})
	if err != nil {
		return fmt.Errorf("joining group %s: %w", g.cfg.GroupID, err)
	}
	closed := make(chan struct{})
	stop := sync.OnceFunc(func() {
		_ = cg.Close() // ends the generation, waits for its work, sends LeaveGroup
		close(closed)
	})
	defer stop()
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-closed:
		}
	}()
	defer g.setStatus(Status{})
	for {
		gen, err := cg.Next(ctx)
		switch {
		case ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed):
			return nil
		case errors.Is(err, kafka.InvalidSessionTimeout):
			return fmt.Errorf("%w: joining group %s with a session timeout of %s: %w", ErrSessionTimeout, g.cfg.GroupID, g.cfg.SessionTimeout, err)
		case err != nil:
			g.log.Warn("joining the group failed; trying again", "err", err)
			continue
		}
		if err := g.generation(gen, work); err != nil {
			stop()
			return err
		}
	}
}

// generation runs one generation's work and returns when the generation ended, or with the first
// error a work returned while the generation went on.
func (g *Group) generation(gen *kafka.Generation, work func(ctx context.Context, t Tenancy) error) error {
	began := time.Now()
	assigned := map[int]bool{}
	var held []int
	for _, pa := range gen.Assignments[g.cfg.Topic] {
		assigned[pa.ID] = true
		held = append(held, pa.ID)
	}
	g.mu.Lock()
	g.heldParts = held
	g.mu.Unlock()
	parts, err := g.partitions()
	for policy := retry.New(100*time.Millisecond, time.Second); err != nil && time.Since(began) < g.cfg.SessionTimeout/2; {
		_ = retry.Sleep(context.Background(), policy.Next())
		parts, err = g.partitions()
	}
	if err != nil {
		// Without the partition count this member cannot tell which tenants it was given: end the
		// generation (a function of it returning does), so that the group assigns again.
		g.log.Warn("reading the partitions of the state topic failed; leaving the generation", "err", err)
		gen.Start(func(context.Context) {})
	}
	var owned []string
	for _, t := range g.cfg.Tenants {
		if parts > 0 && assigned[g.cfg.PartitionOf(t, parts)] {
			owned = append(owned, t)
		}
	}
	g.setStatus(Status{Joined: true, Generation: gen.ID, Member: gen.MemberID, Owned: owned})
	g.log.Info("group generation joined", "generation", gen.ID, "member", gen.MemberID, "owned", owned, "partitions_assigned", len(assigned))
	failed := make(chan error, len(owned))
	ended := make(chan struct{})
	l := &lease{g: g, gen: gen.ID, member: gen.MemberID}
	for _, t := range owned {
		gen.Start(func(ctx context.Context) {
			if err := work(ctx, Tenancy{Tenant: t, Generation: gen.ID, Fence: l.fence}); err != nil && ctx.Err() == nil {
				failed <- fmt.Errorf("tenant %s: %w", t, err)
			}
		})
	}
	gen.Start(func(ctx context.Context) {
		<-ctx.Done()
		close(ended)
	})
	select {
	case err := <-failed:
		return err
	case <-ended:
		select {
		case err := <-failed:
			return err
		default:
		}
		g.log.Info("group generation ended", "generation", gen.ID)
		g.setStatus(Status{Generation: gen.ID, Member: gen.MemberID})
		return nil
	}
}

// partitions returns the state topic's partition count.
func (g *Group) partitions() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.SessionTimeout)
	defer cancel()
	md, err := g.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{g.cfg.Topic}})
	if err != nil {
		return 0, err
	}
	for _, t := range md.Topics {
		if t.Name == g.cfg.Topic {
			return len(t.Partitions), t.Error
		}
	}
	return 0, fmt.Errorf("topic %s is not in the metadata", g.cfg.Topic)
}

// lease is one generation's membership, for Fence.
type lease struct {
	g      *Group
	gen    int32
	member string

	mu    sync.Mutex
	coord net.Addr
}

// fence sends a heartbeat for the generation; when the coordinator accepts it, no other member
// can be given this member's partitions before the coordinator received it plus the session
// timeout, so until the send time plus the session timeout less the margin.
func (l *lease) fence(ctx context.Context) (time.Time, error) {
	cfg := l.g.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.SessionTimeout-cfg.Margin)
	defer cancel()
	sent := time.Now()
	addr, err := l.coordinator(ctx)
	if err == nil {
		var res protocol.Message
		res, err = cfg.Transport.RoundTrip(ctx, addr, &heartbeatRequest{GroupID: cfg.GroupID, GenerationID: l.gen, MemberID: l.member})
		if hr, ok := res.(*heartbeatResponse); err == nil && ok && hr.ErrorCode != 0 {
			err = kafka.Error(hr.ErrorCode)
		} else if err == nil && !ok {
			err = fmt.Errorf("the broker answered a heartbeat with %T", res)
		}
	}
	if err != nil {
		l.mu.Lock()
		l.coord = nil // the coordinator may have moved
		l.mu.Unlock()
		return time.Time{}, fmt.Errorf("%w: the heartbeat of generation %d was not accepted: %w", ErrFenced, l.gen, err)
	}
	until := sent.Add(cfg.SessionTimeout - cfg.Margin)
	if !time.Now().Before(until) {
		return time.Time{}, fmt.Errorf("%w: the heartbeat of generation %d took %s, longer than the session allows", ErrFenced, l.gen, time.Since(sent))
	}
	return until, nil
}

func (l *lease) coordinator(ctx context.Context) (net.Addr, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.coord != nil {
		return l.coord, nil
	}
	res, err := l.g.client.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{Key: l.g.cfg.GroupID, KeyType: kafka.CoordinatorKeyTypeConsumer})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		return nil, fmt.Errorf("finding the coordinator of group %s: %w", l.g.cfg.GroupID, err)
	}
	l.coord = kafka.TCP(net.JoinHostPort(res.Coordinator.Host, strconv.Itoa(res.Coordinator.Port)))
	return l.coord, nil
}

// debugf routes a printf-style kafka-go logger to log at debug level.
func debugf(log *slog.Logger) func(string, ...any) {
	return func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...), "source", "kafka-go") }
}
