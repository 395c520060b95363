package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/wshotosim"
)

// demoHA is `demo --ha`: two `followpub run` processes with STATE_STORE=kafka, each in its own
// empty directory, share the tenant over the demo's broker; every killEvery the owner is
// SIGKILLed and a fresh instance started. The live view says who owns the tenant and counts the
// events, and at the end the records lost and duplicated.
func demoHA(ctx context.Context, cfg *config, sim *wshotosim.Server, killEvery time.Duration, stdout, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo --ha: finding this program to start its instances: %w", err)
	}
	base, err := os.MkdirTemp("", "followpub-demo-ha-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"FOLLOWPUB_API_BASE_URL=" + cfg.APIBaseURL, "FOLLOWPUB_API_APP_ID=" + cfg.APIAppID, "FOLLOWPUB_API_APP_SECRET=" + cfg.APIAppSecret,
		"FOLLOWPUB_KAFKA_BROKERS=" + cfg.KafkaBrokers, "FOLLOWPUB_KAFKA_TOPIC=" + cfg.KafkaTopic, "FOLLOWPUB_START_FROM=" + cfg.StartFrom,
		"FOLLOWPUB_POLL_INTERVAL=1s", "FOLLOWPUB_STATE_STORE=kafka", "FOLLOWPUB_STATE_TOPIC=followpub.demo.state",
		"FOLLOWPUB_GROUP_ID=followpub-demo", "FOLLOWPUB_GROUP_SESSION_TIMEOUT=6s", "FOLLOWPUB_LOG_LEVEL=warn", "FOLLOWPUB_LOG_FORMAT=text",
	}
	d := &haDemo{exe: exe, base: base, env: env, stderr: stderr, counts: map[string]int{}}
	defer d.stopAll()
	fmt.Fprintf(stdout, "followpub demo --ha: two instances (STATE_STORE=kafka, GROUP_SESSION_TIMEOUT=6s), the owner SIGKILLed every %s\n\n", killEvery)
	for range 2 {
		if err := d.start(); err != nil {
			return err
		}
	}
	kctx, kstop := context.WithCancel(ctx)
	defer kstop()
	// The view reads on after ctx ends, until every record due is in the topic (or 20 s).
	vctx, vstop := context.WithCancel(context.WithoutCancel(ctx))
	defer vstop()
	var want map[string]bool
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		d.killLoop(kctx, killEvery, stdout)
	}()
	go func() {
		defer wg.Done()
		<-kctx.Done()
		want = d.awaitCaughtUp(sim, cfg, 20*time.Second)
		vstop()
	}()
	view := &liveView{w: stdout, start: time.Now(), onEvent: d.count}
	err = followTopic(vctx, cfg, view, stdout, cfg.KafkaWriteTimeout+demoTopicWait)
	kstop()
	wg.Wait()
	d.stopAll()
	lost, dups := d.tally(want)
	fmt.Fprintf(stdout, "\nfollowpub demo --ha: %d records due, %d lost, %d duplicates, %d owners killed\n", len(want), lost, dups, d.kills)
	if err == nil && (lost > 0 || dups > 0) {
		err = fmt.Errorf("demo --ha: %d records lost and %d duplicated", lost, dups)
	}
	return err
}

// haDemo is the processes of `demo --ha` and what the live view counted.
type haDemo struct {
	exe, base string
	env       []string
	stderr    io.Writer

	mu     sync.Mutex
	live   []*haChild
	n      int
	kills  int
	counts map[string]int // events per key
}

func (d *haDemo) count(m kafka.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.counts[string(m.Key)]++
}

// awaitCaughtUp waits (at most wait) until every record the simulator shows from START_FROM on
// is in the topic, and returns their keys.
func (d *haDemo) awaitCaughtUp(sim *wshotosim.Server, cfg *config, wait time.Duration) map[string]bool {
	start, _ := time.Parse(time.RFC3339, cfg.StartFrom)
	want := map[string]bool{}
	for _, r := range sim.Visible() {
		if r.FollowTime >= start.UnixMilli() {
			want[strconv.FormatInt(r.ID, 10)] = true
		}
	}
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if lost, _ := d.tally(want); lost == 0 {
			break
		}
	}
	return want
}

// tally returns how many keys of want were not seen, and the copies beyond the first of each key.
func (d *haDemo) tally(want map[string]bool) (lost, dups int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range want {
		if d.counts[k] == 0 {
			lost++
		}
	}
	for _, n := range d.counts {
		dups += n - 1
	}
	return lost, dups
}

// stopAll stops every instance (SIGTERM, then SIGKILL after 20 s).
func (d *haDemo) stopAll() {
	d.mu.Lock()
	live := d.live
	d.live = nil
	d.mu.Unlock()
	for _, c := range live {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range live {
		select {
		case <-c.done:
		case <-time.After(20 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
}

type haChild struct {
	name string
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// start starts an instance in a new empty directory, its log lines prefixed with its name.
func (d *haDemo) start() error {
	d.mu.Lock()
	d.n++
	name := "instance-" + strconv.Itoa(d.n)
	d.mu.Unlock()
	dir, err := os.MkdirTemp(d.base, name+"-")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cmd := exec.Command(d.exe, "run")
	cmd.Dir = dir
	cmd.Env = append(append([]string(nil), d.env...), "FOLLOWPUB_HTTP_ADDR="+addr)
	out, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("demo --ha: starting an instance: %w", err)
	}
	c := &haChild{name: name, addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fmt.Fprintf(d.stderr, "[%s] %s\n", name, sc.Text())
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	d.mu.Lock()
	d.live = append(d.live, c)
	d.mu.Unlock()
	return nil
}

// owner returns the instance whose /metrics says it owns the tenant, or nil.
func (d *haDemo) owner() *haChild {
	d.mu.Lock()
	live := append([]*haChild(nil), d.live...)
	d.mu.Unlock()
	client := http.Client{Timeout: time.Second}
	for _, c := range live {
		resp, err := client.Get("http://" + c.addr + "/metrics")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if strings.Contains(string(body), "\nfollowpub_tenants_owned 1\n") {
			return c
		}
	}
	return nil
}

// killLoop prints who owns the tenant every 2 s and SIGKILLs the owner every killEvery,
// starting a fresh instance in its place.
func (d *haDemo) killLoop(ctx context.Context, killEvery time.Duration, w io.Writer) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	next := time.Now().Add(killEvery)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		o := d.owner()
		d.mu.Lock()
		events, dups := 0, 0
		for _, n := range d.counts {
			events += n
			dups += n - 1
		}
		distinct, kills := len(d.counts), d.kills
		d.mu.Unlock()
		who := "nobody (a takeover is under way)"
		if o != nil {
			who = fmt.Sprintf("%s (pid %d)", o.name, o.cmd.Process.Pid)
		}
		fmt.Fprintf(w, "  owner: %-28s kills: %d   events: %d   distinct: %d   duplicates: %d\n", who, kills, events, distinct, dups)
		if o == nil || time.Now().Before(next) {
			continue
		}
		_ = o.cmd.Process.Signal(syscall.SIGKILL)
		<-o.done
		d.mu.Lock()
		d.kills++
		for i, c := range d.live {
			if c == o {
				d.live = append(d.live[:i], d.live[i+1:]...)
				break
			}
		}
		d.mu.Unlock()
		fmt.Fprintf(w, "  ✖ SIGKILL %s; starting a fresh instance on a new directory\n", o.name)
		if err := d.start(); err != nil {
			fmt.Fprintln(w, "  demo --ha:", err)
		}
		next = time.Now().Add(killEvery)
	}
}
