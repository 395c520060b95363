package main

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/followpub/followpub/poller"
)

// runOutput returns where `run` writes its logs, in which LOG_FORMAT, and the poller's progress
// reporter. `run --once` on a terminal draws a backfill's progress as a bar, with the log lines
// written above it; otherwise the reporter is nil (the poller's log lines) and stderr is as given.
// end finishes a bar left on its line (a cycle that stopped early).
func runOutput(stderr io.Writer, once bool, format string) (logs io.Writer, logFormat string, progress poller.ProgressReporter, end func()) {
	if !once || !isTerminal(stderr) {
		return stderr, format, nil, func() {}
	}
	if format == "auto" {
		format = "tint" // what auto picks on a terminal; the shared writer no longer looks like one
	}
	t := &sharedTerminal{w: stderr}
	return t.logWriter(), format, newBarProgress(t.barWriter()), t.endLine
}

// barProgress is a poller.ProgressReporter that draws the cycle's days as a progress bar
// (github.com/schollz/progressbar), with the records read, their rate and the time left.
type barProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func newBarProgress(w io.Writer) *barProgress { return &barProgress{w: w} }

func (b *barProgress) Report(p poller.Progress) {
	if p.DaysDone == 1 || b.bar == nil {
		b.bar = progressbar.NewOptions(p.Days,
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionShowDescriptionAtLineEnd(),
			// The poller's rate and estimate are in records and account for the whole cycle.
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(false),
			progressbar.OptionThrottle(0))
	}
	b.bar.Describe(fmt.Sprintf("days, %s · %d records · %.0f records/s · %s left",
		p.Day.Format(poller.DateLayout), p.Records, p.Rate, p.Left.Round(time.Second)))
	_ = b.bar.Set(p.DaysDone)
	if p.DaysDone == p.Days {
		fmt.Fprintln(b.w)
		b.bar = nil
	}
}

// sharedTerminal lets log lines and a progress bar share one terminal: a log line clears the bar
// from its line, is written, and the bar is drawn again below it. It is safe for concurrent use.
type sharedTerminal struct {
	mu   sync.Mutex
	w    io.Writer
	line []byte // what the bar shows on the current line; empty when none is drawn
}

func (t *sharedTerminal) logWriter() io.Writer { return writerFunc(t.writeLog) }
func (t *sharedTerminal) barWriter() io.Writer { return writerFunc(t.writeBar) }

func (t *sharedTerminal) writeLog(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.line) == 0 {
		return t.w.Write(p)
	}
	if _, err := io.WriteString(t.w, "\r\x1b[K"); err != nil {
		return 0, err
	}
	n, err := t.w.Write(p)
	if err != nil {
		return n, err
	}
	_, err = t.w.Write(append([]byte{'\r'}, t.line...))
	return n, err
}

func (t *sharedTerminal) writeBar(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i := bytes.LastIndexAny(p, "\r\n"); i >= 0 {
		t.line = append(t.line[:0], p[i+1:]...)
	} else {
		t.line = append(t.line, p...)
	}
	return t.w.Write(p)
}

// endLine ends the line a bar is drawn on, so that what follows starts on a line of its own.
func (t *sharedTerminal) endLine() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(bytes.TrimSpace(t.line)) > 0 {
		_, _ = io.WriteString(t.w, "\n")
	}
	t.line = t.line[:0]
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
