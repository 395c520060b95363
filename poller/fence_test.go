package poller_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/schema"
)

// deadlineKafka records the deadline of each Publish call's context.
type deadlineKafka struct {
	*fakeKafka
	deadlines []time.Time
}

func (k *deadlineKafka) Publish(ctx context.Context, recs []schema.Record) (poller.Written, error) {
	d, _ := ctx.Deadline()
	k.deadlines = append(k.deadlines, d)
	return k.fakeKafka.Publish(ctx, recs)
}

// TestFenceBoundsEveryPublish: with a Fence, each publish is made only when the fence allows
// it, with its context ending when the fence says; a refusing fence publishes nothing and the
// cycle fails saying why, and the records go out once the fence allows it again.
func TestFenceBoundsEveryPublish(t *testing.T) {
	var refuse error
	until := time.Now().Add(time.Hour).Truncate(time.Second)
	fences := 0
	fence := func(context.Context) (time.Time, error) {
		fences++
		return until, refuse
	}
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), nil)
	dk := &deadlineKafka{fakeKafka: r.kafka}
	p, err := poller.New(poller.Config{Location: r.loc, Interval: time.Second, Lookback: time.Hour, StartFrom: "today",
		BatchSize: 3, Clock: r.clock.Now, Fence: fence}, r.api, dk, r.store)
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	r.cycle()
	var all []schema.Record
	for i := range 5 {
		all = append(all, r.api.add(int64(i+1), sh(t, 2024, 2, 8, 1, i, 0, 0)))
	}
	refuse = errors.New("the membership is gone")
	if _, err := p.Cycle(context.Background()); err == nil || !errors.Is(err, refuse) {
		t.Fatalf("cycle with a refusing fence: %v, want the fence's error", err)
	}
	if n := len(r.kafka.published()); n != 0 {
		t.Fatalf("%d records published while the fence refused", n)
	}
	refuse = nil
	r.cycle()
	r.assertExactlyOnce(all...)
	if len(dk.deadlines) != 2 || fences != 3 {
		t.Fatalf("%d publishes after %d fence calls, want 2 batches after 3 calls", len(dk.deadlines), fences)
	}
	for i, d := range dk.deadlines {
		if !d.Equal(until) {
			t.Errorf("publish %d had the deadline %v, want the fence's %v", i, d, until)
		}
	}
}
