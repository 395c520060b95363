package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/wshotosim"
)

// TestRunOnceDrawsABarOnATerminal runs `followpub run --once` for a four-day backfill with its
// stderr on a pseudo-terminal, and reads what a person would see: a finished bar with days,
// records, rate and time left, and the log lines as coloured text. Off a terminal the same run
// writes "backfill progress" log lines and no bar.
func TestRunOnceDrawsABarOnATerminal(t *testing.T) {
	w := e2etest.NewWorld(t, wshotosim.Config{Count: 2000, Span: 72 * time.Hour}, time.Now().Add(-72*time.Hour))
	ptmx, tty := openPTY(t)
	cmd := exec.Command(e2etest.Binary(t), "run", "--once")
	cmd.Env = w.Env("FOLLOWPUB_LOG_FORMAT=auto")
	cmd.Stdout, cmd.Stderr = tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen bytes.Buffer
	read := make(chan error, 1)
	go func() {
		_, err := io.Copy(&seen, ptmx)
		read <- err
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("run --once on a terminal: %v\n%q", err, seen.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("run --once did not finish within 60 s")
	}
	tty.Close() // the reader gets EIO once no one holds the terminal end open
	if err := <-read; err != nil && !errors.Is(err, os.ErrClosed) && !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("reading the terminal: %v", err)
	}
	out := seen.String()
	bar := lastFrame(lineWithText(out, "100%"))
	for _, want := range []string{"100%", "(4/4)", "days, ", " records · ", " records/s · ", "0s left"} {
		if !strings.Contains(bar, want) {
			t.Errorf("the finished bar %q lacks %q; the terminal showed:\n%q", bar, want, out)
		}
	}
	t.Logf("the finished bar: %s", bar)
	if !strings.Contains(out, "cycle done") || !strings.Contains(out, "\x1b[") {
		t.Errorf("the terminal shows no coloured \"cycle done\" log line:\n%q", out)
	}
	if strings.Contains(out, "backfill progress") {
		t.Errorf("the terminal shows progress log lines as well as the bar:\n%q", out)
	}

	// Off a terminal: log lines, no bar.
	code, logs := e2etest.Run(t, 60*time.Second, w.Env("FOLLOWPUB_START_FROM="+time.Now().Add(-72*time.Hour).UTC().Format(time.RFC3339),
		"FOLLOWPUB_STATE_PATH="+t.TempDir()+"/other.state"), "run", "--once")
	if code != 0 {
		t.Fatalf("run --once exited %d:\n%s", code, logs)
	}
	var last map[string]any
	for _, l := range e2etest.JSONLines(t, logs) {
		if l["msg"] == "backfill progress" {
			last = l
		}
	}
	if last == nil || last["days_done"] != last["days"] || last["records"] == nil || last["records_per_s"] == nil || last["time_left"] == nil {
		t.Errorf("off a terminal, want a last \"backfill progress\" line with every day done, records, rate and time left; got %v in:\n%s", last, logs)
	}
	if strings.Contains(logs, "%|") || strings.Contains(logs, "(4/4)") {
		t.Errorf("off a terminal the output has a bar:\n%s", logs)
	}
}

// lineWithText returns the terminal line that contains sub.
func lineWithText(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
