package poller

import (
	"log/slog"
	"time"
)

// progress reports a cycle that reads several days (a backfill or a replay): days done, records,
// records per second and an estimate of the time left. A one-day cycle reports nothing.
type progress struct {
	log     *slog.Logger
	pages   func() int64 // pages read by the source so far; nil when it does not say
	pages0  int64
	clock   func() time.Time
	days    int
	done    int
	records int
	began   time.Time
	last    time.Time
}

// progressEvery is the least time between two progress lines.
const progressEvery = 5 * time.Second

// PageCounter is implemented by a Source that counts the pages it read, for progress reports.
type PageCounter interface {
	PagesRead() int64
}

func newProgress(log *slog.Logger, clock func() time.Time, days int, src Source) *progress {
	now := clock()
	p := &progress{log: log, clock: clock, days: days, began: now, last: now}
	if pc, ok := src.(PageCounter); ok {
		p.pages, p.pages0 = pc.PagesRead, pc.PagesRead()
	}
	return p
}

func (p *progress) dayDone(day time.Time, records int) {
	p.done++
	p.records += records
	if p.days <= 1 {
		return
	}
	now := p.clock()
	if now.Sub(p.last) < progressEvery && p.done < p.days {
		return
	}
	p.last = now
	elapsed := now.Sub(p.began)
	perDay := elapsed / time.Duration(p.done)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.records) / elapsed.Seconds()
	}
	attrs := []any{"day", day.Format(DateLayout), "days_done", p.done, "days", p.days, "records", p.records,
		"records_per_s", int(rate), "time_left", (perDay * time.Duration(p.days-p.done)).Round(time.Second)}
	if p.pages != nil {
		attrs = append(attrs, "pages", p.pages()-p.pages0)
	}
	p.log.Info("backfill progress", attrs...)
}
