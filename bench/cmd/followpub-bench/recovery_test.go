package main

import (
	"fmt"
	"testing"
	"time"
)

// A produce line of kafka-go and a read-back line of the poller, as followpub writes them with
// LOG_FORMAT=json.
func writeLine(at time.Time) string {
	return fmt.Sprintf(`{"time":%q,"level":"DEBUG","msg":"writing 1000 messages to t (partition: 0)","component":"publisher","source":"kafka-go"}`+"\n", at.Format(time.RFC3339Nano))
}

func readBackLine(at time.Time, read, committed int, d time.Duration) string {
	return fmt.Sprintf(`{"time":%q,"level":"WARN","msg":%q,"read":%d,"found":%d,"committed":%d,"duration":%d}`+"\n",
		at.Format(time.RFC3339Nano), readBackMsgs[0], read, read, committed, d.Nanoseconds())
}

func TestWriteWatchCountsProduceLinesSplitAcrossWrites(t *testing.T) {
	w := &writeWatch{seen: make(chan struct{}, 1)}
	now := time.Now()
	out := writeLine(now) + `{"msg":"cycle done"}` + "\n" + `{"msg":"writing 3 messages","source":"other"}` + "\n" + writeLine(now)
	// Byte by byte: a line may arrive in any number of pieces.
	for i := range len(out) {
		if _, err := w.Write([]byte{out[i]}); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.writes.Load(); got != 2 {
		t.Errorf("counted %d kafka-go produce lines, want 2", got)
	}
	select {
	case <-w.seen:
	default:
		t.Error("no token on seen after a counted line")
	}
}

func TestRecoveryFromLogsTakesTheFirstWriteAfterTheReadBack(t *testing.T) {
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	p := &proc{start: start}
	// A write before the read-back (there is none in followpub, but it must not count), the
	// read-back, then two writes.
	for _, l := range []string{
		writeLine(start.Add(100 * time.Millisecond)),
		readBackLine(start.Add(400*time.Millisecond), 2991, 2990, 150*time.Millisecond),
		writeLine(start.Add(420 * time.Millisecond)),
		writeLine(start.Add(500 * time.Millisecond)),
	} {
		_, _ = p.out.Write([]byte(l))
	}
	var s recoverySample
	if err := s.fromLogs(p); err != nil {
		t.Fatal(err)
	}
	want := recoverySample{toReadBack: 400 * time.Millisecond, readBack: 150 * time.Millisecond, toWrite: 420 * time.Millisecond, read: 2991, committed: 2990}
	if s != want {
		t.Errorf("fromLogs = %+v, want %+v", s, want)
	}

	var none recoverySample
	if err := none.fromLogs(&proc{start: start}); err == nil {
		t.Error("fromLogs of a log without a read-back: no error")
	}
}
