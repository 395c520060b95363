package poller

import (
	"testing"
	"time"
)

// TestPlanCycle is the table of the incremental-versus-full decision and of the days a cycle reads.
func TestPlanCycle(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	day := func(d int) time.Time { return time.Date(2024, 2, d, 0, 0, 0, 0, loc) }
	now := day(10).Add(9 * time.Hour)
	const every = 5 * time.Minute
	tests := []struct {
		name        string
		window      time.Time
		floorDay    time.Time
		canInc      bool
		h           readHistory
		from        time.Time
		days        int
		incremental bool
	}{
		{"first cycle reads in full", day(10), day(9), true, readHistory{}, day(10), 1, false},
		{"recent full read: incremental", day(10), day(9), true,
			readHistory{LastFull: now.Add(-time.Minute), LastFullFrom: day(10)}, day(10), 1, true},
		{"source cannot increment", day(10), day(9), false,
			readHistory{LastFull: now.Add(-time.Minute), LastFullFrom: day(10)}, day(10), 1, false},
		{"full read due", day(10), day(9), true,
			readHistory{LastFull: now.Add(-every), LastFullFrom: day(10)}, day(10), 1, false},
		{"after a failed cycle", day(10), day(9), true,
			readHistory{LastFull: now.Add(-time.Minute), LastFullFrom: day(10), Failed: true}, day(10), 1, false},
		{"a backfill's window spans days", day(7), day(6), true, readHistory{}, day(7), 4, false},
		{"days read incrementally left the window: read them in full once more", day(10), day(8), true,
			readHistory{LastFull: now.Add(-time.Minute), LastFullFrom: day(9), IncrementalSince: true}, day(9), 2, false},
		{"not below the floor's day", day(10), day(9), true,
			readHistory{LastFull: now.Add(-time.Minute), LastFullFrom: day(5), IncrementalSince: true}, day(9), 2, false},
		{"no incremental read since: nothing read again", day(10), day(8), true,
			readHistory{LastFull: now.Add(-time.Minute), LastFullFrom: day(9)}, day(10), 1, true},
		{"a loaded state's recent full read: incremental", day(10), day(9), true,
			historyOf(FullRead{At: now.Add(-time.Minute).UnixMilli(), From: day(10).UnixMilli()}, loc), day(10), 1, true},
		{"a loaded state's full read is due", day(10), day(9), true,
			historyOf(FullRead{At: now.Add(-every).UnixMilli(), From: day(10).UnixMilli()}, loc), day(10), 1, false},
		{"a loaded state's full read began on a day that left the window", day(10), day(8), true,
			historyOf(FullRead{At: now.Add(-time.Minute).UnixMilli(), From: day(9).UnixMilli()}, loc), day(9), 2, false},
		{"a full read recorded ahead of this clock", day(10), day(9), true,
			historyOf(FullRead{At: now.Add(time.Hour).UnixMilli(), From: day(10).UnixMilli()}, loc), day(10), 1, false},
		{"a loaded state without a full read", day(10), day(9), true, historyOf(FullRead{}, loc), day(10), 1, false},
		{"a window ahead of today reads its first day", day(11), day(10), false, readHistory{}, day(11), 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planCycle(planInput{Now: now, Window: tt.window, FloorDay: tt.floorDay, CanIncrement: tt.canInc,
				FullEvery: every, Loc: loc, History: tt.h})
			if !got.From.Equal(tt.from) || got.Days != tt.days || got.Incremental != tt.incremental {
				t.Errorf("planCycle = from %s, %d days, incremental %v; want from %s, %d days, incremental %v",
					got.From.Format(DateLayout), got.Days, got.Incremental, tt.from.Format(DateLayout), tt.days, tt.incremental)
			}
			if !got.Window.Equal(tt.window) {
				t.Errorf("plan window = %s, want %s", got.Window, tt.window)
			}
		})
	}
}

// TestReadHistory: an incremental cycle marks the history even if it fails; a completed full one
// remembers its window proper, not the days read again before it.
func TestReadHistory(t *testing.T) {
	loc := time.UTC
	day := func(d int) time.Time { return time.Date(2024, 2, d, 0, 0, 0, 0, loc) }
	var h readHistory
	h.started(plan{Window: day(10), From: day(10), Days: 1, Incremental: true})
	if !h.IncrementalSince {
		t.Fatal("an incremental cycle that started did not mark IncrementalSince")
	}
	began := day(10).Add(time.Hour)
	h.completed(plan{Window: day(10), From: day(8), Days: 3}, began)
	if !h.LastFull.Equal(began) || !h.LastFullFrom.Equal(day(10)) || h.IncrementalSince {
		t.Fatalf("after a full read: %+v, want LastFull %s, LastFullFrom %s, IncrementalSince false", h, began, day(10))
	}
	h.completed(plan{Window: day(11), From: day(11), Days: 1, Incremental: true}, began.Add(time.Hour))
	if !h.LastFull.Equal(began) {
		t.Fatal("an incremental cycle moved LastFull")
	}
}
