package poller

import "time"

// plan is what one cycle reads: the days from From on, and whether incrementally.
type plan struct {
	// Window is the start of the window proper (windowStart); From may lie before it.
	Window time.Time
	// From is the first day read, Days how many calendar days from it.
	From time.Time
	Days int
	// Incremental reads each day for what it gained only (IncrementalSource).
	Incremental bool
}

// readHistory is what the planner remembers of earlier cycles.
type readHistory struct {
	// LastFull is when the last completed cycle that read in full began, LastFullFrom the start of
	// its window.
	LastFull     time.Time
	LastFullFrom time.Time
	// IncrementalSince records that a cycle read incrementally since LastFull.
	IncrementalSince bool
	// Failed records that the last cycle did not complete.
	Failed bool
}

// historyOf is the history a poller starts from when it loads a state: the full read the state
// records, and, since what happened after it is not known, incremental reads since.
func historyOf(f FullRead, loc *time.Location) readHistory {
	if f.IsZero() {
		return readHistory{}
	}
	return readHistory{LastFull: time.UnixMilli(f.At), LastFullFrom: time.UnixMilli(f.From).In(loc), IncrementalSince: true}
}

// planInput is everything planCycle decides on.
type planInput struct {
	Now          time.Time
	Window       time.Time // windowStart of the state
	FloorDay     time.Time // the start of the floor's day
	CanIncrement bool      // the source is an IncrementalSource
	FullEvery    time.Duration
	Loc          *time.Location
	History      readHistory
}

// planCycle decides which days a cycle reads and whether incrementally. It is the one place of
// that decision: a cycle reads in full when the source cannot do otherwise, after a failed cycle,
// on a first cycle whose state records no full read within FullEvery (historyOf), and every FullEvery; and when days that were only read incrementally have
// left the window since the last full read, it reads them in full once more (from the last full
// read's window start, not below the floor's day), so that a record an incremental read could not
// see is not left behind for good.
func planCycle(in planInput) plan {
	h := in.History
	pl := plan{Window: in.Window, From: in.Window}
	since := in.Now.Sub(h.LastFull) // negative when another machine's clock recorded it ahead of ours
	pl.Incremental = in.CanIncrement && !h.Failed && !h.LastFull.IsZero() && since >= 0 && since < in.FullEvery
	if h.IncrementalSince && h.LastFullFrom.Before(in.Window) {
		pl.From, pl.Incremental = h.LastFullFrom, false
		if in.FloorDay.After(pl.From) {
			pl.From = in.FloorDay
		}
	}
	to := StartOfDay(in.Now, in.Loc)
	if to.Before(pl.From) {
		to = pl.From
	}
	pl.Days = daysBetween(pl.From, to)
	return pl
}

// started records that a cycle of pl began: an incremental one counts even if it fails part-way,
// since it may have read a day so.
func (h *readHistory) started(pl plan) {
	if pl.Incremental {
		h.IncrementalSince = true
	}
}

// completed records that a cycle of pl began at began and read its whole plan. After a full read
// the window proper is remembered, not the days read once more before it: those are done with, and
// remembering them would make every later cycle read them in full again.
func (h *readHistory) completed(pl plan, began time.Time) {
	if !pl.Incremental {
		h.LastFull, h.LastFullFrom, h.IncrementalSince = began, pl.Window, false
	}
}

// windowStart is the first day a cycle reads: the day containing W − Lookback, or the floor's day
// when that is later (nothing below the floor is ever published, so there is no point reading it).
func (p *Poller) windowStart(st State) time.Time {
	w := time.UnixMilli(st.Watermark).Add(-p.cfg.Lookback)
	if f := time.UnixMilli(st.Floor); f.After(w) {
		w = f
	}
	return StartOfDay(w, p.cfg.Location)
}

func daysBetween(from, to time.Time) int {
	n := 1
	for d := from; d.Before(to); d = addDays(d, 1) {
		n++
	}
	return n
}

// addDays returns the start of the calendar day n days after day's (in day's location; see
// StartOfDay). Noon exists on every day a clock change touches, midnight not always.
func addDays(day time.Time, n int) time.Time {
	y, m, d := day.Date()
	return StartOfDay(time.Date(y, m, d+n, 12, 0, 0, 0, day.Location()), day.Location())
}
