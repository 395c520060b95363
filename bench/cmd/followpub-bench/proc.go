package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/followpub/followpub/internal/syncbuf"
)

// buildBinary builds cmd/followpub into dir and returns its path.
func buildBinary(root, dir string) (string, error) {
	bin := filepath.Join(dir, "followpub")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/followpub")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building followpub: %v\n%s", err, out)
	}
	return bin, nil
}

// env returns the environment of a followpub process: only PATH, HOME and the given FOLLOWPUB_
// variables (names without the prefix), so the caller's own FOLLOWPUB_ variables never leak in.
func env(vars map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range vars {
		out = append(out, "FOLLOWPUB_"+k+"="+v)
	}
	return out
}

// proc is a followpub process started by the driver.
type proc struct {
	cmd   *exec.Cmd
	out   syncbuf.Buffer
	start time.Time
	done  chan struct{}
	err   error
	wall  time.Duration
	hwm   atomic.Int64 // the largest VmHWM read from /proc, bytes
}

func startProc(bin string, vars map[string]string, args ...string) (*proc, error) {
	return startProcTee(bin, vars, nil, args...)
}

// startProcTee is startProc that also copies the process's output to tee (when not nil) as it
// comes, for a measurement that acts on a log line the moment it is written.
func startProcTee(bin string, vars map[string]string, tee io.Writer, args ...string) (*proc, error) {
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env(vars)
	var out io.Writer = &p.out
	if tee != nil {
		out = io.MultiWriter(&p.out, tee)
	}
	// One writer for both: os/exec then never calls it from two goroutines at once.
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.begin(); err != nil {
		return nil, fmt.Errorf("starting followpub: %w", err)
	}
	return p, nil
}

// startCmd starts a prepared command of another program (a peer) and watches it as startProc
// watches followpub; what the command does not send elsewhere of its output goes to p.out.
func startCmd(cmd *exec.Cmd) (*proc, error) {
	p := &proc{done: make(chan struct{}), cmd: cmd}
	if cmd.Stdout == nil {
		cmd.Stdout = &p.out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &p.out
	}
	if err := p.begin(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", filepath.Base(cmd.Path), err)
	}
	return p, nil
}

// begin starts p.cmd, then waits for it and watches its peak RSS in the background.
func (p *proc) begin() error {
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		return err
	}
	go func() {
		p.err = p.cmd.Wait()
		p.wall = time.Since(p.start)
		close(p.done)
	}()
	go p.watchHWM()
	return nil
}

// watchHWM reads the process's VmHWM (peak resident set) from /proc every millisecond for the
// first 200 ms, then every 10 ms, until it exits.
// The kernel's rusage of a child is no use here: os/exec starts children with CLONE_VM, and exec
// folds the parent's high-water mark into the child's ru_maxrss.
func (p *proc) watchHWM() {
	path := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	t := time.NewTicker(time.Millisecond) // fast at first: a short run may last only milliseconds
	defer t.Stop()
	for i := 0; ; i++ {
		if i == 200 {
			t.Reset(10 * time.Millisecond)
		}
		if b, err := os.ReadFile(path); err == nil {
			if i := bytes.Index(b, []byte("VmHWM:")); i >= 0 {
				var kb int64
				if _, err := fmt.Sscanf(string(b[i+len("VmHWM:"):]), "%d", &kb); err == nil && kb*1024 > p.hwm.Load() {
					p.hwm.Store(kb * 1024)
				}
			}
		}
		select {
		case <-p.done:
			return
		case <-t.C:
		}
	}
}

// wait waits for the process to exit, killing it after timeout.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("followpub %v did not exit within %s; output:\n%s", p.cmd.Args[1:], timeout, tail(p.out.String(), 20))
	}
	if p.err != nil {
		return fmt.Errorf("followpub %v: %v; output:\n%s", p.cmd.Args[1:], p.err, tail(p.out.String(), 20))
	}
	return nil
}

// usage is what the kernel measured of the exited process: peak RSS (VmHWM, as last read before
// the exit) and CPU time (user + system).
type usage struct {
	maxRSS int64 // bytes
	cpu    time.Duration
	faults int64 // page faults, minor and major
}

func (p *proc) usage() usage {
	ps := p.cmd.ProcessState
	u := usage{cpu: ps.UserTime() + ps.SystemTime(), maxRSS: p.hwm.Load()}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		u.faults = ru.Minflt + ru.Majflt
	}
	return u
}

// logLine is one JSON log line of followpub.
type logLine map[string]any

func (l logLine) str(k string) string {
	s, _ := l[k].(string)
	return s
}

func (l logLine) time() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, l.str("time"))
	return t
}

// logs returns the JSON lines of the process's output whose msg is one of msgs (all when none).
func (p *proc) logs(msgs ...string) []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		if len(msgs) == 0 {
			out = append(out, l)
			continue
		}
		for _, m := range msgs {
			if l.str("msg") == m {
				out = append(out, l)
			}
		}
	}
	return out
}

// cycleDuration returns the duration of the last completed cycle from the logs.
func (p *proc) cycleDuration() time.Duration {
	var d time.Duration
	for _, l := range p.logs("cycle done") {
		d = parseLogDuration(l["duration"])
	}
	return d
}

// parseLogDuration reads a slog duration: JSON handlers write nanoseconds, text ones a string.
func parseLogDuration(v any) time.Duration {
	switch v := v.(type) {
	case float64:
		return time.Duration(v)
	case string:
		d, _ := time.ParseDuration(v)
		return d
	}
	return 0
}

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// scrape fetches a Prometheus text page and returns the sum of each metric's samples by name and
// label set as written (name{labels}).
func scrape(url string) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] += v
	}
	return out, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
