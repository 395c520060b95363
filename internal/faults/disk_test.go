//go:build linux

package faults

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/tooltest"
	"github.com/followpub/followpub/internal/wshotosim"
)

// diskFault is one real way to make the state's file system refuse writes under a running
// followpub, and to make it accept them again.
type diskFault struct {
	name string
	// errText is what the kernel's error says, as followpub must report it.
	errText string
	// available says why this machine cannot provide the fault, or "".
	available func(t *testing.T) string
	// dir returns the directory the state goes in.
	dir func(t *testing.T) string
	// fail makes writes to the state fail; p is the running followpub.
	fail func(t *testing.T, dir string, p *proc)
	// heal undoes fail.
	heal func(t *testing.T, dir string, p *proc)
}

// fullTmpfs is a 2 MiB tmpfs filled to the last byte: writes that need new blocks fail with ENOSPC.
var fullTmpfs = diskFault{
	name:    "full tmpfs (ENOSPC)",
	errText: "no space left on device",
	available: func(t *testing.T) string {
		dir := t.TempDir()
		if err := mountTmpfs(dir, "1m"); err != nil {
			return fmt.Sprintf("cannot mount a tmpfs: %v", err)
		}
		_ = unix.Unmount(dir, 0)
		return ""
	},
	dir: func(t *testing.T) string {
		dir := t.TempDir()
		if err := mountTmpfs(dir, "2m"); err != nil {
			t.Fatalf("mounting a tmpfs on %s: %v", dir, err)
		}
		t.Cleanup(func() {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				t.Errorf("unmounting %s: %v", dir, err)
			}
		})
		return dir
	},
	fail: func(t *testing.T, dir string, _ *proc) {
		f, err := os.Create(filepath.Join(dir, "filler"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 4096)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("filling the tmpfs: %v", err)
				}
				break
			}
		}
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		if st.Bavail != 0 {
			t.Fatalf("the tmpfs still has %d free blocks after filling it", st.Bavail)
		}
	},
	heal: func(t *testing.T, dir string, _ *proc) {
		if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
			t.Fatal(err)
		}
	},
}

// fileSizeLimit lowers followpub's RLIMIT_FSIZE (prlimit(2), no privilege needed) to the state
// file's current size: any write that would grow the file fails with EFBIG, as on a full disk.
var fileSizeLimit = diskFault{
	name:      "file size limit (EFBIG)",
	errText:   "file too large",
	available: func(*testing.T) string { return "" },
	dir:       func(t *testing.T) string { return t.TempDir() },
	fail: func(t *testing.T, dir string, p *proc) {
		fi, err := os.Stat(filepath.Join(dir, "followpub.state"))
		if err != nil {
			t.Fatal(err)
		}
		var old unix.Rlimit
		if err := unix.Prlimit(p.Pid(), unix.RLIMIT_FSIZE, nil, &old); err != nil {
			t.Fatal(err)
		}
		lim := unix.Rlimit{Cur: uint64(fi.Size()), Max: old.Max}
		if err := unix.Prlimit(p.Pid(), unix.RLIMIT_FSIZE, &lim, nil); err != nil {
			t.Fatalf("prlimit(%d, RLIMIT_FSIZE, %d): %v", p.Pid(), fi.Size(), err)
		}
	},
	heal: func(t *testing.T, _ string, p *proc) {
		var old unix.Rlimit
		if err := unix.Prlimit(p.Pid(), unix.RLIMIT_FSIZE, nil, &old); err != nil {
			t.Fatal(err)
		}
		lim := unix.Rlimit{Cur: old.Max, Max: old.Max}
		if err := unix.Prlimit(p.Pid(), unix.RLIMIT_FSIZE, &lim, nil); err != nil {
			t.Fatal(err)
		}
	},
}

// immutableFile sets the immutable attribute on the state file (chattr +i): every write through
// the descriptor followpub holds fails with EPERM, as on a file system gone read-only. It needs
// CAP_LINUX_IMMUTABLE and a file system that checks the flag on write (ext4, xfs, btrfs; not tmpfs).
var immutableFile = diskFault{
	name:      "immutable state file (EPERM)",
	errText:   "operation not permitted",
	available: func(t *testing.T) string { return tooltest.ImmutableUnavailable(t) },
	dir:       func(t *testing.T) string { return t.TempDir() },
	fail: func(t *testing.T, dir string, _ *proc) {
		path := filepath.Join(dir, "followpub.state")
		tooltest.Chattr(t, "+i", path)
		t.Cleanup(func() { _ = exec.Command("chattr", "-i", path).Run() })
	},
	heal: func(t *testing.T, dir string, _ *proc) {
		tooltest.Chattr(t, "-i", filepath.Join(dir, "followpub.state"))
	},
}

func mountTmpfs(dir, size string) error {
	return unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700")
}

// TestDiskTrouble makes the state's file system refuse writes under a running `followpub run`
// while 3 000 new records are due, in every way this machine allows: a full tmpfs, a file-size
// limit, an immutable state file. While writes fail the cycle must fail loudly (an error naming
// the cause in the log, failed cycles counted, /readyz not ready), the process must keep running,
// and no more than one publish batch may reach the topic beyond what was committed: the batch in
// flight when the disk broke, published once — later failed cycles publish nothing. Once the disk
// accepts writes again, every record must be published without a restart, the store must load,
// and nothing may be duplicated: the batch acknowledged while the disk refused its commit is kept
// in memory and committed once the disk heals, never published again.
//
// A mechanism this machine cannot provide (no mount or CAP_LINUX_IMMUTABLE, a file system that
// ignores the immutable flag) is skipped outside CI; in CI the file-size limit, which needs no
// privilege, runs in its place, so CI always injects a real disk fault.
func TestDiskTrouble(t *testing.T) {
	t.Parallel()
	for _, f := range []diskFault{fullTmpfs, fileSizeLimit, immutableFile} {
		t.Run(f.name, func(t *testing.T) {
			if why := f.available(t); why != "" {
				if !inCI() {
					t.Skipf("%s is not available here (%s); CI runs the file size limit in its place", f.name, why)
				}
				t.Logf("%s is not available here (%s): using the file size limit in its place", f.name, why)
				f = fileSizeLimit
			}
			diskFlow(t, f)
		})
	}
}

func diskFlow(t *testing.T, f diskFault) {
	dir := f.dir(t)
	from, to := pastDays(1)
	w := e2etest.NewWorld(t, wshotosim.Config{Count: 200, Start: to.Add(-time.Hour), End: to}, from,
		e2etest.WithState(filepath.Join(dir, "followpub.state")))
	addr := e2etest.FreeAddr(t)
	p := start(t, w.Env("FOLLOWPUB_HTTP_ADDR="+addr), "run")
	ta := newTally(t, w.Brokers, w.Topic)
	initial := w.Want()
	if missing := ta.syncUntil(t, initial, 60*time.Second); len(missing) > 0 {
		t.Fatalf("the first %d records were not published:\n%s", len(initial), tail(p.Output(), 30))
	}
	if !e2etest.WaitFor(20*time.Second, func() bool { return ready(addr) == http.StatusOK }) {
		t.Fatal("/readyz never said ready")
	}
	gauge := func(name string, labels ...string) float64 {
		v, _ := metric(scrape(addr), name, labels...)
		return v
	}
	committedBefore := gauge("followpub_records_published_total")
	failedBefore := gauge("followpub_cycles_total", `result="failed"`)

	f.fail(t, dir, p)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	now := time.Now()
	// More than one batch, so that publishing past the first failed commit would show.
	burst := make([]time.Time, 2*batchSize)
	for i := range burst {
		burst[i] = now.Add(-time.Duration(rng.Int64N(int64(30 * time.Minute))))
	}
	w.Sim.Insert(burst...)
	if !e2etest.WaitFor(60*time.Second, func() bool { return gauge("followpub_cycles_total", `result="failed"`)-failedBefore >= 3 }) {
		t.Fatalf("no three failed cycles within 60 s of the disk refusing writes:\n%s", tail(p.Output(), 30))
	}
	if p.Exited() {
		t.Fatalf("followpub exited (status %d) when the disk refused writes:\n%s", p.ExitCode(), tail(p.Output(), 30))
	}
	// Ready means a cycle succeeded within three poll intervals: failing cycles take it away once
	// the last success is that old.
	if !e2etest.WaitFor(15*time.Second, func() bool { return ready(addr) == http.StatusServiceUnavailable }) {
		t.Errorf("/readyz = %d while every cycle fails, want 503", ready(addr))
	}
	loud := lines(p.Output(), `"level":"ERROR"`, "cycle failed", f.errText)
	if len(loud) == 0 {
		t.Errorf("no error line in the log names the cause (%q):\n%s", f.errText, tail(p.Output(), 20))
	}
	ta.sync(t)
	committed := gauge("followpub_records_published_total") - committedBefore
	fresh := 0 // distinct new ids in the topic
	for id := range ta.counts {
		if _, ok := initial[id]; !ok {
			fresh++
		}
	}
	if float64(fresh) > committed+batchSize {
		t.Errorf("%d new records reached the topic while only %v could be committed: more than one batch (%d) past the commit",
			fresh, committed, batchSize)
	}
	messagesWhileBroken := ta.total - len(initial)
	if float64(messagesWhileBroken) > committed+batchSize {
		t.Errorf("%d new messages (%d distinct ids) reached the topic while only %v could be committed: the failed cycles published again what was in flight when the disk broke",
			messagesWhileBroken, fresh, committed)
	}
	// Consecutive failed cycles while the disk stays broken publish nothing more: the batch in
	// flight when it broke is kept in memory and its commit retried, not published again.
	failedAt := gauge("followpub_cycles_total", `result="failed"`)
	if !e2etest.WaitFor(60*time.Second, func() bool { return gauge("followpub_cycles_total", `result="failed"`)-failedAt >= 2 }) {
		t.Fatalf("no two more failed cycles within 60 s while the disk stayed broken:\n%s", tail(p.Output(), 30))
	}
	ta.sync(t)
	if more := ta.total - len(initial) - messagesWhileBroken; more != 0 {
		t.Errorf("%d messages published by later failed cycles while the disk stayed broken; want none", more)
	}
	if c := gauge("followpub_records_published_total") - committedBefore; c != committed {
		t.Errorf("%v records committed while the disk stayed broken", c-committed)
	}
	failedCycles := gauge("followpub_cycles_total", `result="failed"`) - failedBefore

	f.heal(t, dir, p)
	want := w.Want()
	if missing := ta.syncUntil(t, want, 90*time.Second); len(missing) > 0 {
		t.Fatalf("%d of %d records still not published 90 s after the disk recovered:\n%s", len(missing), len(want), tail(p.Output(), 30))
	}
	if !e2etest.WaitFor(20*time.Second, func() bool { return ready(addr) == http.StatusOK }) {
		t.Fatal("/readyz never said ready again after the disk recovered")
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Fatalf("after SIGTERM followpub exited %d:\n%s", code, tail(p.Output(), 30))
	}
	st, err := loadState(w.State)
	if err != nil {
		t.Fatalf("the store does not load after the disk trouble: %v", err)
	}
	for id, r := range want {
		if r.FollowTime >= st.Floor {
			if _, ok := st.Seen[id]; !ok {
				t.Fatalf("id %d is published but not remembered by the store", id)
			}
		}
	}
	finalRun(t, w.Env())
	ta.sync(t)
	lost := ta.missing(want)
	slices.Sort(lost)
	if len(lost) > 0 {
		t.Errorf("%d records lost, e.g. %v", len(lost), lost[:min(10, len(lost))])
	}
	copies, keys := ta.dups()
	if copies > 0 {
		t.Errorf("%d duplicate copies of %d keys over an outage of %v failed cycles, want none", copies, keys, failedCycles)
	}
	figures(t, "injected=1 lost=%d duplicated=%d mechanism=%q records=%d committed_while_broken=%v distinct_new_in_topic_while_broken=%d messages_while_broken=%d failed_cycles=%v duplicate_keys=%d error=%q",
		len(lost), copies, f.name, len(want), committed, fresh, messagesWhileBroken, failedCycles, keys, f.errText)
}

// TestReadOnlyStateMount remounts the state's file system read-only between runs: `run --once`
// must exit 1 at once with a message naming the state and the cause, publish nothing, and work
// again once the file system is writable. Without mount privileges (outside root) a directory
// and file without write permission stand in; as root without mount privileges the test is skipped
// outside CI and fails in CI.
func TestReadOnlyStateMount(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mounted := mountTmpfs(dir, "4m") == nil
	var readOnly, writable func()
	switch {
	case mounted:
		t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
		readOnly = func() {
			if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				t.Fatalf("remounting %s read-only: %v", dir, err)
			}
		}
		writable = func() {
			if err := unix.Mount("", dir, "", unix.MS_REMOUNT, "size=4m"); err != nil {
				t.Fatalf("remounting %s read-write: %v", dir, err)
			}
		}
	case os.Geteuid() != 0:
		t.Log("no mount privilege: using a directory and a state file without write permission")
		readOnly = func() {
			_ = filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chmod(p, 0o500) })
			_ = os.Chmod(filepath.Join(dir, "followpub.state"), 0o400)
			_ = os.Chmod(filepath.Join(dir, "followpub.state.lock"), 0o400)
		}
		writable = func() {
			_ = filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chmod(p, 0o700) })
		}
		t.Cleanup(writable)
	default:
		msg := "running as root without the privilege to mount: cannot make the state read-only"
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	from, to := pastDays(1)
	w := e2etest.NewWorld(t, wshotosim.Config{Count: 100, Start: to.Add(-time.Hour), End: to}, from,
		e2etest.WithState(filepath.Join(dir, "followpub.state")))
	if code, out := run(t, time.Minute, w.Env(), "run", "--once"); code != 0 {
		t.Fatalf("the first run --once exited %d:\n%s", code, tail(out, 30))
	}
	ta := newTally(t, w.Brokers, w.Topic)
	ta.sync(t)
	before := ta.total
	readOnly()
	w.Sim.Insert(time.Now().Add(-time.Minute), time.Now().Add(-2*time.Minute))
	began := time.Now()
	code, out := run(t, time.Minute, w.Env(), "run", "--once")
	if code != 1 {
		t.Fatalf("run --once on a read-only state exited %d, want 1:\n%s", code, tail(out, 30))
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("run --once took %v to give up on a read-only state", took)
	}
	cause := "read-only file system"
	if !mounted {
		cause = "permission denied"
	}
	if !strings.Contains(out, w.State) || !strings.Contains(out, cause) {
		t.Errorf("the message does not name the state %s and the cause %q:\n%s", w.State, cause, tail(out, 10))
	}
	ta.sync(t)
	if ta.total != before {
		t.Fatalf("%d records were published although the state could not be written", ta.total-before)
	}
	writable()
	want := w.Want()
	finalRun(t, w.Env())
	ta.sync(t)
	if lost := ta.missing(want); len(lost) > 0 {
		t.Fatalf("%d records lost", len(lost))
	}
	if copies, _ := ta.dups(); copies > 0 {
		t.Fatalf("%d duplicate copies", copies)
	}
	figures(t, "mechanism=%q exit=1 published_while_read_only=0 lost=0 duplicates=0", map[bool]string{true: "tmpfs remounted read-only", false: "chmod"}[mounted])
}

// usedLeafPage returns the id of a leaf page in use near the middle of the bbolt file state (free
// pages, which zeroing would not harm, are skipped), from a copy opened with bbolt.
func usedLeafPage(t *testing.T, state []byte, pageSize int) int {
	t.Helper()
	path := filepath.Join(t.TempDir(), "copy.state")
	if err := os.WriteFile(path, state, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pages := len(state) / pageSize
	found := -1
	err = db.View(func(tx *bolt.Tx) error {
		for i := range pages {
			for _, id := range []int{pages/2 + i, pages/2 - i} {
				if id < 2 || id >= pages {
					continue
				}
				info, err := tx.Page(id)
				if err != nil {
					return err
				}
				if info != nil && info.Type == "leaf" {
					found = id
					return nil
				}
			}
		}
		return nil
	})
	if err != nil || found < 0 {
		t.Fatalf("no leaf page in use in the state (%v)", err)
	}
	return found
}

// TestDamagedStateNeverRestarts damages a real state file (5 000 remembered ids, many pages) in
// the ways disks and people damage files, and runs `run --once` and `watermark show` on it. Each
// must exit 1 with a message naming the state file, publish nothing (a silent restart from
// START_FROM would publish every record again), never panic, and leave the damaged file as it was.
func TestDamagedStateNeverRestarts(t *testing.T) {
	t.Parallel()
	from, to := pastDays(1)
	w := e2etest.NewWorld(t, wshotosim.Config{Count: 5000, Start: to.Add(-3 * time.Hour), End: to}, from)
	if code, out := run(t, time.Minute, w.Env(), "run", "--once"); code != 0 {
		t.Fatalf("run --once exited %d:\n%s", code, tail(out, 30))
	}
	good, err := os.ReadFile(w.State)
	if err != nil {
		t.Fatal(err)
	}
	if len(good) < 64<<10 {
		t.Fatalf("the state is only %d bytes: not the many-page store the test needs", len(good))
	}
	ta := newTally(t, w.Brokers, w.Topic)
	ta.sync(t)
	published := ta.total

	rng := rand.New(rand.NewPCG(5, 8))
	garbage := make([]byte, len(good))
	for i := range garbage {
		garbage[i] = byte(rng.IntN(256))
	}
	page := 4096
	zeroPage := func(n int) []byte {
		b := slices.Clone(good)
		clear(b[n*page : (n+1)*page])
		return b
	}
	tests := []struct {
		name   string
		damage func(path string) error // writes the damaged state at path
		want   string                  // in the message besides the path
	}{
		{"empty", func(p string) error { return os.WriteFile(p, nil, 0o600) }, "empty"},
		{"truncated to half", func(p string) error { return os.WriteFile(p, good[:len(good)/2], 0o600) }, "corrupt"},
		{"truncated to a quarter", func(p string) error { return os.WriteFile(p, good[:len(good)/4], 0o600) }, "corrupt"},
		{"garbage", func(p string) error { return os.WriteFile(p, garbage, 0o600) }, "corrupt"},
		{"text", func(p string) error { return os.WriteFile(p, []byte("watermark=2024-01-01\n"), 0o600) }, "corrupt"},
		{"both meta pages zeroed", func(p string) error {
			b := slices.Clone(good)
			clear(b[:2*page])
			return os.WriteFile(p, b, 0o600)
		}, "corrupt"},
		{"a middle page zeroed", func(p string) error { return os.WriteFile(p, zeroPage(usedLeafPage(t, good, page)), 0o600) }, "corrupt"},
		{"a directory", func(p string) error { return os.Mkdir(p, 0o700) }, "directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "followpub.state")
			if err := tt.damage(path); err != nil {
				t.Fatal(err)
			}
			before := snapshot(path)
			env := w.Env("FOLLOWPUB_STATE_PATH=" + path)
			for _, args := range [][]string{{"run", "--once"}, {"watermark", "show"}} {
				code, out := run(t, time.Minute, env, args...)
				if crashed(code, out) {
					t.Fatalf("followpub %v crashed on a damaged state:\n%s", args, head(out, 12))
				}
				if code != 1 {
					t.Fatalf("followpub %v on a damaged state exited %d, want 1:\n%s", args, code, tail(out, 20))
				}
				if !strings.Contains(out, path) || !strings.Contains(out, tt.want) {
					t.Errorf("followpub %v: the message does not name %s and say %q:\n%s", args, path, tt.want, tail(out, 5))
				}
			}
			ta.sync(t)
			if ta.total != published {
				t.Fatalf("%d records were published from a damaged state: a silent restart", ta.total-published)
			}
			if after := snapshot(path); after != before {
				t.Fatalf("the damaged state was changed by the failed runs (%s → %s)", before, after)
			}
		})
	}
	figures(t, "damages=%d exit_1=all published_from_damaged_state=0", len(tests))
}

// snapshot describes a file's type, size and content, to see whether something changed it.
func snapshot(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	if fi.IsDir() {
		return "directory"
	}
	b, _ := os.ReadFile(path)
	return fmt.Sprintf("%d bytes, %x", len(b), b[:min(len(b), 64)]) + fmt.Sprint(crc(b))
}

func crc(b []byte) uint32 {
	var h uint32 = 2166136261
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

// crashed reports whether a followpub run ended in a Go runtime crash (an unrecovered panic or a
// fatal fault), rather than with an error it chose to report.
func crashed(code int, out string) bool {
	return code == 2 && (strings.Contains(out, "goroutine ") || strings.Contains(out, "fatal error:"))
}

// head returns the first n lines of s.
func head(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
