package kafkastate

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"time"
)

// Format is the format tag of the meta record this version writes and reads.
const Format = "followpub-kafkastate/1"

// ChunkIDs is the most remembered ids one chunk record holds. An entry takes at most 20 bytes, so
// a chunk stays far below Kafka's default max.message.bytes (1 MiB) whatever the ids are; the
// ids of a backfill's day take ceil(n/ChunkIDs) records.
const ChunkIDs = 8192

const msPerDay = 24 * 60 * 60 * 1000

// chunkMagic starts every chunk value.
var chunkMagic = []byte("FPC1")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// entry is one remembered id.
type entry struct{ ft, id int64 }

// chunkRef names a chunk record from the meta record: the key (day, index, slot) and the commit
// that wrote it, so that a chunk left by a commit that never wrote its meta is not taken.
type chunkRef struct {
	Day  int64  `json:"day"`
	Idx  int    `json:"idx"`
	Slot int    `json:"slot"`
	Seq  uint64 `json:"seq"`
	N    int    `json:"n"`
}

// meta is the record written last by every commit: everything but the remembered ids, and the
// chunks that hold those.
type meta struct {
	Format    string        `json:"format"`
	Tenant    string        `json:"tenant"`
	Identity  string        `json:"identity,omitempty"`
	Seq       uint64        `json:"seq"`
	Floor     int64         `json:"floor"`
	Watermark int64         `json:"watermark"`
	UpdatedAt int64         `json:"updated_at_ns"`
	TailTopic string        `json:"tail_topic,omitempty"`
	Tail      map[int]int64 `json:"tail,omitempty"`
	FullAt    int64         `json:"full_read_at,omitempty"`
	FullFrom  int64         `json:"full_read_from,omitempty"`
	Chunks    []chunkRef    `json:"chunks"`
}

func metaKey(tenant string) string { return tenant + "/meta" }

func chunkKey(tenant string, day int64, idx, slot int) string {
	return tenant + "/ids/" + time.UnixMilli(day*msPerDay).UTC().Format(time.DateOnly) + "/" + strconv.Itoa(idx) + "/" + strconv.Itoa(slot)
}

func (r chunkRef) key(tenant string) string { return chunkKey(tenant, r.Day, r.Idx, r.Slot) }

// encodeChunk writes ids (all of day) sorted by (follow_time, id): follow_time as the distance
// from the previous one (from the day's start for the first), id as the signed difference from
// the previous id, both varints, then a CRC-32C of everything before it.
func encodeChunk(ref chunkRef, ids []entry) []byte {
	sorted := slices.Clone(ids)
	slices.SortFunc(sorted, func(a, b entry) int {
		if a.ft != b.ft {
			return cmp.Compare(a.ft, b.ft)
		}
		return cmp.Compare(a.id, b.id)
	})
	b := make([]byte, 0, 32+len(sorted)*8)
	b = append(b, chunkMagic...)
	b = binary.AppendUvarint(b, ref.Seq)
	b = binary.AppendVarint(b, ref.Day)
	b = binary.AppendUvarint(b, uint64(ref.Idx))
	b = binary.AppendUvarint(b, uint64(len(sorted)))
	prevFT, prevID := ref.Day*msPerDay, int64(0)
	for _, e := range sorted {
		b = binary.AppendUvarint(b, uint64(e.ft-prevFT))
		b = binary.AppendVarint(b, e.id-prevID)
		prevFT, prevID = e.ft, e.id
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeChunk reads a chunk value and checks it against ref.
func decodeChunk(ref chunkRef, v []byte) ([]entry, error) {
	if len(v) < len(chunkMagic)+4 || string(v[:len(chunkMagic)]) != string(chunkMagic) {
		return nil, errors.New("not a chunk of remembered ids")
	}
	body, sum := v[:len(v)-4], binary.BigEndian.Uint32(v[len(v)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errors.New("checksum mismatch")
	}
	r := reader{b: body[len(chunkMagic):]}
	seq, day, idx, n := r.uvarint(), r.varint(), r.uvarint(), r.uvarint()
	if r.err != nil {
		return nil, r.err
	}
	if seq != ref.Seq || day != ref.Day || idx != uint64(ref.Idx) || n != uint64(ref.N) {
		return nil, fmt.Errorf("the chunk is commit %d, day %d, index %d with %d ids; the meta record names commit %d, day %d, index %d with %d ids",
			seq, day, idx, n, ref.Seq, ref.Day, ref.Idx, ref.N)
	}
	out := make([]entry, 0, n)
	ft, id := day*msPerDay, int64(0)
	for range n {
		ft += int64(r.uvarint())
		id += r.varint()
		out = append(out, entry{ft, id})
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d bytes after the last id", len(r.b))
	}
	return out, nil
}

func encodeMeta(m meta) ([]byte, error) { return json.Marshal(m) }

func decodeMeta(tenant string, v []byte) (meta, error) {
	var m meta
	if err := json.Unmarshal(v, &m); err != nil {
		return m, fmt.Errorf("not a meta record: %w", err)
	}
	switch {
	case m.Format != Format:
		return m, fmt.Errorf("format %q (this followpub reads %q)", m.Format, Format)
	case m.Tenant != tenant:
		return m, fmt.Errorf("the record is of tenant %q", m.Tenant)
	}
	return m, nil
}

// reader reads varints, remembering the first failure.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("truncated")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errors.New("truncated")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// dayOf is the UTC day number of ms (epoch milliseconds), rounding down before 1970 too.
func dayOf(ms int64) int64 {
	d := ms / msPerDay
	if ms%msPerDay < 0 {
		d--
	}
	return d
}
