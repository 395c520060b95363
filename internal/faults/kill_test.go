package faults

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/wshotosim"
)

// kills is how many times TestSIGKILLLoop kills followpub; at least duringPublish of them land
// while a publish is under way.
const (
	kills         = 25
	duringPublish = 8
)

// TestSIGKILLLoop kills `followpub run` with SIGKILL at random moments while records keep arriving
// (a backfill of 50 000 records over the three days before today first; then one new record a
// second, a tenth of them late, and a burst of 1 500 records within the last 40 minutes before
// every life) and restarts it each time. After each kill the store must open and load, and the
// records that life put in the topic without committing them (its publication under way) must be
// at most one publish batch: the next life finds them by reading the topic back and must not
// publish them again. At the end a `run --once` must leave every record the API showed in the
// topic exactly once: zero lost, zero duplicated, with at least duringPublish kills landing while
// a publish was under way.
func TestSIGKILLLoop(t *testing.T) {
	t.Parallel()
	from, to := pastDays(3)
	w := e2etest.NewWorld(t, wshotosim.Config{
		Count: 50000, Start: from, End: to,
		Rate: 1, LateFraction: 0.1, LateBy: 10 * time.Minute,
	}, from.Add(-time.Minute))
	env := w.Env("FOLLOWPUB_POLL_INTERVAL=200ms")
	ta := newTally(t, w.Brokers, w.Topic)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))

	ends := newEndWatcher(t, w.Brokers, w.Topic)

	type life struct {
		mode        string
		grew        bool // the topic grew during this life before the kill
		ran         time.Duration
		published   int // messages this life appended
		uncommitted int // of which not in the committed state
		seen        int
	}
	var lives []life
	// The read-backs at start-up that found records of the life before (from the logs).
	var readBacks, readBackMostRecords int
	var readBackMax time.Duration
	for i := range kills {
		burst := make([]time.Time, 1500)
		now := time.Now()
		for k := range burst {
			burst[k] = now.Add(-time.Duration(rng.Int64N(int64(40 * time.Minute))))
		}
		w.Sim.Insert(burst...)
		// Random moments: a third of the lives are killed at a uniformly random time (a few of
		// those right at start-up, while the store is opened or created); the others a random
		// 0–15 ms after the topic started to grow, that is while a publication is under way.
		var d time.Duration
		mode := "random"
		base := ends.total(t)
		p := start(t, env, "run")
		began := time.Now()
		switch {
		case i%8 == 0:
			mode = "start-up"
			time.Sleep(time.Duration(rng.Int64N(int64(60 * time.Millisecond))))
		case i%3 == 0:
			time.Sleep(time.Duration(rng.Int64N(int64(1500*time.Millisecond))) + 20*time.Millisecond)
		default:
			mode = "publishing"
			for ends.total(t) == base && time.Since(began) < 5*time.Second {
				time.Sleep(2 * time.Millisecond)
			}
			time.Sleep(time.Duration(rng.Int64N(int64(15 * time.Millisecond))))
		}
		d = time.Since(began)
		grew := ends.total(t) > base
		if p.Exited() {
			t.Fatalf("life %d: followpub exited by itself (status %d) before the kill:\n%s", i+1, p.ExitCode(), tail(p.Output(), 40))
		}
		p.Signal(syscall.SIGKILL)
		p.Wait(10 * time.Second)
		if p.Signaled() != syscall.SIGKILL {
			t.Fatalf("life %d ended with status %d, not by the SIGKILL:\n%s", i+1, p.ExitCode(), tail(p.Output(), 40))
		}
		noSecret(t, "the log of a killed life", p.Output())
		for _, l := range lines(p.Output(), `"msg":"the read-back found records of ours`) {
			var rb struct {
				Committed int   `json:"committed"`
				Duration  int64 `json:"duration"`
			}
			if json.Unmarshal([]byte(l), &rb) == nil {
				readBacks++
				readBackMax = max(readBackMax, time.Duration(rb.Duration))
				readBackMostRecords = max(readBackMostRecords, rb.Committed)
			}
		}
		time.Sleep(200 * time.Millisecond) // let the broker finish requests the dead process had sent

		// The store is never left unreadable.
		st, err := loadState(w.State)
		if err != nil {
			t.Fatalf("life %d: after SIGKILL at %v the store does not load: %v", i+1, d, err)
		}
		msgs := ta.sync(t)
		l := life{mode: mode, grew: grew, ran: d, published: len(msgs), seen: len(st.Seen)}
		if st.Exists {
			for _, m := range msgs {
				id := mustID(t, m.Key)
				if _, ok := st.Seen[id]; ok {
					continue
				}
				if ft := followTime(t, m.Value); ft >= st.Floor {
					l.uncommitted++
				}
			}
		} else {
			l.uncommitted = len(msgs)
		}
		if l.uncommitted > batchSize {
			t.Fatalf("life %d (killed after %v): %d records published but not committed, more than one batch (%d)",
				i+1, d, l.uncommitted, batchSize)
		}
		lives = append(lives, l)
	}

	// The ground truth, then one last complete cycle.
	want := w.Want()
	finalRun(t, env)
	ta.sync(t)
	lost := ta.missing(want)
	if len(lost) > 0 {
		slices.Sort(lost)
		t.Errorf("%d of %d records lost after %d kills, e.g. %v", len(lost), len(want), kills, lost[:min(10, len(lost))])
	}
	if extra := ta.unexpected(want); len(extra) > 0 {
		// Arrivals after the snapshot may be in the topic; anything else is not.
		after := map[int64]bool{}
		for _, r := range w.Sim.Visible() {
			after[r.ID] = true
		}
		for _, id := range extra {
			if !after[id] {
				t.Errorf("id %d is in the topic but the API never showed it", id)
			}
		}
	}
	copies, keys := ta.dups()
	inflight, killedInFlight, maxInflight, published, publishing := 0, 0, 0, 0, 0
	for _, l := range lives {
		inflight += l.uncommitted
		maxInflight = max(maxInflight, l.uncommitted)
		published += l.published
		if l.uncommitted > 0 {
			killedInFlight++
		}
		if l.mode == "publishing" && l.grew {
			publishing++
		}
	}
	if copies > 0 {
		t.Errorf("%d duplicate copies of %d keys after %d kills (%d records were in the topic but not committed at the kills), want none",
			copies, keys, kills, inflight)
	}
	if publishing < duringPublish || killedInFlight == 0 {
		t.Errorf("%d kills landed while a publish was under way (%d with records uncommitted), want at least %d: the test proved little (lives: %+v)",
			publishing, killedInFlight, duringPublish, lives)
	}
	for i, l := range lives {
		t.Logf("life %2d: killed %-10s after %4dms, appended %5d, uncommitted at the kill %4d, remembered ids %6d",
			i+1, l.mode, l.ran.Milliseconds(), l.published, l.uncommitted, l.seen)
	}
	figures(t, "injected=%d lost=%d duplicated=%d records=%d messages=%d duplicate_keys=%d kills_while_publishing=%d "+
		"kills_with_records_uncommitted=%d uncommitted_total=%d uncommitted_max=%d batch=%d "+
		"readbacks_that_found_records=%d readback_most_records=%d readback_longest=%v",
		kills, len(lost), copies, len(want), ta.total, keys, publishing, killedInFlight, inflight, maxInflight, batchSize,
		readBacks, readBackMostRecords, readBackMax.Round(time.Millisecond))
}
