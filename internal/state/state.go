package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/followpub/followpub/poller"
)

// Format is the format tag this version writes and reads.
const Format = "followpub-state/3"

// The older formats, which open and are upgraded in place (upgrade): format 1 has neither the
// topic's tail nor day buckets (one key per id in seen); format 2 has both, with one key per id in
// each day bucket.
const (
	formatV1 = "followpub-state/1"
	formatV2 = "followpub-state/2"
)

var (
	// ErrLocked means another process holds the store.
	ErrLocked = errors.New("state store is in use by another process")
	// ErrCorrupt means the file is not a readable store.
	ErrCorrupt = errors.New("state store is corrupt")
	// ErrFormat means the file is a store of a format this version does not know.
	ErrFormat = errors.New("state store has an unknown format")
)

// The layout of format 3: bucket meta holds the floor, the watermark, the time of the last commit,
// the topic of the tail and the last full read (two keys, absent when none is recorded); bucket
// tail maps each partition (4 bytes, big-endian) to the offset
// accounted for up to (8 bytes); bucket seen holds one bucket per UTC day of follow_time (the day
// number, 8 bytes in putInt's order), so that forgetting a day below the floor is one bucket
// deletion. A day bucket holds chunks of that day's ids (chunk.go): a commit writes one key per
// day it touches, not one per id.
var (
	bucketMeta = []byte("meta")
	bucketSeen = []byte("seen")
	bucketTail = []byte("tail")

	keyFormat    = []byte("format")
	keyFloor     = []byte("floor")
	keyWatermark = []byte("watermark")
	keyUpdated   = []byte("updated_at")
	keyTailTopic = []byte("tail_topic")
	keyFullAt    = []byte("full_read_at")
	keyFullFrom  = []byte("full_read_from")
)

const msPerDay = 24 * 60 * 60 * 1000

// seenFillPercent is how full the day buckets' pages are left when they split (bbolt's
// Bucket.FillPercent; its default is 0.5). Chunks are appended in key order, mostly: every page
// but the last is left full.
const seenFillPercent = 0.95

// Store is a poller.Store in a bbolt file.
type Store struct {
	path string
	db   *bolt.DB
	lock *os.File
}

var _ poller.Store = (*Store)(nil)

// Open opens the store at path, creating it when the file does not exist. It fails with ErrLocked
// when another process holds it, ErrCorrupt when the file is not a readable store and ErrFormat when
// it is a store of another format.
func Open(path string) (*Store, error) {
	lock, err := acquireLock(path)
	if err != nil {
		return nil, err
	}
	s, err := open(path)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

func open(path string) (*Store, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := create(path); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("opening state %s: %w", path, err)
	case fi.IsDir():
		return nil, fmt.Errorf("opening state %s: it is a directory; FOLLOWPUB_STATE_PATH names a file", path)
	case fi.Size() == 0:
		return nil, fmt.Errorf("opening state %s: the file is empty: %w (move it away to start over from START_FROM, or restore a backup)", path, ErrCorrupt)
	}
	if fi != nil {
		if err := checkLength(path, fi.Size()); err != nil {
			return nil, err
		}
	}
	db, err := openBolt(path)
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, db: db}
	format, err := s.verify()
	if err == nil && format != Format {
		if err = s.backUp(format); err == nil {
			err = s.upgrade(format)
		}
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// openBolt opens an existing bbolt file, turning its failures (and panics on garbage) into ErrCorrupt.
func openBolt(path string) (db *bolt.DB, err error) {
	// bbolt reads the file through a memory map: a page past the end of a truncated file is a
	// fault, which this turns into a panic for the recover below.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, corrupt(path, fmt.Errorf("%v", r))
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	var pathErr *fs.PathError
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("opening state %s: %w (its file lock is held)", path, ErrLocked)
	case errors.As(err, &pathErr):
		return nil, fmt.Errorf("opening state %s: %w", path, err) // permissions, I/O: not the content
	default:
		return nil, corrupt(path, err) // bad magic, checksum, version, size: the content
	}
}

func corrupt(path string, cause error) error {
	return fmt.Errorf("opening state %s: %w: %v (move it away to start over from START_FROM, or restore a backup)", path, ErrCorrupt, cause)
}

// verify checks the format tag and the integrity of every page, and returns the format.
func (s *Store) verify() (format string, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(s.path, fmt.Errorf("%v", r))
		}
	}()
	err = s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || tx.Bucket(bucketSeen) == nil {
			return corrupt(s.path, errors.New("the meta or seen bucket is missing"))
		}
		format = string(meta.Get(keyFormat))
		switch {
		case format == formatV1:
		case format != Format && format != formatV2:
			return fmt.Errorf("opening state %s: %w %q (this followpub reads %q, %q and %q)", s.path, ErrFormat, format, Format, formatV2, formatV1)
		case tx.Bucket(bucketTail) == nil:
			return corrupt(s.path, errors.New("the tail bucket is missing"))
		}
		var cerr error
		for e := range tx.Check() {
			if cerr == nil {
				cerr = corrupt(s.path, e)
			}
		}
		if cerr == nil {
			cerr = checkShape(tx, format)
		}
		if cerr != nil && !errors.Is(cerr, ErrCorrupt) {
			cerr = corrupt(s.path, cerr)
		}
		return cerr
	})
	return format, err
}

// checkShape checks the sizes that pages' checksums cannot vouch for: the integers of meta are 8
// bytes, and in format 3 each day bucket's name is 8 bytes, so that reading them cannot panic.
func checkShape(tx *bolt.Tx, format string) error {
	meta := tx.Bucket(bucketMeta)
	for _, k := range [][]byte{keyFloor, keyWatermark, keyUpdated, keyFullAt, keyFullFrom} {
		if v := meta.Get(k); v != nil && len(v) != 8 {
			return corruptf("meta %s has %d bytes, want 8", k, len(v))
		}
	}
	if format != Format {
		return nil // upgrade checks the ids of older formats as it rewrites them
	}
	seen := tx.Bucket(bucketSeen)
	return seen.ForEach(func(k, v []byte) error {
		if v != nil || len(k) != 8 {
			return corruptf("seen holds a key of %d bytes that is not a day bucket", len(k))
		}
		return nil
	})
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrCorrupt)...)
}

// BackupPath is where Open copies a store of an older format before it upgrades it: the file an
// older followpub can still open, for a rollback.
func BackupPath(path, format string) string {
	return path + ".format" + strings.TrimPrefix(format, "followpub-state/") + ".bak"
}

// backUp copies the store, of the older format, to BackupPath, fsync'd (bbolt's own consistent copy).
func (s *Store) backUp(format string) error {
	backup := BackupPath(s.path, format)
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := tx.CopyFile(backup, 0o600); err != nil {
			return err
		}
		f, err := os.Open(backup)
		if err != nil {
			return err
		}
		serr := f.Sync()
		if cerr := f.Close(); serr == nil {
			serr = cerr
		}
		return serr
	})
	if err != nil {
		return fmt.Errorf("opening state %s: copying it to %s before upgrading it from %q to %q: %w (check the free space and permissions of its directory)",
			s.path, backup, format, Format, err)
	}
	return nil
}

// upgrade rewrites a format 1 or 2 store as format 3 in one transaction: the ids, one key each
// (flat in seen, or in day buckets), become chunks in day buckets, and format 1 gets an empty tail
// (nothing was recorded of the topic). A crash midway leaves the old store, which the next Open
// upgrades again.
func (s *Store) upgrade(from string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		var ids []entry
		add := func(k, _ []byte) error {
			if len(k) != 16 {
				return fmt.Errorf("a remembered id has a key of %d bytes, want 16: %w", len(k), ErrCorrupt)
			}
			ids = append(ids, entry{ft: getInt(k[:8]), id: getInt(k[8:])})
			return nil
		}
		seen := tx.Bucket(bucketSeen)
		var err error
		if from == formatV1 {
			err = seen.ForEach(add)
		} else {
			err = seen.ForEachBucket(func(day []byte) error { return seen.Bucket(day).ForEach(add) })
		}
		if err != nil {
			return err
		}
		if err := recreate(tx, bucketSeen); err != nil {
			return err
		}
		if err := putIDs(tx.Bucket(bucketSeen), ids); err != nil {
			return err
		}
		if from == formatV1 {
			if _, err := tx.CreateBucket(bucketTail); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte(Format))
	})
	if err != nil {
		return fmt.Errorf("upgrading state %s from %q to %q: %w", s.path, from, Format, err)
	}
	return nil
}

// dayOf is the UTC day number of ms (epoch milliseconds), rounding down before 1970 too.
func dayOf(ms int64) int64 {
	d := ms / msPerDay
	if ms%msPerDay < 0 {
		d--
	}
	return d
}

// checkLength refuses a file shorter than its newest meta page says it is: bbolt would read past
// its end. A file with no readable meta page is left to bbolt, which reports it.
func checkLength(path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening state %s: %w", path, err)
	}
	defer func() { _ = f.Close() }() // read only
	// A bbolt meta page: a 16-byte page header, then magic, version, page size (uint32 each),
	// flags, the root bucket (16 bytes), the freelist page id, the high-water page id and the
	// transaction id (uint64 each), little-endian.
	const magic = 0xED0CDAED
	var best struct{ txid, end uint64 }
	for _, off := range []int64{0, -1} {
		buf := make([]byte, 80)
		if off < 0 {
			off = int64(binary.LittleEndian.Uint32(pageOf(f, 0)[24:28]))
			if off == 0 {
				continue
			}
		}
		if _, err := f.ReadAt(buf, off); err != nil || binary.LittleEndian.Uint32(buf[16:20]) != magic {
			continue
		}
		pageSize := uint64(binary.LittleEndian.Uint32(buf[24:28]))
		hwm := binary.LittleEndian.Uint64(buf[56:64])
		txid := binary.LittleEndian.Uint64(buf[64:72])
		if txid >= best.txid {
			best.txid, best.end = txid, hwm*pageSize
		}
	}
	if best.end > uint64(size) {
		return corrupt(path, fmt.Errorf("the file is %d bytes but its data reach to byte %d: it was truncated", size, best.end))
	}
	return nil
}

// pageOf returns the first 80 bytes at off (zeros where the file has none).
func pageOf(f *os.File, off int64) []byte {
	buf := make([]byte, 80)
	_, _ = f.ReadAt(buf, off)
	return buf
}

// create builds an empty store under a temporary name and renames it into place, so the state
// path holds either nothing or a complete store.
func create(path string) error {
	tmp := path + ".new"
	_ = os.Remove(tmp)
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("creating state %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketSeen); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketTail); err != nil {
			return err
		}
		return meta.Put(keyFormat, []byte(Format))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("creating state %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }() // a directory, opened to sync it
	return d.Sync()
}

// Path returns the file the store lives in.
func (s *Store) Path() string { return s.path }

// Close closes the database and releases the lock.
func (s *Store) Close() error {
	err := s.db.Close()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

// Load implements poller.Store.
func (s *Store) Load(context.Context) (poller.State, error) {
	st := poller.State{Seen: map[int64]int64{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		floor, watermark := meta.Get(keyFloor), meta.Get(keyWatermark)
		if floor == nil || watermark == nil {
			return nil // no state: a new store or a reset one
		}
		st.Exists = true
		st.Floor, st.Watermark = getInt(floor), getInt(watermark)
		if u := meta.Get(keyUpdated); u != nil {
			st.UpdatedAt = time.Unix(0, getInt(u))
		}
		tail, err := loadTail(tx)
		if err != nil {
			return err
		}
		st.Tail = tail
		if at, from := meta.Get(keyFullAt), meta.Get(keyFullFrom); at != nil && from != nil {
			st.FullRead = poller.FullRead{At: getInt(at), From: getInt(from)}
		}
		seen := tx.Bucket(bucketSeen)
		n := 0
		err = seen.ForEachBucket(func(day []byte) error {
			return seen.Bucket(day).ForEach(func(_, v []byte) error {
				c, _ := binary.Uvarint(v)        // a capacity hint; decodeChunk checks it
				n += int(min(c, uint64(len(v)))) // an id takes at least a byte: damage cannot inflate it
				return nil
			})
		})
		if err != nil {
			return err
		}
		st.Seen = make(map[int64]int64, n)
		var ids []entry
		return seen.ForEachBucket(func(day []byte) error {
			return seen.Bucket(day).ForEach(func(k, v []byte) error {
				var err error
				if ids, err = decodeChunk(k, v, ids[:0]); err != nil {
					return fmt.Errorf("the chunk of remembered ids at %x in day bucket %d: %v: %w", k, getInt(day), err, ErrCorrupt)
				}
				for _, e := range ids {
					st.Seen[e.id] = e.ft
				}
				return nil
			})
		})
	})
	if err != nil {
		return poller.State{}, fmt.Errorf("loading state %s: %w", s.path, err)
	}
	return st, nil
}

func loadTail(tx *bolt.Tx) (poller.Tail, error) {
	var t poller.Tail
	t.Topic = string(tx.Bucket(bucketMeta).Get(keyTailTopic))
	err := tx.Bucket(bucketTail).ForEach(func(k, v []byte) error {
		if len(k) != 4 || len(v) != 8 {
			return fmt.Errorf("a tail entry has %d and %d bytes, want 4 and 8: %w", len(k), len(v), ErrCorrupt)
		}
		if t.Next == nil {
			t.Next = map[int]int64{}
		}
		t.Next[int(int32(binary.BigEndian.Uint32(k)))] = getInt(v)
		return nil
	})
	return t, err
}

func putTail(tx *bolt.Tx, t poller.Tail) error {
	if err := recreate(tx, bucketTail); err != nil {
		return err
	}
	b := tx.Bucket(bucketTail)
	for p, o := range t.Next {
		k, v := make([]byte, 4), make([]byte, 8) // bbolt keeps both until the transaction commits
		binary.BigEndian.PutUint32(k, uint32(int32(p)))
		putInt(v, o)
		if err := b.Put(k, v); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(keyTailTopic, []byte(t.Topic))
}

// Commit implements poller.Store.
func (s *Store) Commit(_ context.Context, c poller.Change) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, seen := tx.Bucket(bucketMeta), tx.Bucket(bucketSeen)
		if meta.Get(keyFloor) == nil {
			return errors.New("there is no state to commit to (set a watermark first)")
		}
		ids := make([]entry, len(c.Add))
		for i, a := range c.Add {
			ids[i] = entry{ft: a.FollowTime, id: a.ID}
		}
		if err := putIDs(seen, ids); err != nil {
			return err
		}
		floor := getInt(meta.Get(keyFloor))
		if c.Floor > floor {
			if err := forgetBelow(seen, c.Floor); err != nil {
				return err
			}
			floor = c.Floor
		}
		if c.Tail != nil {
			if err := putTail(tx, *c.Tail); err != nil {
				return err
			}
		}
		if c.FullRead != nil {
			if err := putFullRead(meta, *c.FullRead); err != nil {
				return err
			}
		}
		watermark := max(getInt(meta.Get(keyWatermark)), c.Watermark)
		return putMeta(meta, floor, watermark)
	})
	if err != nil {
		return fmt.Errorf("committing to state %s: %w", s.path, err)
	}
	return nil
}

// forgetBelow deletes every remembered id with a follow_time below floor: each day bucket that
// ends at or below it in one deletion, and in the day it falls in, the chunks that start below it,
// whose ids at or above it are written again as one chunk. It collects first and changes after,
// since bbolt's cursors do not survive changes to their bucket.
func forgetBelow(seen *bolt.Bucket, floor int64) error {
	var whole [][8]byte
	var partial []byte
	c := seen.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		day := getInt(k)
		if day*msPerDay >= floor {
			break
		}
		if (day+1)*msPerDay <= floor {
			whole = append(whole, [8]byte(k))
		} else {
			partial = append([]byte(nil), k...)
		}
	}
	for i := range whole {
		if err := seen.DeleteBucket(whole[i][:]); err != nil {
			return err
		}
	}
	if partial == nil {
		return nil
	}
	b := seen.Bucket(partial)
	var limit [8]byte
	putInt(limit[:], floor)
	var below [][16]byte
	var ids, keep []entry
	bc := b.Cursor()
	for k, v := bc.First(); k != nil && string(k[:8]) < string(limit[:]); k, v = bc.Next() {
		var err error
		ids, err = decodeChunk(k, v, ids[:0])
		if err != nil {
			return fmt.Errorf("the chunk of remembered ids at %x in day bucket %d: %v: %w", k, getInt(partial), err, ErrCorrupt)
		}
		below = append(below, [16]byte(k))
		for _, e := range ids {
			if e.ft >= floor {
				keep = append(keep, e)
			}
		}
	}
	for i := range below {
		if err := b.Delete(below[i][:]); err != nil {
			return err
		}
	}
	return putIDs(seen, keep)
}

// Replace implements poller.Store.
func (s *Store) Replace(_ context.Context, floor, watermark int64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := recreate(tx, bucketSeen); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		for _, k := range [][]byte{keyFullAt, keyFullFrom} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return putMeta(meta, floor, watermark)
	})
	if err != nil {
		return fmt.Errorf("setting state %s: %w", s.path, err)
	}
	return nil
}

// Reset implements poller.Store.
func (s *Store) Reset(context.Context) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := recreate(tx, bucketSeen); err != nil {
			return err
		}
		if err := recreate(tx, bucketTail); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		for _, k := range [][]byte{keyFloor, keyWatermark, keyUpdated, keyTailTopic, keyFullAt, keyFullFrom} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("resetting state %s: %w", s.path, err)
	}
	return nil
}

func putFullRead(meta *bolt.Bucket, f poller.FullRead) error {
	var at, from [8]byte
	putInt(at[:], f.At)
	putInt(from[:], f.From)
	if err := meta.Put(keyFullAt, at[:]); err != nil {
		return err
	}
	return meta.Put(keyFullFrom, from[:])
}

func recreate(tx *bolt.Tx, name []byte) error {
	if err := tx.DeleteBucket(name); err != nil {
		return err
	}
	_, err := tx.CreateBucket(name)
	return err
}

func putMeta(meta *bolt.Bucket, floor, watermark int64) error {
	for _, kv := range []struct {
		k []byte
		v int64
	}{{keyFloor, floor}, {keyWatermark, watermark}, {keyUpdated, time.Now().UnixNano()}} {
		buf := make([]byte, 8) // bbolt keeps the value until the transaction commits
		putInt(buf, kv.v)
		if err := meta.Put(kv.k, buf); err != nil {
			return err
		}
	}
	return nil
}

// putInt writes v big-endian with the sign bit flipped, so that byte order is numeric order.
func putInt(b []byte, v int64) { binary.BigEndian.PutUint64(b, uint64(v)^(1<<63)) }

func getInt(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }
