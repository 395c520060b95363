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
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/followpub/followpub/poller"
)

// Format is the format tag this version writes and reads.
const Format = "followpub-state/1"

var (
	// ErrLocked means another process holds the store.
	ErrLocked = errors.New("state store is in use by another process")
	// ErrCorrupt means the file is not a readable store.
	ErrCorrupt = errors.New("state store is corrupt")
	// ErrFormat means the file is a store of a format this version does not know.
	ErrFormat = errors.New("state store has an unknown format")
)

var (
	bucketMeta = []byte("meta")
	bucketSeen = []byte("seen")

	keyFormat    = []byte("format")
	keyFloor     = []byte("floor")
	keyWatermark = []byte("watermark")
	keyUpdated   = []byte("updated_at")
)

// seenFillPercent is how full the seen bucket's pages are left when they split (bbolt's
// Bucket.FillPercent; its default is 0.5). Append-mostly keys leave every page but the last
// full, which halves the file and the pages a commit writes.
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
	if err := s.verify(); err != nil {
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

// verify checks the format tag and the integrity of every page.
func (s *Store) verify() (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(s.path, fmt.Errorf("%v", r))
		}
	}()
	return s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || tx.Bucket(bucketSeen) == nil {
			return corrupt(s.path, errors.New("the meta or seen bucket is missing"))
		}
		if f := string(meta.Get(keyFormat)); f != Format {
			return fmt.Errorf("opening state %s: %w %q (this followpub reads %q)", s.path, ErrFormat, f, Format)
		}
		for cerr := range tx.Check() {
			if err == nil {
				err = corrupt(s.path, cerr)
			}
		}
		return err
	})
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
		seen := tx.Bucket(bucketSeen)
		st.Seen = make(map[int64]int64, seen.Stats().KeyN)
		return seen.ForEach(func(k, _ []byte) error {
			if len(k) != 16 {
				return fmt.Errorf("a remembered id has a key of %d bytes, want 16: %w", len(k), ErrCorrupt)
			}
			st.Seen[getInt(k[8:])] = getInt(k[:8])
			return nil
		})
	})
	if err != nil {
		return poller.State{}, fmt.Errorf("loading state %s: %w", s.path, err)
	}
	return st, nil
}

// Commit implements poller.Store.
func (s *Store) Commit(_ context.Context, c poller.Change) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, seen := tx.Bucket(bucketMeta), tx.Bucket(bucketSeen)
		// Ids come in key order (the poller publishes in ascending (follow_time, id)): fill the
		// pages rather than split them half empty, bbolt's default. Out-of-order ids still work.
		seen.FillPercent = seenFillPercent
		if meta.Get(keyFloor) == nil {
			return errors.New("there is no state to commit to (set a watermark first)")
		}
		var key [16]byte
		for _, a := range c.Add {
			putInt(key[:8], a.FollowTime)
			putInt(key[8:], a.ID)
			if err := seen.Put(key[:], nil); err != nil {
				return err
			}
		}
		floor := getInt(meta.Get(keyFloor))
		if c.Floor > floor {
			if err := forgetBelow(seen, c.Floor); err != nil {
				return err
			}
			floor = c.Floor
		}
		watermark := max(getInt(meta.Get(keyWatermark)), c.Watermark)
		return putMeta(meta, floor, watermark)
	})
	if err != nil {
		return fmt.Errorf("committing to state %s: %w", s.path, err)
	}
	return nil
}

// forgetBelow deletes every remembered id with a follow_time below floor. It collects the keys
// first: deleting under a cursor and seeking the first key again after each deletion walks the
// emptied leading pages every time, which is quadratic in the ids forgotten.
func forgetBelow(seen *bolt.Bucket, floor int64) error {
	var limit [8]byte
	putInt(limit[:], floor)
	var keys [][16]byte
	c := seen.Cursor()
	for k, _ := c.First(); k != nil && string(k[:8]) < string(limit[:]); k, _ = c.Next() {
		keys = append(keys, [16]byte(k))
	}
	for i := range keys {
		if err := seen.Delete(keys[i][:]); err != nil {
			return err
		}
	}
	return nil
}

// Replace implements poller.Store.
func (s *Store) Replace(_ context.Context, floor, watermark int64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := recreate(tx, bucketSeen); err != nil {
			return err
		}
		return putMeta(tx.Bucket(bucketMeta), floor, watermark)
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
		meta := tx.Bucket(bucketMeta)
		for _, k := range [][]byte{keyFloor, keyWatermark, keyUpdated} {
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
