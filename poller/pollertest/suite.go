package pollertest

import (
	"context"
	"testing"

	"github.com/followpub/followpub/poller"
)

// StoreSuite is the test suite every poller.Store passes. open returns a store over the same
// persistent location each time it is called within one subtest (reopen), after closing the previous
// one with the returned close function; a fresh subtest gets a fresh location.
func StoreSuite(t *testing.T, newLocation func(t *testing.T) (open func() (poller.Store, func()))) {
	ctx := context.Background()
	t.Run("empty", func(t *testing.T) {
		s, done := newLocation(t)()
		defer done()
		st, err := s.Load(ctx)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if st.Exists || len(st.Seen) != 0 {
			t.Fatalf("a new store has state: %+v", st)
		}
	})
	t.Run("commit and reopen", func(t *testing.T) {
		open := newLocation(t)
		s, done := open()
		mustReplace(t, s, 1000, 1000)
		mustCommit(t, s, poller.Change{Add: []poller.Published{{ID: 1, FollowTime: 1500}, {ID: 1 << 62, FollowTime: 2000}}, Floor: 1000, Watermark: 2000})
		done()
		s, done = open()
		defer done()
		want := poller.State{Exists: true, Floor: 1000, Watermark: 2000, Seen: map[int64]int64{1: 1500, 1 << 62: 2000}}
		assertState(t, s, want)
	})
	t.Run("floor forgets ids below it", func(t *testing.T) {
		open := newLocation(t)
		s, done := open()
		mustReplace(t, s, 0, 0)
		mustCommit(t, s, poller.Change{Add: []poller.Published{{ID: 10, FollowTime: 100}, {ID: 11, FollowTime: 200}, {ID: 12, FollowTime: 300}}, Watermark: 300})
		mustCommit(t, s, poller.Change{Floor: 200, Watermark: 300})
		done()
		s, done = open()
		defer done()
		assertState(t, s, poller.State{Exists: true, Floor: 200, Watermark: 300, Seen: map[int64]int64{11: 200, 12: 300}})
	})
	t.Run("watermark never goes back in a commit", func(t *testing.T) {
		s, done := newLocation(t)()
		defer done()
		mustReplace(t, s, 0, 500)
		mustCommit(t, s, poller.Change{Add: []poller.Published{{ID: 1, FollowTime: 100}}, Watermark: 100})
		assertState(t, s, poller.State{Exists: true, Floor: 0, Watermark: 500, Seen: map[int64]int64{1: 100}})
	})
	t.Run("replace forgets every id", func(t *testing.T) {
		open := newLocation(t)
		s, done := open()
		mustReplace(t, s, 0, 0)
		mustCommit(t, s, poller.Change{Add: []poller.Published{{ID: 1, FollowTime: 100}}, Watermark: 100})
		mustReplace(t, s, 50, 60)
		done()
		s, done = open()
		defer done()
		assertState(t, s, poller.State{Exists: true, Floor: 50, Watermark: 60, Seen: map[int64]int64{}})
	})
	t.Run("reset deletes the state", func(t *testing.T) {
		open := newLocation(t)
		s, done := open()
		mustReplace(t, s, 0, 0)
		mustCommit(t, s, poller.Change{Add: []poller.Published{{ID: 1, FollowTime: 100}}, Watermark: 100})
		if err := s.Reset(ctx); err != nil {
			t.Fatalf("Reset: %v", err)
		}
		done()
		s, done = open()
		defer done()
		assertState(t, s, poller.State{Seen: map[int64]int64{}})
	})
	t.Run("the tail is committed, kept by replace, deleted by reset", func(t *testing.T) {
		open := newLocation(t)
		s, done := open()
		mustReplace(t, s, 0, 0)
		tail := poller.Tail{Topic: "t", Next: map[int]int64{0: 17, 2: 1 << 40}}
		mustCommit(t, s, poller.Change{Add: []poller.Published{{ID: 1, FollowTime: 100}}, Watermark: 100, Tail: &tail})
		// A commit without a tail leaves it as it is.
		mustCommit(t, s, poller.Change{Add: []poller.Published{{ID: 2, FollowTime: 100}}, Watermark: 100})
		done()
		s, done = open()
		assertState(t, s, poller.State{Exists: true, Watermark: 100, Seen: map[int64]int64{1: 100, 2: 100}, Tail: tail})
		mustReplace(t, s, 50, 50)
		assertState(t, s, poller.State{Exists: true, Floor: 50, Watermark: 50, Seen: map[int64]int64{}, Tail: tail})
		if err := s.Reset(ctx); err != nil {
			t.Fatalf("Reset: %v", err)
		}
		done()
		s, done = open()
		defer done()
		assertState(t, s, poller.State{Seen: map[int64]int64{}})
	})
	t.Run("the full read is committed, forgotten by replace, deleted by reset", func(t *testing.T) {
		open := newLocation(t)
		s, done := open()
		mustReplace(t, s, 0, 0)
		full := poller.FullRead{At: 1_700_000_000_123, From: 1_699_920_000_000}
		mustCommit(t, s, poller.Change{Watermark: 100, FullRead: &full})
		// A commit without one leaves it as it is.
		mustCommit(t, s, poller.Change{Add: []poller.Published{{ID: 1, FollowTime: 100}}, Watermark: 100})
		done()
		s, done = open()
		assertState(t, s, poller.State{Exists: true, Watermark: 100, Seen: map[int64]int64{1: 100}, FullRead: full})
		mustReplace(t, s, 50, 50)
		assertState(t, s, poller.State{Exists: true, Floor: 50, Watermark: 50, Seen: map[int64]int64{}})
		mustCommit(t, s, poller.Change{Floor: 50, Watermark: 50, FullRead: &full})
		if err := s.Reset(ctx); err != nil {
			t.Fatalf("Reset: %v", err)
		}
		done()
		s, done = open()
		defer done()
		assertState(t, s, poller.State{Seen: map[int64]int64{}})
	})
	t.Run("the floor forgets whole days and part of one", func(t *testing.T) {
		const day = 24 * 60 * 60 * 1000
		open := newLocation(t)
		s, done := open()
		mustReplace(t, s, 0, 0)
		floor := int64(3*day + day/3)
		add, want := eightADay(100, 5, 0, floor)
		mustCommit(t, s, poller.Change{Add: add, Watermark: 5 * day})
		mustCommit(t, s, poller.Change{Floor: floor, Watermark: 5 * day})
		done()
		s, done = open()
		defer done()
		assertState(t, s, poller.State{Exists: true, Floor: floor, Watermark: 5 * day, Seen: want})
	})
	t.Run("one commit adds ids and raises the floor", func(t *testing.T) {
		// The poller raises the floor in the commit of a day's last batch.
		const day = 24 * 60 * 60 * 1000
		open := newLocation(t)
		s, done := open()
		mustReplace(t, s, 0, 0)
		floor := int64(2*day + day/3)
		first, want := eightADay(100, 3, 0, floor)
		var last []poller.Published
		for i := range int64(24) { // the fourth day, one an hour
			last = append(last, poller.Published{ID: 200 + i, FollowTime: 3*day + i*day/24})
			want[200+i] = 3*day + i*day/24
		}
		mustCommit(t, s, poller.Change{Add: first, Watermark: 3 * day})
		mustCommit(t, s, poller.Change{Add: last, Floor: floor, Watermark: 4 * day})
		assertState(t, s, poller.State{Exists: true, Floor: floor, Watermark: 4 * day, Seen: want})
		done()
		s, done = open()
		defer done()
		assertState(t, s, poller.State{Exists: true, Floor: floor, Watermark: 4 * day, Seen: want})
	})
	t.Run("ids added below the floor of the same commit are forgotten", func(t *testing.T) {
		// The last batch of a day re-read before the window may carry a floor above its own ids.
		const day = 24 * 60 * 60 * 1000
		open := newLocation(t)
		s, done := open()
		mustReplace(t, s, 0, 0)
		floor := int64(day + day/2) // inside the second day
		add, want := eightADay(300, 3, 0, floor)
		mustCommit(t, s, poller.Change{Add: add, Floor: floor, Watermark: 3 * day})
		assertState(t, s, poller.State{Exists: true, Floor: floor, Watermark: 3 * day, Seen: want})
		done()
		s, done = open()
		defer done()
		assertState(t, s, poller.State{Exists: true, Floor: floor, Watermark: 3 * day, Seen: want})
	})
	t.Run("negative and huge values", func(t *testing.T) {
		s, done := newLocation(t)()
		defer done()
		mustReplace(t, s, -5000, -5000)
		mustCommit(t, s, poller.Change{Add: []poller.Published{{ID: -1, FollowTime: -4000}, {ID: 1<<63 - 1, FollowTime: 1<<62 + 1}}, Floor: -4500, Watermark: 1<<62 + 1})
		assertState(t, s, poller.State{Exists: true, Floor: -4500, Watermark: 1<<62 + 1, Seen: map[int64]int64{-1: -4000, 1<<63 - 1: 1<<62 + 1}})
	})
}

// eightADay returns records of days days from start (epoch ms), eight a day at even steps, with
// ids from first on, and those of them at or above floor (id → follow_time), which a store keeps.
func eightADay(first int64, days int, start, floor int64) ([]poller.Published, map[int64]int64) {
	const step = 24 * 60 * 60 * 1000 / 8
	var add []poller.Published
	keep := map[int64]int64{}
	for i := range int64(8 * days) {
		p := poller.Published{ID: first + i, FollowTime: start + i*step}
		add = append(add, p)
		if p.FollowTime >= floor {
			keep[p.ID] = p.FollowTime
		}
	}
	return add, keep
}

func mustReplace(t *testing.T, s poller.Store, floor, watermark int64) {
	t.Helper()
	if err := s.Replace(context.Background(), floor, watermark); err != nil {
		t.Fatalf("Replace(%d, %d): %v", floor, watermark, err)
	}
}

func mustCommit(t *testing.T, s poller.Store, c poller.Change) {
	t.Helper()
	if err := s.Commit(context.Background(), c); err != nil {
		t.Fatalf("Commit(%+v): %v", c, err)
	}
}

func assertState(t *testing.T, s poller.Store, want poller.State) {
	t.Helper()
	got, err := s.Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got.Exists != want.Exists || got.Floor != want.Floor || got.Watermark != want.Watermark {
		t.Fatalf("state = exists %v floor %d watermark %d, want exists %v floor %d watermark %d",
			got.Exists, got.Floor, got.Watermark, want.Exists, want.Floor, want.Watermark)
	}
	if len(got.Seen) != len(want.Seen) {
		t.Fatalf("seen = %v, want %v", got.Seen, want.Seen)
	}
	for id, ft := range want.Seen {
		if got.Seen[id] != ft {
			t.Fatalf("seen[%d] = %d, want %d (seen %v)", id, got.Seen[id], ft, got.Seen)
		}
	}
	if got.Tail.Topic != want.Tail.Topic || len(got.Tail.Next) != len(want.Tail.Next) {
		t.Fatalf("tail = %+v, want %+v", got.Tail, want.Tail)
	}
	for p, o := range want.Tail.Next {
		if got.Tail.Next[p] != o {
			t.Fatalf("tail = %+v, want %+v", got.Tail, want.Tail)
		}
	}
	if got.FullRead != want.FullRead {
		t.Fatalf("full read = %+v, want %+v", got.FullRead, want.FullRead)
	}
	if want.Exists && got.UpdatedAt.IsZero() {
		t.Fatalf("updated_at is not set")
	}
}
