package poller

import "time"

// remembered holds the remembered ids (State.Seen) as the poller keeps them. The ids this process
// commits are kept in one map per day of follow_time in the API zone: raising the floor drops whole
// days instead of scanning every id of the window for the few to delete, and the maps a backfill
// fills are a day's size rather than the window's. The ids the state held when loaded stay in the
// map the store returned, scanned as the floor passes them, until none is left: sorting a million
// of them into days would double the memory they take at the start.
type remembered struct {
	loc    *time.Location
	loaded map[int64]int64 // the ids loaded with the state and not forgotten yet; nil when none
	days   []rememberedDay // ascending; none is empty
	n      int
}

// rememberedDay is the ids of the day from lo to hi (epoch ms), each with its follow_time.
type rememberedDay struct {
	lo, hi int64
	ids    map[int64]int64
}

// newRemembered returns the remembered ids of a state loaded with seen (kept, not copied), with
// days in loc.
func newRemembered(loc *time.Location, seen map[int64]int64) *remembered {
	r := &remembered{loc: loc, n: len(seen)}
	if len(seen) > 0 {
		r.loaded = seen
	}
	return r
}

// len is the number of remembered ids.
func (r *remembered) len() int { return r.n }

// get returns the follow_time of id, if it is remembered.
func (r *remembered) get(id int64) (int64, bool) {
	for i := len(r.days) - 1; i >= 0; i-- { // newest first: where a re-read of today finds its ids
		if ft, ok := r.days[i].ids[id]; ok {
			return ft, true
		}
	}
	ft, ok := r.loaded[id]
	return ft, ok
}

// add remembers id with follow_time ft. id must not be remembered on another day (the poller
// commits only ids it does not remember).
func (r *remembered) add(id, ft int64) {
	d := r.day(ft)
	n := len(d.ids)
	d.ids[id] = ft
	r.n += len(d.ids) - n
}

// day returns the day ft falls on, adding it when it holds no ids yet.
func (r *remembered) day(ft int64) *rememberedDay {
	i := len(r.days)
	for i > 0 && r.days[i-1].lo > ft {
		i--
	}
	if i > 0 && ft < r.days[i-1].hi {
		return &r.days[i-1]
	}
	size := 0 // the size of the newest day: a backfill's days are alike, and a map that grows rehashes
	if len(r.days) > 0 {
		size = len(r.days[len(r.days)-1].ids)
	}
	start := StartOfDay(msTime(ft), r.loc)
	d := rememberedDay{lo: start.UnixMilli(), hi: addDays(start, 1).UnixMilli(), ids: make(map[int64]int64, size)}
	r.days = append(r.days, rememberedDay{})
	copy(r.days[i+1:], r.days[i:])
	r.days[i] = d
	return &r.days[i]
}

// forgetBelow forgets every id with a follow_time below floor.
func (r *remembered) forgetBelow(floor int64) {
	gone := 0
	for ; gone < len(r.days) && r.days[gone].lo < floor; gone++ {
		d := &r.days[gone]
		if d.hi > floor { // a floor inside a day (after a watermark set): its ids from floor on stay
			for id, ft := range d.ids {
				if ft < floor {
					delete(d.ids, id)
					r.n--
				}
			}
			if len(d.ids) > 0 {
				break
			}
			continue
		}
		r.n -= len(d.ids)
	}
	n := copy(r.days, r.days[gone:])
	clear(r.days[n:]) // let the dropped days' maps go
	r.days = r.days[:n]
	for id, ft := range r.loaded {
		if ft < floor {
			delete(r.loaded, id)
			r.n--
		}
	}
	if len(r.loaded) == 0 {
		r.loaded = nil
	}
}

// onDay returns the number of ids remembered with a follow_time on the day from lo to hi.
func (r *remembered) onDay(lo, hi int64) int {
	n := 0
	for _, ft := range r.loaded {
		if ft >= lo && ft < hi {
			n++
		}
	}
	for _, d := range r.days {
		if d.lo < hi && lo < d.hi {
			if d.lo >= lo && d.hi <= hi {
				n += len(d.ids)
				continue
			}
			for _, ft := range d.ids {
				if ft >= lo && ft < hi {
					n++
				}
			}
		}
	}
	return n
}
