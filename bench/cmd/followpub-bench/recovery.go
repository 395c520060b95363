package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
)

// The poller's log lines of a read-back, one per outcome: records of ours found, none, no tail yet.
var readBackMsgs = []string{
	"the read-back found records of ours the state did not have, and committed them as published",
	"topic read back",
	"no tail recorded for the topic yet: accounting for it from its end now",
}

// kafkaWriteMsg starts kafka-go's debug line for each produce of a partition's batch.
const kafkaWriteMsg = "writing "

// recoveryRestartDelay is how long the driver waits between the SIGKILL and the new process, as
// a supervisor would: the broker finishes the requests the dead process had sent.
const recoveryRestartDelay = 200 * time.Millisecond

// recoveryGoal is the goal of the time from the new process's start to its first write.
const recoveryGoal = time.Second

// recoverySample is one run: followpub killed while a publish was in flight, then started again.
type recoverySample struct {
	toReadBack, readBack, toWrite time.Duration // from the new process's start; the read-back alone
	read, committed               int           // records the read-back read; of them ours and committed
	lost, duplicated              int           // at the end: ids missing from the topic, copies beyond one
	writesBeforeKill              int64         // kafka-go produce lines of the killed process
}

// recovery measures the recovery after a SIGKILL with a publish in flight, with followpub as built
// from this repository (the variants before exactly once have no read-back to measure). A kill that
// left nothing for the read-back to find is not a run: it is tried again, up to 4×runs kills.
func (d *driver) recovery(ctx context.Context) ([]*table, error) {
	end := time.Now()
	a, err := startAPI(wshotosim.Config{
		Count: d.opts.recoveryRecords, Start: end.Add(-time.Duration(d.opts.recoveryDays) * 24 * time.Hour), End: end,
		Location: d.loc,
	})
	if err != nil {
		return nil, err
	}
	defer a.close()
	want := map[string]bool{}
	for _, r := range a.sim.Visible() {
		want[strconv.FormatInt(r.ID, 10)] = true
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	var samples []recoverySample
	var missed []recoverySample // kills after which the read-back found nothing of ours
	for kill := 1; len(samples) < d.opts.runs; kill++ {
		if kill > 4*d.opts.runs {
			return nil, fmt.Errorf("only %d of %d kills left records of a publish in flight for the read-back to find (%d wanted): the kill comes too late; check the machine's load",
				len(samples), kill-1, d.opts.runs)
		}
		progress("recovery run %d/%d (kill %d)", len(samples)+1, d.opts.runs, kill)
		s, err := d.recoveryOnce(ctx, a, want, rng)
		if err != nil {
			return nil, err
		}
		progress("  killed after %d kafka-go writes; restarted: read-back %s (%d read, %d committed) done %s after start, first write %s after start; lost %d, duplicated %d",
			s.writesBeforeKill, s.readBack.Round(time.Millisecond), s.read, s.committed, s.toReadBack.Round(time.Millisecond),
			s.toWrite.Round(time.Millisecond), s.lost, s.duplicated)
		if s.committed == 0 {
			missed = append(missed, s)
			continue
		}
		samples = append(samples, s)
	}

	t := &table{
		title: fmt.Sprintf("Exactly once — recovery after a SIGKILL with a publish of %d in flight: backfill of %d records over %d days, API latency 0, `run --once` killed and started again",
			poller.DefaultBatchSize, d.opts.recoveryRecords, d.opts.recoveryDays),
		head: []string{"figure (the new process)", fmt.Sprintf("median of %d runs", len(samples)), "max", "goal"},
	}
	secs := func(f func(recoverySample) time.Duration) (float64, float64) {
		var xs []float64
		for _, s := range samples {
			xs = append(xs, f(s).Seconds())
		}
		return median(xs), percentile(xs, 100)
	}
	count := func(f func(recoverySample) int) (string, string) {
		var xs []float64
		for _, s := range samples {
			xs = append(xs, float64(f(s)))
		}
		return fmt.Sprintf("%g", median(xs)), fmt.Sprintf("%g", percentile(xs, 100))
	}
	row := func(name, goal string, med, mx any) { t.add(name, med, mx, goal) }
	m, x := secs(func(s recoverySample) time.Duration { return s.toWrite })
	row("start → first write after the read-back (s): kafka-go's first produce line", fmt.Sprintf("≤ %s", recoveryGoal), m, x)
	m, x = secs(func(s recoverySample) time.Duration { return s.toReadBack })
	row("start → read-back done (s): its log line", "", m, x)
	m, x = secs(func(s recoverySample) time.Duration { return s.toReadBack - s.readBack })
	row("of which before the read-back (s): start-up and reading the first days from the API", "", m, x)
	m, x = secs(func(s recoverySample) time.Duration { return s.readBack })
	row("of which the read-back (s): the duration in its log line", "", m, x)
	cm, cx := count(func(s recoverySample) int { return s.read })
	row("records read back (from the recorded tail to the end)", "", cm, cx)
	cm, cx = count(func(s recoverySample) int { return s.committed })
	row("of which ours, not in the state, committed as published", "", cm, cx)
	cm, cx = count(func(s recoverySample) int { return s.lost })
	row("lost at the end: ids the API showed, missing from the topic", "0", cm, cx)
	cm, cx = count(func(s recoverySample) int { return s.duplicated })
	row("duplicated at the end: copies beyond the first, over all ids", "0", cm, cx)
	lost, dups := 0, 0
	for _, s := range missed {
		lost, dups = lost+s.lost, dups+s.duplicated
	}
	t.note("Each run: a fresh topic of %d partitions and an empty state; `followpub run --once` (LOG_LEVEL=debug, API_RATE_LIMIT=%g) is killed with SIGKILL the moment the topic grows "+
		"after a random 4th–27th kafka-go produce (one per partition of a publish of %d): the broker has appended records that followpub has not committed yet. "+
		"After %s the same command starts again and runs the backfill to its end; then the whole topic is read and counted per id. "+
		"Times are from the new process's start (as the driver started it) to its JSON log lines' times, on this machine's clock. "+
		"Kills whose read-back found nothing of ours (the publish had not landed yet, or was already committed) are not runs: %d of %d kills, with %d lost and %d duplicated after them.",
		publisher.DefaultPartitions, d.opts.rateLimit, poller.DefaultBatchSize, recoveryRestartDelay, len(missed), len(samples)+len(missed), lost, dups)
	tr := &table{
		title: "Exactly once — recovery, run by run",
		head:  []string{"run", "kafka-go writes before the kill", "start → first write", "start → read-back done", "the read-back", "records read back", "committed", "lost", "duplicated"},
	}
	for i, s := range samples {
		tr.add(i+1, s.writesBeforeKill, s.toWrite, s.toReadBack, s.readBack, s.read, s.committed, s.lost, s.duplicated)
	}
	return []*table{t, tr}, nil
}

// recoveryOnce runs one backfill into a fresh topic, kills it with a publish in flight, starts it
// again to the end, and measures the new process and what the topic holds.
func (d *driver) recoveryOnce(ctx context.Context, a *api, want map[string]bool, rng *rand.Rand) (recoverySample, error) {
	var s recoverySample
	topic := topicName("recovery")
	state := filepath.Join(d.tmp, topic+".state")
	defer os.Remove(state)
	defer d.kafka.deleteTopic(ctx, topic)
	if err := d.kafka.createTopic(ctx, topic, publisher.DefaultPartitions, nil); err != nil {
		return s, err
	}
	time.Sleep(settle)
	vars := d.backfillVars(a, topic, state)
	vars["LOG_LEVEL"] = "debug"
	vars["API_RATE_LIMIT"] = fmt.Sprint(d.opts.rateLimit)

	w := &writeWatch{seen: make(chan struct{}, 1)}
	target := int64(4 + rng.IntN(24))
	p, err := startProcTee(d.bins[0].path, vars, w, "run", "--once")
	if err != nil {
		return s, err
	}
	kill := func() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	for w.writes.Load() < target {
		select {
		case <-p.done:
			return s, fmt.Errorf("the backfill of %d records ended after %d kafka-go writes, before the kill at write %d: give -recovery-records more",
				d.opts.recoveryRecords, w.writes.Load(), target)
		case <-w.seen:
		case <-time.After(time.Minute):
			kill()
			return s, fmt.Errorf("no kafka-go write within a minute (%d seen, waiting for %d); output:\n%s", w.writes.Load(), target, tail(p.out.String(), 20))
		}
	}
	// The topic grows once the broker appended a write of the publish under way; followpub commits
	// the batch only after every partition's acknowledgement, so the kill lands in between.
	base, err := d.kafka.count(ctx, topic)
	if err != nil {
		kill()
		return s, err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		n, err := d.kafka.count(ctx, topic)
		if err != nil {
			kill()
			return s, err
		}
		if n > base {
			break
		}
	}
	s.writesBeforeKill = w.writes.Load()
	kill()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		return s, fmt.Errorf("the backfill ended with %v before the SIGKILL; output:\n%s", p.cmd.ProcessState, tail(p.out.String(), 20))
	}
	time.Sleep(recoveryRestartDelay)

	p2, err := startProc(d.bins[0].path, vars, "run", "--once")
	if err != nil {
		return s, err
	}
	if err := p2.wait(20 * time.Minute); err != nil {
		return s, fmt.Errorf("the restarted backfill: %w", err)
	}
	if err := s.fromLogs(p2); err != nil {
		return s, err
	}
	if s.toWrite > recoveryGoal {
		progress("  over the goal of %s: the restarted process's log up to its first write:\n%s", recoveryGoal, p2.logsUntil(s.toWrite))
	}
	s.lost, s.duplicated, _, err = d.countKeys(ctx, topic, want)
	return s, err
}

// fromLogs reads the restarted process's read-back and its first write after it from its log.
func (s *recoverySample) fromLogs(p *proc) error {
	rb := -1
	lines := p.logs()
	for i, l := range lines {
		for _, m := range readBackMsgs {
			if rb < 0 && l.str("msg") == m {
				rb = i
			}
		}
	}
	if rb < 0 {
		return fmt.Errorf("the restarted process logged no read-back; output:\n%s", tail(p.out.String(), 20))
	}
	l := lines[rb]
	s.toReadBack = l.time().Sub(p.start)
	s.readBack = parseLogDuration(l["duration"])
	read, _ := l["read"].(float64)
	committed, _ := l["committed"].(float64)
	s.read, s.committed = int(read), int(committed)
	for _, w := range lines[rb+1:] {
		if w.str("source") == "kafka-go" && strings.HasPrefix(w.str("msg"), kafkaWriteMsg) {
			s.toWrite = w.time().Sub(p.start)
			return nil
		}
	}
	return fmt.Errorf("the restarted process logged no kafka-go write after its read-back; output:\n%s", tail(p.out.String(), 20))
}

// writeWatch counts kafka-go's produce lines in a process's output as they are written.
type writeWatch struct {
	partial []byte
	writes  atomic.Int64
	seen    chan struct{} // a token after each line counted
}

func (w *writeWatch) Write(b []byte) (int, error) {
	w.partial = append(w.partial, b...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := w.partial[:i]
		if bytes.Contains(line, []byte(`"msg":"`+kafkaWriteMsg)) && bytes.Contains(line, []byte(`"source":"kafka-go"`)) {
			w.writes.Add(1)
			select {
			case w.seen <- struct{}{}:
			default:
			}
		}
		w.partial = w.partial[i+1:]
	}
	return len(b), nil
}

// logsUntil returns the process's log lines up to d after its start, each led by its time since
// the start: what a slow start spent its time on.
func (p *proc) logsUntil(d time.Duration) string {
	var b strings.Builder
	for _, l := range p.logs() {
		at := l.time().Sub(p.start)
		if at > d {
			break
		}
		delete(l, "time")
		fmt.Fprintf(&b, "    +%s %v\n", at.Round(time.Millisecond), map[string]any(l))
	}
	return b.String()
}
