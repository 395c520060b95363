package state

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// A chunk holds remembered ids of one UTC day of follow_time, sorted by (follow_time, id). Its key
// is the first id's (follow_time, id), 16 bytes in putInt's order; its value the number of ids
// (uvarint), then for each id after the first its follow_time's distance from the previous one
// (uvarint) and its difference from the previous id (varint). A commit of 3000 ids of a day is one
// key of a few kilobytes rather than 3000 keys.

// maxChunk bounds the ids of one chunk, so that a value stays a few tens of kilobytes.
const maxChunk = 8192

type entry struct{ ft, id int64 }

func compareEntries(a, b entry) int {
	if a.ft != b.ft {
		return cmp.Compare(a.ft, b.ft)
	}
	return cmp.Compare(a.id, b.id)
}

// putIDs writes ids as chunks into their day buckets of seen. ids may come in any order and it is
// sorted in place; an id remembered already may be written again (Load keeps one).
func putIDs(seen *bolt.Bucket, ids []entry) error {
	slices.SortFunc(ids, compareEntries)
	ids = slices.Compact(ids)
	for len(ids) > 0 {
		day := dayOf(ids[0].ft)
		n := 1
		for n < len(ids) && n < maxChunk && dayOf(ids[n].ft) == day {
			n++
		}
		var name [8]byte
		putInt(name[:], day)
		b, err := seen.CreateBucketIfNotExists(name[:])
		if err != nil {
			return err
		}
		b.FillPercent = seenFillPercent
		if err := putChunk(b, ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// putChunk writes sorted ids of one day as a chunk of b, merged with the chunk already at its key
// (a chunk starting with the same id, which a write must not overwrite).
func putChunk(b *bolt.Bucket, ids []entry) error {
	key := make([]byte, 16) // bbolt keeps key and value until the transaction commits
	putInt(key[:8], ids[0].ft)
	putInt(key[8:], ids[0].id)
	if v := b.Get(key); v != nil {
		old, err := decodeChunk(key, v, nil)
		if err != nil {
			return fmt.Errorf("the chunk of remembered ids at %x: %v: %w", key, err, ErrCorrupt)
		}
		ids = slices.CompactFunc(slices.SortedFunc(slices.Values(append(old, ids...)), compareEntries),
			func(a, b entry) bool { return a == b })
	}
	v := binary.AppendUvarint(make([]byte, 0, 4+len(ids)*6), uint64(len(ids)))
	for i := 1; i < len(ids); i++ {
		v = binary.AppendUvarint(v, uint64(ids[i].ft-ids[i-1].ft))
		v = binary.AppendVarint(v, ids[i].id-ids[i-1].id)
	}
	return b.Put(key, v)
}

// decodeChunk reads the chunk at key k with value v, appending its ids to out; it fails on a
// chunk that is not one: a short key, a truncated or overlong value, ids out of order.
func decodeChunk(k, v []byte, out []entry) ([]entry, error) {
	if len(k) != 16 {
		return nil, fmt.Errorf("a key of %d bytes, want 16", len(k))
	}
	n, w := binary.Uvarint(v)
	if w <= 0 || n == 0 || n > uint64(len(v)) {
		return nil, errors.New("no valid count of ids")
	}
	v = v[w:]
	out = slices.Grow(out, int(n)) // n ≤ len(v): a damaged count cannot inflate it
	e := entry{ft: getInt(k[:8]), id: getInt(k[8:])}
	out = append(out, e)
	for i := uint64(1); i < n; i++ {
		dft, w1 := binary.Uvarint(v)
		if w1 <= 0 {
			return nil, fmt.Errorf("truncated after %d of %d ids", i, n)
		}
		did, w2 := binary.Varint(v[w1:])
		if w2 <= 0 {
			return nil, fmt.Errorf("truncated after %d of %d ids", i, n)
		}
		v = v[w1+w2:]
		next := entry{ft: e.ft + int64(dft), id: e.id + did}
		if compareEntries(next, e) <= 0 {
			return nil, fmt.Errorf("id %d of %d is not after the one before it", i+1, n)
		}
		e = next
		out = append(out, e)
	}
	if len(v) != 0 {
		return nil, fmt.Errorf("%d bytes after the last of %d ids", len(v), n)
	}
	return out, nil
}
