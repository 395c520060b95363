package poller

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DateLayout is the API's date filter format, yyyy-MM-dd.
const DateLayout = "2006-01-02"

// ParseTimeOrDate parses a point in time given as RFC 3339 or as a date (yyyy-MM-dd, the start of
// that day in loc): the argument of `watermark set` and `tail --from`.
func ParseTimeOrDate(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.ParseInLocation(DateLayout, s, loc); err == nil {
		return StartOfDay(t.Add(12*time.Hour), loc), nil // midnight may not exist (StartOfDay)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("parsing time %q: want RFC 3339 (2024-02-07T08:00:00Z) or a date (2024-02-07)", s)
}

// ParseStartFrom evaluates START_FROM at now: `today` (the start of today in loc), `now`, a date
// (yyyy-MM-dd, start of that day in loc), an RFC 3339 time, or a positive duration back from now
// (`72h`, `90m`).
func ParseStartFrom(s string, now time.Time, loc *time.Location) (time.Time, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "today", "":
		return StartOfDay(now, loc), nil
	case "now":
		return now, nil
	}
	if t, err := ParseTimeOrDate(s, loc); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("parsing start %q: want today, now, a date (2024-02-07), an RFC 3339 time or a duration back from now (72h)", s)
	}
	if d < 0 {
		return time.Time{}, errors.New("parsing start: a duration back from now must not be negative")
	}
	return now.Add(-d), nil
}

// StartOfDay returns the first instant of t's calendar day in loc: midnight, or where summer time
// begins at midnight (America/Havana, America/Santiago), the moment the clocks jump to 01:00.
func StartOfDay(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	s := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if s.Day() != d {
		// Midnight does not exist: time.Date gave an instant of the day before, in the zone that
		// ends at the jump.
		_, s = s.ZoneBounds()
	}
	return s
}
