package ownership_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/kafkastate"
	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/internal/ownership"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// stateTopic creates a compacted state topic of 12 partitions.
func stateTopic(t *testing.T, brokers []string) string {
	t.Helper()
	topic := randomName("followpub-group-test-")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kafkastate.EnsureTopic(ctx, &kafka.Client{Addr: kafka.TCP(brokers...)}, topic, 12, -1, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return topic
}

// member is a Group running in the background; owns receives each Tenancy it is given.
type member struct {
	g      *ownership.Group
	cancel context.CancelFunc
	done   chan error
	owns   chan ownership.Tenancy
	once   sync.Once
}

func join(t *testing.T, cfg ownership.Config) *member {
	t.Helper()
	g, err := ownership.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{g: g, cancel: cancel, done: make(chan error, 1), owns: make(chan ownership.Tenancy, 16)}
	go func() {
		m.done <- g.Run(ctx, func(ctx context.Context, ten ownership.Tenancy) error {
			m.owns <- ten
			<-ctx.Done()
			return nil
		})
	}()
	t.Cleanup(m.leave)
	return m
}

func (m *member) leave() {
	m.once.Do(func() {
		m.cancel()
		if err := <-m.done; err != nil {
			panic(fmt.Sprintf("the member's Run ended with %v", err))
		}
	})
}

func waitOwner(t *testing.T, timeout time.Duration, ms ...*member) (int, ownership.Tenancy) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		for i, m := range ms {
			select {
			case ten := <-m.owns:
				return i, ten
			default:
			}
		}
		select {
		case <-deadline:
			t.Fatalf("no member owned the tenant within %v", timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestOneOwnerMovesOnLeaveAndOldGenerationIsFenced: of two members one owns the tenant; its
// fence holds while it owns it; when it leaves, the other owns the tenant at once, and the first
// one's fence of the generation it had fails.
func TestOneOwnerMovesOnLeaveAndOldGenerationIsFenced(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := ownership.Config{Tenants: []string{kafkastate.DefaultTenant}, PartitionOf: kafkastate.PartitionOf, Brokers: brokers, GroupID: randomName("followpub-group-"), Topic: stateTopic(t, brokers), SessionTimeout: 6 * time.Second}
	a := join(t, cfg)
	i, first := waitOwner(t, 30*time.Second, a)
	if i != 0 || first.Tenant != kafkastate.DefaultTenant {
		t.Fatalf("the only member got %+v", first)
	}
	until, err := first.Fence(context.Background())
	if err != nil {
		t.Fatalf("the owner's fence: %v", err)
	}
	if d := time.Until(until); d <= 0 || d > cfg.SessionTimeout {
		t.Fatalf("the fence runs for %v, want within (0, %v]", d, cfg.SessionTimeout)
	}
	b := join(t, cfg)
	ms := []*member{a, b}
	// b's joining starts a new generation: exactly one of them owns the tenant in it.
	owner, second := waitOwner(t, 30*time.Second, ms...)
	if second.Generation <= first.Generation {
		t.Fatalf("generation %d after %d", second.Generation, first.Generation)
	}
	if _, err := first.Fence(context.Background()); !errors.Is(err, ownership.ErrFenced) {
		t.Fatalf("the fence of generation %d once %d began: %v, want ErrFenced", first.Generation, second.Generation, err)
	}
	began := time.Now()
	ms[owner].leave()
	other := ms[1-owner]
	select {
	case third := <-other.owns:
		if moved := time.Since(began); moved > 3*time.Second {
			t.Errorf("the tenant moved %v after the owner left, want at once", moved)
		}
		if _, err := third.Fence(context.Background()); err != nil {
			t.Errorf("the new owner's fence: %v", err)
		}
		if st := other.g.Status(); !st.Joined || len(st.Owned) != 1 || st.Generation != third.Generation {
			t.Errorf("status %+v, want joined, owning the tenant in generation %d", st, third.Generation)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the tenant did not move after its owner left")
	}
	if _, err := second.Fence(context.Background()); !errors.Is(err, ownership.ErrFenced) {
		t.Errorf("the fence of the member that left: %v, want ErrFenced", err)
	}
}

func TestSessionTimeoutOutOfRange(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	g, err := ownership.New(ownership.Config{Tenants: []string{kafkastate.DefaultTenant}, PartitionOf: kafkastate.PartitionOf, Brokers: brokers, GroupID: randomName("followpub-group-"), Topic: stateTopic(t, brokers), SessionTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = g.Run(ctx, func(context.Context, ownership.Tenancy) error { return nil })
	if !errors.Is(err, ownership.ErrSessionTimeout) {
		t.Fatalf("Run with a session timeout of 1s: %v, want ErrSessionTimeout (the broker's minimum is 6s)", err)
	}
}

// TestSharedGroupIsRefused: a deployment with another identity, or another state topic, is
// refused before it joins; the members are described with their instance and partitions.
func TestSharedGroupIsRefused(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := ownership.Config{Tenants: []string{kafkastate.DefaultTenant}, PartitionOf: kafkastate.PartitionOf, Brokers: brokers, GroupID: randomName("followpub-group-"), Topic: stateTopic(t, brokers),
		SessionTimeout: 6 * time.Second, Identity: "first", Instance: "host-a/1"}
	a := join(t, cfg)
	waitOwner(t, 30*time.Second, a)
	for _, tc := range []struct {
		name   string
		mod    func(*ownership.Config)
		refuse bool
	}{
		{"same deployment", func(*ownership.Config) {}, false},
		{"other identity", func(c *ownership.Config) { c.Identity = "second" }, true},
		{"other state topic", func(c *ownership.Config) { c.Topic = "followpub.other-state" }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.Instance = "host-b/2"
			tc.mod(&c)
			g, err := ownership.New(c)
			if err != nil {
				t.Fatal(err)
			}
			err = g.CheckShared(context.Background())
			if tc.refuse != errors.Is(err, ownership.ErrShared) {
				t.Fatalf("CheckShared: %v, want refused %v", err, tc.refuse)
			}
		})
	}
	g, _ := ownership.New(cfg)
	ms, err := g.Members(context.Background())
	if err != nil || len(ms) != 1 || ms[0].Instance != "host-a/1" || len(ms[0].Partitions) != 12 {
		t.Fatalf("members %+v, %v; want host-a/1 with the 12 partitions", ms, err)
	}
}
