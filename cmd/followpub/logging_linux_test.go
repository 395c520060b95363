package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal and returns its controlling and terminal ends.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("naming the pseudo-terminal: %v", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the terminal end: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return ptmx, tty
}

// TestLogFormatAutoIsTextOnATerminal is the other half of TestLogFormatAutoIsJSONWhenNotATerminal:
// auto does look at the writer.
func TestLogFormatAutoIsTextOnATerminal(t *testing.T) {
	ptmx, tty := openPTY(t)
	if !isTerminal(tty) {
		t.Fatal("a terminal does not count as one")
	}
	newLogger(tty, "auto", "info", nil).Info("hello", "n", 1)
	_ = ptmx.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := ptmx.Read(buf)
	if err != nil {
		t.Fatalf("reading what the logger wrote to the terminal: %v", err)
	}
	got := buf[:n]
	if json.Valid(bytes.TrimSpace(got)) || !bytes.Contains(got, []byte("hello")) || !bytes.Contains(got, []byte("\x1b[")) {
		t.Fatalf("auto on a terminal wrote %q, want coloured text", got)
	}
}
