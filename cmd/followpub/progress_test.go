package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/followpub/followpub/poller"
)

// TestBarShowsDaysRecordsRateAndTimeLeft renders the bar into a buffer as the poller would report
// a three-day backfill.
func TestBarShowsDaysRecordsRateAndTimeLeft(t *testing.T) {
	var out bytes.Buffer
	b := newBarProgress(&out)
	day := func(d int) time.Time { return time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC) }
	b.Report(poller.Progress{Day: day(1), DaysDone: 1, Days: 3, Records: 1200, Elapsed: time.Second, Rate: 1200, Left: 2 * time.Second})
	b.Report(poller.Progress{Day: day(2), DaysDone: 2, Days: 3, Records: 2500, Elapsed: 2 * time.Second, Rate: 1250, Left: time.Second})
	mid := lastFrame(out.String())
	for _, want := range []string{"66%", "(2/3)", "days, 2024-01-02", "2500 records", "1250 records/s", "1s left"} {
		if !strings.Contains(mid, want) {
			t.Errorf("the bar after two of three days shows %q, which lacks %q", mid, want)
		}
	}
	if strings.Contains(out.String(), "\n") {
		t.Errorf("the bar ended its line before the last day: %q", out.String())
	}
	b.Report(poller.Progress{Day: day(3), DaysDone: 3, Days: 3, Records: 3600, Elapsed: 3 * time.Second, Rate: 1200, Left: 0})
	end := lastFrame(strings.TrimSuffix(out.String(), "\n"))
	for _, want := range []string{"100%", "(3/3)", "2024-01-03", "3600 records", "0s left"} {
		if !strings.Contains(end, want) {
			t.Errorf("the finished bar shows %q, which lacks %q", end, want)
		}
	}
	if !strings.HasSuffix(out.String(), "\n") {
		t.Errorf("the finished bar does not end its line, so the next log line would join it")
	}
}

// lastFrame returns the last non-blank frame the bar drew (frames start with a carriage return).
func lastFrame(s string) string {
	frames := strings.Split(s, "\r")
	for i := len(frames) - 1; i >= 0; i-- {
		if strings.TrimSpace(frames[i]) != "" {
			return frames[i]
		}
	}
	return ""
}

// TestLogLinesGoAboveTheBar: a log line written while the bar is drawn clears the bar's line, and
// the bar is drawn again after it.
func TestLogLinesGoAboveTheBar(t *testing.T) {
	var out bytes.Buffer
	term := &sharedTerminal{w: &out}
	bar, logs := term.barWriter(), term.logWriter()
	_, _ = bar.Write([]byte("\r 50% |###   | (1/2)"))
	_, _ = logs.Write([]byte("14:00:00 INF cycle started\n"))
	want := "\r 50% |###   | (1/2)" + "\r\x1b[K" + "14:00:00 INF cycle started\n" + "\r 50% |###   | (1/2)"
	if out.String() != want {
		t.Fatalf("terminal got\n%q\nwant\n%q", out.String(), want)
	}
	term.endLine()
	if !strings.HasSuffix(out.String(), "(1/2)\n") {
		t.Fatalf("endLine did not end the bar's line: %q", out.String())
	}
	out.Reset()
	_, _ = logs.Write([]byte("after\n"))
	term.endLine()
	if out.String() != "after\n" {
		t.Fatalf("with no bar drawn, a log line is written as is and endLine adds nothing; got %q", out.String())
	}
}

// TestRunOutputOffATerminal keeps stderr and the poller's log lines when stderr is not a terminal,
// or for a `run` that does not stop after one cycle.
func TestRunOutputOffATerminal(t *testing.T) {
	var b bytes.Buffer
	logs, format, progress, end := runOutput(&b, true, "auto")
	defer end()
	if logs != &b || format != "auto" || progress != nil {
		t.Fatalf("runOutput(buffer, once) = %v, %q, %v; want the buffer, auto and no reporter", logs, format, progress)
	}
}
