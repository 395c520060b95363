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
	all := []schema.Record{r.api.add(100, sh(t, 2024, 2, 8, 0, 30, 0, 0))}
	r.cycle() // publishes one record, and records the tail
	for i := range 5 {
		all = append(all, r.api.add(int64(i+1), sh(t, 2024, 2, 8, 1, i, 0, 0)))
	}
	r.store.Fail(errors.New("killed"))
	if _, err := r.p.Cycle(context.Background()); err == nil {
		t.Fatal("a cycle whose commit failed succeeded")
	}
	if got := len(r.kafka.published()); got != 3 {
		t.Fatalf("%d records in the topic, want the first and one batch of 2", got)
	}
	r.store.Fail(nil)
	r.newPoller(func(c *poller.Config) { c.BatchSize = 2 }) // the restarted process
	res := r.cycle()
	r.assertExactlyOnce(all...)
	// Skipped as published: the first record (remembered) and the batch (found by the read-back).
	if r.late.found != 2 || res.Duplicates != 3 {
		t.Fatalf("the read-back at start found %d records (%d skipped as published), want the batch of 2 (and 3)", r.late.found, res.Duplicates)
	}
}

// TestRecordsWhoseCommitFailedAreCountedOnce: Kafka took a batch whose commit failed. The cycle that
// published it counts it, and the cycle that commits it later does not count it again: the counts of
// the cycle lines add up to what the topic holds, in the same process and across a restart.
func TestRecordsWhoseCommitFailedAreCountedOnce(t *testing.T) {
	for _, restart := range []bool{false, true} {
		r := newRig(t, sh(t, 2024, 2, 8, 12, 0, 0, 0), func(c *poller.Config) { c.BatchSize = 2 })
		all := []schema.Record{r.api.add(100, sh(t, 2024, 2, 8, 0, 30, 0, 0))}
		counted := r.cycle().Published
		for i := range 5 {
			all = append(all, r.api.add(int64(i+1), sh(t, 2024, 2, 8, 1, i, 0, 0)))
		}
		r.store.Fail(errors.New("disk full"))
		res, err := r.p.Cycle(context.Background())
		if err == nil {
			t.Fatal("a cycle whose commit failed succeeded")
		}
		counted += res.Published
		r.store.Fail(nil)
		if restart {
			r.newPoller(func(c *poller.Config) { c.BatchSize = 2 })
		}
		counted += r.cycle().Published
		r.assertExactlyOnce(all...)
		if got := len(r.kafka.published()); counted != got {
			t.Errorf("restart %v: the cycles counted %d records published, the topic holds %d", restart, counted, got)
		}
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
