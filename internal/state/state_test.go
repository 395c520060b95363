package state_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/followpub/followpub/internal/state"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/poller/pollertest"
)

func TestStoreSuite(t *testing.T) {
	pollertest.StoreSuite(t, func(t *testing.T) func() (poller.Store, func()) {
		path := filepath.Join(t.TempDir(), "followpub.state")
		return func() (poller.Store, func()) {
			s, err := state.Open(path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s, func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		}
	})
}

func TestSecondOpenFailsAtOnceNamingTheHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "followpub.state")
	s, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	began := time.Now()
	_, err = state.Open(path)
	if !errors.Is(err, state.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if time.Since(began) > 500*time.Millisecond {
		t.Fatalf("second Open took %v, want it to fail at once", time.Since(began))
	}
	for _, want := range []string{path, fmt.Sprintf("pid %d", os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not name %q", err, want)
		}
	}
	// Once the holder closes, the store opens again.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := state.Open(path)
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	s2.Close()
}

func TestUnreadableFilesAreErrorsNotResets(t *testing.T) {
	valid := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "followpub.state")
		s, err := state.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Replace(context.Background(), 1, 2); err != nil {
			t.Fatal(err)
		}
		s.Close()
		return path
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   error
	}{
		{"empty", func(t *testing.T, p string) { must(t, os.Truncate(p, 0)) }, state.ErrCorrupt},
		{"truncated", func(t *testing.T, p string) { must(t, os.Truncate(p, 4096+100)) }, state.ErrCorrupt},
		{"garbage", func(t *testing.T, p string) {
			b := make([]byte, 64<<10)
			for i := range b {
				b[i] = byte(rand.IntN(256))
			}
			must(t, os.WriteFile(p, b, 0o600))
		}, state.ErrCorrupt},
		{"text", func(t *testing.T, p string) { must(t, os.WriteFile(p, []byte("watermark=2024-01-01\n"), 0o600)) }, state.ErrCorrupt},
		{"both meta pages damaged", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			must(t, err)
			defer f.Close()
			// bbolt keeps two meta pages at 0 and 4096; scribble over both checksums' neighbourhood.
			_, err = f.WriteAt([]byte(strings.Repeat("x", 64)), 16)
			must(t, err)
			_, err = f.WriteAt([]byte(strings.Repeat("x", 64)), 4096+16)
			must(t, err)
		}, state.ErrCorrupt},
		{"unknown format", func(t *testing.T, p string) {
			db, err := bolt.Open(p, 0o600, nil)
			must(t, err)
			defer db.Close()
			must(t, db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte("followpub-state/99"))
			}))
		}, state.ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := valid(t)
			tt.damage(t, path)
			_, err := state.Open(path)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open of a damaged file: %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			// And the damaged file is still there, untouched by the failed open.
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("the damaged file is gone: %v", err)
			}
		})
	}
}

func TestReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores permission bits; the read-only case is covered with a read-only mount in the
		// fault tests and with a failing store in the poller's tests.
		t.Log("running as root: checking that a file in a missing directory fails clearly instead")
		_, err := state.Open(filepath.Join(t.TempDir(), "missing", "followpub.state"))
		if err == nil || !strings.Contains(err.Error(), "missing") {
			t.Fatalf("Open in a missing directory: %v, want an error naming the path", err)
		}
		return
	}
	dir := t.TempDir()
	must(t, os.Chmod(dir, 0o500))
	_, err := state.Open(filepath.Join(dir, "followpub.state"))
	if err == nil {
		t.Fatal("Open in a read-only directory succeeded")
	}
}

// The crash test: a child process commits batches as fast as it can and is killed with SIGKILL at a
// random moment, many times; every reopen must succeed and hold a consistent state.

const crashChildEnv = "FOLLOWPUB_STATE_CRASH_CHILD"

// batch b holds ids b*100 … b*100+99, all with follow_time b.
const perBatch = 100

func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("helper process for TestKilledWhileCommitting; runs only when started by it")
	}
	s, err := state.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	st, err := s.Load(ctx)
	if err != nil {
		os.Exit(4)
	}
	if !st.Exists {
		_ = s.Replace(ctx, 0, -1)
		st.Watermark = -1
	}
	fmt.Println("ready")
	for b := st.Watermark + 1; ; b++ {
		c := poller.Change{Watermark: b, Floor: max(0, b-20)}
		for i := range int64(perBatch) {
			c.Add = append(c.Add, poller.Published{ID: b*perBatch + i, FollowTime: b})
		}
		if err := s.Commit(ctx, c); err != nil {
			os.Exit(5)
		}
	}
}

func TestKilledWhileCommitting(t *testing.T) {
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("-short: the crash loop takes a few seconds (CI runs it even with -short)")
	}
	path := filepath.Join(t.TempDir(), "followpub.state")
	kills := 30
	last := int64(-1)
	for i := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		out, err := cmd.StdoutPipe()
		must(t, err)
		must(t, cmd.Start())
		buf := make([]byte, 16)
		_, _ = out.Read(buf) // "ready": the child holds the store
		time.Sleep(time.Duration(5+rand.IntN(60)) * time.Millisecond)
		must(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()

		s, err := state.Open(path)
		if err != nil {
			t.Fatalf("kill %d: reopen failed: %v", i, err)
		}
		st, err := s.Load(context.Background())
		s.Close()
		if err != nil {
			t.Fatalf("kill %d: load failed: %v", i, err)
		}
		checkConsistent(t, i, st)
		if st.Watermark < last {
			t.Fatalf("kill %d: watermark went back from %d to %d", i, last, st.Watermark)
		}
		last = st.Watermark
	}
	if last < int64(kills) {
		t.Fatalf("only %d batches committed over %d runs: the child barely ran", last+1, kills)
	}
	t.Logf("%d SIGKILLs, %d batches committed, every reopen consistent", kills, last+1)
}

// checkConsistent holds the state to the child's invariant: batches floor…watermark complete, nothing
// else.
func checkConsistent(t *testing.T, kill int, st poller.State) {
	t.Helper()
	if !st.Exists {
		if len(st.Seen) != 0 {
			t.Fatalf("kill %d: no state but %d ids", kill, len(st.Seen))
		}
		return
	}
	want := 0
	for b := st.Floor; b <= st.Watermark; b++ {
		if b < 0 {
			continue
		}
		for i := range int64(perBatch) {
			id := b*perBatch + i
			if ft, ok := st.Seen[id]; !ok || ft != b {
				t.Fatalf("kill %d: batch %d is incomplete (id %d missing) with watermark %d", kill, b, id, st.Watermark)
			}
			want++
		}
	}
	if len(st.Seen) != want {
		t.Fatalf("kill %d: %d ids remembered, want %d (floor %d, watermark %d)", kill, len(st.Seen), want, st.Floor, st.Watermark)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestPagesAreFilled: ids arrive in ascending (follow_time, id), the key order, so the store fills
// its pages instead of leaving them half empty (bbolt's default when a page splits): the leaf
// pages of the ids are more than 85 % used (about 50 % before), and the file is half the size.
// TestIDsAreChunked: 100,000 ids committed as a backfill does (commits of 3000) take one key per
// commit and day, a few bytes of page per id, and load back whole.
func TestIDsAreChunked(t *testing.T) {
	const ids, batch = 100_000, 3000
	path := filepath.Join(t.TempDir(), "followpub.state")
	s, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Replace(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	commits := 0
	for i := 0; i < ids; i += batch {
		var c poller.Change
		for j := i; j < min(i+batch, ids); j++ {
			c.Add = append(c.Add, poller.Published{ID: 1_000_000 + int64(j)*7, FollowTime: 1_700_000_000_000 + int64(j)*100})
		}
		if err := s.Commit(ctx, c); err != nil {
			t.Fatal(err)
		}
		commits++
	}
	st, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Seen) != ids || st.Seen[1_000_000+7*(ids-1)] != 1_700_000_000_000+100*(ids-1) {
		t.Fatalf("loaded %d ids (the last with follow_time %d), want %d", len(st.Seen), st.Seen[1_000_000+7*(ids-1)], ids)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var bs bolt.BucketStats
	if err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("seen"))
		if b == nil {
			return errors.New(`no "seen" bucket`)
		}
		bs = b.Stats()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	days := bs.BucketN - 1
	chunks := bs.KeyN - days // the stats count each day bucket's key in seen too
	perID := float64(bs.LeafAlloc+bs.BranchAlloc) / ids
	t.Logf("%d ids in %d chunks in %d day buckets: %d bytes of pages, %.1f per id", ids, chunks, days, bs.LeafAlloc+bs.BranchAlloc, perID)
	if chunks > commits+days {
		t.Errorf("%d chunks for %d commits over %d days: want at most one per commit and day", chunks, commits, days)
	}
	if perID > 4 {
		t.Errorf("%.1f bytes of pages per id, want at most 4: are the ids chunked and delta-encoded?", perID)
	}
}

// TestOpensOlderFormatsAndUpgradesInPlace: testdata/v1.state was written by the release before the
// tail was recorded (format 1, made with the code at 9d48d8e: a floor and watermark, 51 ids, one
// above 2^53); testdata/v2.state by the release before ids were chunked (format 2, made with the
// code at 547c25f: the same ids in day buckets, one key each, and a tail). Each opens, loads
// exactly what it held, is upgraded to the current format in place (chunks in day buckets, as a
// later Open sees) and takes commits with a tail.
func TestOpensOlderFormatsAndUpgradesInPlace(t *testing.T) {
	for _, tt := range []struct {
		file, format string
		tail         poller.Tail
	}{
		{"testdata/v1.state", "followpub-state/1", poller.Tail{}},
		{"testdata/v2.state", "followpub-state/2", poller.Tail{Topic: "t2", Next: map[int]int64{0: 11, 1: 13, 2: 17}}},
	} {
		t.Run(filepath.Base(tt.file), func(t *testing.T) { testUpgrade(t, tt.file, tt.format, tt.tail) })
	}
}

func testUpgrade(t *testing.T, file, oldFormat string, oldTail poller.Tail) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "followpub.state")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	const floor = int64(1707235200000)
	want := map[int64]int64{9007199254740993: floor + 3_600_000}
	for i := range 50 {
		want[1000+int64(i)*7919] = floor + int64(i)*1800_000
	}
	s, err := state.Open(path)
	if err != nil {
		t.Fatalf("opening %s: %v", file, err)
	}
	ctx := context.Background()
	check := func(st poller.State, tail poller.Tail) {
		t.Helper()
		if !st.Exists || st.Floor != floor || st.Watermark != floor+49*1800_000 {
			t.Fatalf("state = exists %v floor %d watermark %d, want exists, floor %d, watermark %d",
				st.Exists, st.Floor, st.Watermark, floor, floor+49*1800_000)
		}
		if len(st.Seen) != len(want) {
			t.Fatalf("%d ids remembered, want %d", len(st.Seen), len(want))
		}
		for id, ft := range want {
			if got, ok := st.Seen[id]; !ok || got != ft {
				t.Fatalf("id %d: follow_time %d (remembered %v), want %d", id, got, ok, ft)
			}
		}
		if st.Tail.Topic != tail.Topic || len(st.Tail.Next) != len(tail.Next) {
			t.Fatalf("tail = %+v, want %+v", st.Tail, tail)
		}
		for p, o := range tail.Next {
			if st.Tail.Next[p] != o {
				t.Fatalf("tail = %+v, want %+v", st.Tail, tail)
			}
		}
	}
	st, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(st, oldTail)
	tail := poller.Tail{Topic: "t", Next: map[int]int64{0: 5, 1: 7}}
	if err := s.Commit(ctx, poller.Change{Floor: floor, Watermark: st.Watermark, Tail: &tail}); err != nil {
		t.Fatalf("committing to the upgraded state: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var format string
	var days, chunks int
	if err := db.View(func(tx *bolt.Tx) error {
		format = string(tx.Bucket([]byte("meta")).Get([]byte("format")))
		seen := tx.Bucket([]byte("seen"))
		return seen.ForEachBucket(func(day []byte) error {
			days++
			return seen.Bucket(day).ForEach(func(_, _ []byte) error { chunks++; return nil })
		})
	}); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	// The file as it was, before the upgrade, for a rollback to an older followpub.
	backup, err := bolt.Open(state.BackupPath(path, oldFormat), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("the copy made before the upgrade: %v", err)
	}
	var backupFormat string
	_ = backup.View(func(tx *bolt.Tx) error {
		backupFormat = string(tx.Bucket([]byte("meta")).Get([]byte("format")))
		return nil
	})
	_ = backup.Close()
	if backupFormat != oldFormat {
		t.Errorf("the copy made before the upgrade has the format %q, want %q", backupFormat, oldFormat)
	}
	if format != state.Format || days != 2 || chunks != 2 {
		t.Fatalf("after the upgrade: format %q with %d day buckets and %d chunks, want %q with 2 and 2 (the ids span two UTC days)", format, days, chunks, state.Format)
	}
	s, err = state.Open(path)
	if err != nil {
		t.Fatalf("reopening the upgraded state: %v", err)
	}
	defer s.Close()
	st, err = s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(st, tail)
}

// TestDamagedChunkIsCorrupt: a chunk whose value does not decode (truncated, out of order) makes
// Load fail with ErrCorrupt naming the file, never load fewer ids.
func TestDamagedChunkIsCorrupt(t *testing.T) {
	for name, damage := range map[string]func([]byte) []byte{
		"truncated":    func(v []byte) []byte { return v[:len(v)-1] },
		"trailing":     func(v []byte) []byte { return append(v, 0) },
		"out of order": func(v []byte) []byte { return append([]byte{v[0], 0, 0}, v[3:]...) },
		"no count":     func([]byte) []byte { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "followpub.state")
			s, err := state.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			must(t, s.Replace(ctx, 0, 0))
			must(t, s.Commit(ctx, poller.Change{Add: []poller.Published{{ID: 5, FollowTime: 1000}, {ID: 9, FollowTime: 2000}, {ID: 3, FollowTime: 3000}}}))
			must(t, s.Close())
			db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
			must(t, err)
			must(t, db.Update(func(tx *bolt.Tx) error {
				seen := tx.Bucket([]byte("seen"))
				return seen.ForEachBucket(func(day []byte) error {
					b := seen.Bucket(day)
					k, v := b.Cursor().First()
					return b.Put(append([]byte(nil), k...), damage(append([]byte(nil), v...)))
				})
			}))
			must(t, db.Close())
			s, err = state.Open(path)
			must(t, err)
			defer s.Close()
			_, err = s.Load(ctx)
			if !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Load of a damaged chunk: %v, want ErrCorrupt naming %s", err, path)
			}
		})
	}
}

// Values of the wrong length in a store that bbolt reads fine are ErrCorrupt at Open, not a panic.
func TestShortValuesAreCorruptNotPanics(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(tx *bolt.Tx) error
	}{
		{"a full read of 4 bytes", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Put([]byte("full_read_at"), []byte{1, 2, 3, 4})
		}},
		{"a floor of 4 bytes", func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("floor"), []byte{1, 2, 3, 4}) }},
		{"a day bucket named by 2 bytes holding a bad chunk", func(tx *bolt.Tx) error {
			b, err := tx.Bucket([]byte("seen")).CreateBucket([]byte("xx"))
			if err != nil {
				return err
			}
			return b.Put(make([]byte, 16), []byte{0})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "followpub.state")
			s, err := state.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Replace(ctx, 0, 0); err != nil {
				t.Fatal(err)
			}
			full := poller.FullRead{At: 1, From: 1}
			if err := s.Commit(ctx, poller.Change{FullRead: &full}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(tt.damage); err != nil {
				t.Fatal(err)
			}
			db.Close()
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("Open or Load panicked: %v", r)
				}
			}()
			s, err = state.Open(path)
			if err == nil {
				defer s.Close()
				_, err = s.Load(ctx)
			}
			if !errors.Is(err, state.ErrCorrupt) {
				t.Fatalf("Open and Load: %v, want ErrCorrupt", err)
			}
		})
	}
}

// BenchmarkCommit measures a backfill's commit: 3000 new ids (poller.DefaultBatchSize) of 10,000 a
// day and the tail of 12 partitions, fsync'd, with the floor raised a day at a time so that the
// window holds about three days. cpu-ns/commit is the process's CPU time, GC included.
func BenchmarkCommit(b *testing.B) {
	s, err := state.Open(filepath.Join(b.TempDir(), "followpub.state"))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	const hour, perDay, batch = 60 * 60 * 1000, 10_000, 3000
	const day = 24 * hour
	start := int64(1_700_000_000_000)
	if err := s.Replace(ctx, start, start); err != nil {
		b.Fatal(err)
	}
	var id int64
	tail := poller.Tail{Topic: "t", Next: map[int]int64{}}
	add := make([]poller.Published, batch)
	b.ReportAllocs()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	for b.Loop() {
		for i := range add {
			id++
			add[i] = poller.Published{ID: 1e12 + id*7, FollowTime: start + id*day/perDay}
		}
		for p := range 12 {
			tail.Next[p] = id
		}
		// The floor moves a day at a time, at 16:00 UTC (midnight in Asia/Shanghai), two days behind.
		w := add[batch-1].FollowTime
		floor := (w-2*day-16*hour)/day*day + 16*hour
		if err := s.Commit(ctx, poller.Change{Add: add, Floor: max(start, floor), Watermark: w, Tail: &tail}); err != nil {
			b.Fatal(err)
		}
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/commit")
}
