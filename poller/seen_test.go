package poller

import (
	"maps"
	"math/rand/v2"
	"testing"
	"time"
)

// TestRememberedIsTheMapOfTheRule: after any sequence of commits and floor raises, remembered
// holds exactly the ids of a plain map that forgets those below the floor (floors on a day's
// start and inside a day, ids on a day's first millisecond, days of 23 and 25 hours), and counts them, in all and by day, alike.
func TestRememberedIsTheMapOfTheRule(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	const hour = int64(time.Hour / time.Millisecond)
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 40 {
		// Around the end of summer time (27 October 2024, 25 hours) or its start (31 March, 23).
		start := time.Date(2024, 10, 25, 0, 0, 0, 0, berlin)
		if round%2 == 1 {
			start = time.Date(2024, 3, 29, 0, 0, 0, 0, berlin)
		}
		floor := start.UnixMilli() + rng.Int64N(2)*rng.Int64N(24*hour)
		r, want := newRemembered(berlin, nil), map[int64]int64{}
		id := int64(0)
		for step := range 30 {
			for range rng.IntN(60) {
				id += 1 + rng.Int64N(3)
				ft := floor + rng.Int64N(3*24*hour)
				if rng.IntN(8) == 0 { // the first millisecond of a day
					ft = addDays(StartOfDay(msTime(ft), berlin), 1).UnixMilli()
				}
				want[id] = ft
				r.add(id, ft)
			}
			if step%5 == 4 { // a process that loads the state
				r = newRemembered(berlin, maps.Clone(want))
			}
			if rng.IntN(3) == 0 {
				floor += rng.Int64N(24 * hour) // inside a day
			} else {
				floor = addDays(StartOfDay(msTime(floor), berlin), 1).UnixMilli()
			}
			r.forgetBelow(floor)
			maps.DeleteFunc(want, func(_, ft int64) bool { return ft < floor })
			if r.len() != len(want) {
				t.Fatalf("round %d step %d: %d ids remembered, want %d", round, step, r.len(), len(want))
			}
			for id, ft := range want {
				if got, ok := r.get(id); !ok || got != ft {
					t.Fatalf("round %d step %d: id %d: %d, %v; want %d", round, step, id, got, ok, ft)
				}
			}
			for probe := range id + 2 {
				if _, ok := r.get(probe); ok != (want[probe] != 0) {
					t.Fatalf("round %d step %d: id %d remembered: %v, want %v", round, step, probe, ok, !ok)
				}
			}
			day := StartOfDay(msTime(floor), berlin)
			for i := range 4 {
				lo, hi := addDays(day, i).UnixMilli(), addDays(day, i+1).UnixMilli()
				n := 0
				for _, ft := range want {
					if ft >= lo && ft < hi {
						n++
					}
				}
				// A window of days in another zone crosses the remembered days.
				lo2, hi2 := lo+5*hour, hi+5*hour
				n2 := 0
				for _, ft := range want {
					if ft >= lo2 && ft < hi2 {
						n2++
					}
				}
				if got, got2 := r.onDay(lo, hi), r.onDay(lo2, hi2); got != n || got2 != n2 {
					t.Fatalf("round %d step %d day %d: %d and %d ids on the day, want %d and %d", round, step, i, got, got2, n, n2)
				}
			}
		}
	}
}
