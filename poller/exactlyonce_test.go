package poller_test

import (
	"context"
	"errors"
	"testing"

	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/schema"
)

// TestALostAcknowledgementIsNotResent: the publisher appended a batch but its acknowledgement was
// lost. The read-back that follows finds the batch and commits it; nothing is published twice,
// and the cycle goes on with the next batch.
func TestALostAcknowledgementIsNotResent(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), func(c *poller.Config) { c.BatchSize = 3 })
	r.cycle() // the state, and the first read-back (fresh: the tail starts at the end)
	var all []schema.Record
	for i := range 7 {
		all = append(all, r.api.add(int64(i+1), sh(t, 2024, 2, 8, 1, i, 0, 0)))
	}
	r.kafka.lostAcks = 1
	res := r.cycle()
	if res.Published != 7 {
		t.Fatalf("published %d records, want 7 (three of them found by the read-back)", res.Published)
	}
	r.assertExactlyOnce(all...)
	if r.late.settled != 1 || r.late.found != 3 {
		t.Fatalf("settled %d ambiguous writes finding %d records, want 1 and 3", r.late.settled, r.late.found)
	}
	st, _ := r.store.Load(context.Background())
	if st.Tail.Next[0] != 7 || len(st.Seen) != 7 {
		t.Fatalf("state tail %v with %d ids, want offset 7 and 7 ids", st.Tail, len(st.Seen))
	}
}

// TestATemporaryFailureSendsOnlyWhatDidNotLand: a batch fails part-way with a temporary error;
// after the read-back, only the records that did not land are sent again, in the same cycle.
func TestATemporaryFailureSendsOnlyWhatDidNotLand(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), func(c *poller.Config) { c.BatchSize = 5 })
	r.cycle()
	var all []schema.Record
	for i := range 5 {
		all = append(all, r.api.add(int64(i+1), sh(t, 2024, 2, 8, 1, i, 0, 0)))
	}
	r.kafka.failAfter, r.kafka.temporary, r.kafka.heal = 2, true, true
	res := r.cycle()
	if res.Published != 5 {
		t.Fatalf("published %d, want 5", res.Published)
	}
	r.assertExactlyOnce(all...)
	if r.kafka.calls != 2 || r.late.settled != 1 {
		t.Fatalf("%d publish calls and %d writes settled, want 2 and 1", r.kafka.calls, r.late.settled)
	}
}

// TestACrashBeforeTheCommitIsSettledAtStart: Kafka took a batch but the process died before the
// commit (here: the commit failed and the process went away). A new process reads the topic back
// before it publishes: the batch is committed, not sent again.
func TestACrashBeforeTheCommitIsSettledAtStart(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), func(c *poller.Config) { c.BatchSize = 2 })
	r.cycle()
	var all []schema.Record
	for i := range 5 {
		all = append(all, r.api.add(int64(i+1), sh(t, 2024, 2, 8, 1, i, 0, 0)))
	}
	r.store.Fail(errors.New("killed"))
	if _, err := r.p.Cycle(context.Background()); err == nil {
		t.Fatal("a cycle whose commit failed succeeded")
	}
	if got := len(r.kafka.published()); got != 2 {
		t.Fatalf("%d records in the topic, want the one batch of 2", got)
	}
	r.store.Fail(nil)
	r.newPoller(func(c *poller.Config) { c.BatchSize = 2 }) // the restarted process
	r.cycle()
	r.assertExactlyOnce(all...)
	if r.late.found != 2 {
		t.Fatalf("the read-back at start found %d records, want the batch of 2", r.late.found)
	}
}

// TestNoPublishUntilTheReadBackSucceeds: when the topic cannot be read back, nothing is published
// (the fate of an earlier write is unknown), and the cycle fails.
func TestNoPublishUntilTheReadBackSucceeds(t *testing.T) {
	r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), nil)
	r.api.add(1, sh(t, 2024, 2, 8, 1, 0, 0, 0))
	r.kafka.readBackErr = errors.New("brokers down")
	if _, err := r.p.Cycle(context.Background()); err == nil {
		t.Fatal("a cycle succeeded without its read-back")
	}
	if n := len(r.kafka.published()); n != 0 {
		t.Fatalf("%d records published before the read-back succeeded", n)
	}
	r.kafka.readBackErr = nil
	r.cycle()
	if n := len(r.kafka.published()); n != 1 {
		t.Fatalf("%d records published after the read-back succeeded, want 1", n)
	}
}
