package e2etest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/modroot"
	"github.com/followpub/followpub/internal/syncbuf"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/followpub once per test binary and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := modroot.Dir()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "followpub-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "followpub")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/followpub")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building followpub: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Proc is a running followpub process with its output captured.
type Proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	exit int
	sig  syscall.Signal // the signal that ended it, or 0
}

// Env is a base environment for followpub: only what the test gives, plus PATH and HOME, so the
// developer's own FOLLOWPUB_ variables never leak into a test.
func Env(kv ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "FOLLOWPUB_LOG_FORMAT=json"}, kv...)
}

// Start starts followpub with args and env; its stdout and stderr go to one buffer.
func Start(t testing.TB, env []string, args ...string) *Proc {
	t.Helper()
	return StartIn(t, "", env, args...)
}

// StartIn is Start with dir as the working directory ("" for the test's).
func StartIn(t testing.TB, dir string, env []string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Dir = dir
	cmd.Env = env
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting followpub %v: %v", args, err)
	}
	p := &Proc{t: t, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.exit = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.sig = ws.Signal()
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Run runs followpub to completion (at most timeout) and returns its exit status and output.
func Run(t testing.TB, timeout time.Duration, env []string, args ...string) (int, string) {
	t.Helper()
	p := Start(t, env, args...)
	return p.Wait(timeout), p.Output()
}

// RunIn is Run with dir as the working directory.
func RunIn(t testing.TB, dir string, timeout time.Duration, env []string, args ...string) (int, string) {
	t.Helper()
	p := StartIn(t, dir, env, args...)
	return p.Wait(timeout), p.Output()
}

// Wait waits for the process to exit and returns its status; it fails the test after timeout.
func (p *Proc) Wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.exit
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("followpub %v did not exit within %v; output:\n%s", p.cmd.Args[1:], timeout, p.Output())
		return -1
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// ExitCode returns the exit status once the process has exited (-1 when a signal ended it).
func (p *Proc) ExitCode() int {
	<-p.done
	return p.exit
}

// Signaled returns the signal that ended the process, or 0; it waits for the process to exit.
func (p *Proc) Signaled() syscall.Signal {
	<-p.done
	return p.sig
}

// Output returns everything the process printed so far.
func (p *Proc) Output() string { return p.out.String() }

// WaitFor polls cond every 50 ms until it holds or timeout passes.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

// Get fetches url and returns the status code and body ("" and 0 when it cannot connect).
func Get(url string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// ReadTopic reads every message the topic holds now, from every partition.
func ReadTopic(t testing.TB, brokers []string, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		t.Fatalf("dialing %s: %v", brokers[0], err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatalf("reading the partitions of %s: %v", topic, err)
	}
	var all []kafka.Message
	for _, p := range parts {
		leader := net.JoinHostPort(p.Leader.Host, fmt.Sprint(p.Leader.Port))
		pc, err := kafka.DialLeader(ctx, "tcp", leader, topic, p.ID)
		if err != nil {
			t.Fatalf("dialing the leader of %s/%d: %v", topic, p.ID, err)
		}
		last, err := pc.ReadLastOffset()
		pc.Close()
		if err != nil {
			t.Fatalf("reading the end of %s/%d: %v", topic, p.ID, err)
		}
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
		_ = r.SetOffset(kafka.FirstOffset)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("reading %s/%d: %v", topic, p.ID, err)
			}
			all = append(all, m)
			if m.Offset >= last-1 {
				break
			}
		}
		r.Close()
	}
	return all
}

// CountKeys counts the messages per key.
func CountKeys(msgs []kafka.Message) map[string]int {
	c := map[string]int{}
	for _, m := range msgs {
		c[string(m.Key)]++
	}
	return c
}

// Lines returns the lines of s that contain sub.
func Lines(s, sub string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// JSONLines decodes every non-empty line of s (a JSON log) as a JSON object, failing the test on
// any other line.
func JSONLines(t testing.TB, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("a log line is not JSON: %q (%v)\n%s", line, err, s)
		}
		out = append(out, m)
	}
	return out
}
