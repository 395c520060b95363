package poller

import (
	"log/slog"
	"time"
)

// Progress is how far a cycle that reads several days (a backfill or a replay) has got.
type Progress struct {
	Day      time.Time     // the day just read: its start in the API's time zone
	DaysDone int           // days read so far, Day included
	Days     int           // days the cycle reads
	Records  int           // records read so far
	Pages    int64         // pages read so far; -1 when the source does not count them
	Elapsed  time.Duration // since the cycle began
	Rate     float64       // records read per second
	Left     time.Duration // estimated time until the last day is read
}

// ProgressReporter receives the progress of a cycle that reads more than one day, after each day
// (a one-day cycle reports nothing); DaysDone is 1 on the first report of a cycle and Days on its
// last, if it completes. Report is called from the cycle's goroutine, one call at a time.
type ProgressReporter interface {
	Report(Progress)
}

// PageCounter is implemented by a Source that counts the pages it read, for progress reports.
type PageCounter interface {
	PagesRead() int64
}

// progress measures one cycle's progress and hands it to a ProgressReporter.
type progress struct {
	to      ProgressReporter
	pages   func() int64 // pages read by the source so far; nil when it does not say
	pages0  int64
	clock   func() time.Time
	days    int
	done    int
	records int
	began   time.Time
}

func newProgress(to ProgressReporter, clock func() time.Time, days int, src Source) *progress {
	p := &progress{to: to, clock: clock, days: days, began: clock()}
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
	elapsed := p.clock().Sub(p.began)
	r := Progress{Day: day, DaysDone: p.done, Days: p.days, Records: p.records, Pages: -1, Elapsed: elapsed,
		Left: elapsed / time.Duration(p.done) * time.Duration(p.days-p.done)}
	if elapsed > 0 {
		r.Rate = float64(p.records) / elapsed.Seconds()
	}
	if p.pages != nil {
		r.Pages = p.pages() - p.pages0
	}
	p.to.Report(r)
}

// progressEvery is the least time between two progress log lines.
const progressEvery = 5 * time.Second

// logProgress is the default ProgressReporter: a log line "backfill progress" at most every
// progressEvery, and one when the last day is read.
type logProgress struct {
	log  *slog.Logger
	last time.Duration // Elapsed of the last line written in this cycle
}

func (l *logProgress) Report(p Progress) {
	if p.DaysDone == 1 {
		l.last = 0
	}
	if p.Elapsed-l.last < progressEvery && p.DaysDone < p.Days {
		return
	}
	l.last = p.Elapsed
	attrs := []any{"day", p.Day.Format(DateLayout), "days_done", p.DaysDone, "days", p.Days, "records", p.Records,
		"records_per_s", int(p.Rate), "time_left", p.Left.Round(time.Second)}
	if p.Pages >= 0 {
		attrs = append(attrs, "pages", p.Pages)
	}
	l.log.Info("backfill progress", attrs...)
}
