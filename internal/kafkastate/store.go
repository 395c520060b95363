package kafkastate

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/followpub/followpub/internal/retry"
	"github.com/followpub/followpub/poller"
)

// Defaults of Config.
const (
	DefaultTopic      = "followpub.state"
	DefaultTenant     = "default"
	DefaultPartitions = 12
	DefaultTimeout    = 30 * time.Second
)

var (
	// ErrCorrupt means a record of the tenant's state does not decode, or the records do not fit
	// together; the store never reads that as "no state".
	ErrCorrupt = errors.New("the state in Kafka does not decode")
	// ErrNotCompacted means the state topic exists with another cleanup.policy than compact.
	ErrNotCompacted = errors.New("the state topic is not compacted")
	// ErrForeign means the tenant's state was written by a deployment with another identity (other
	// API credentials or another output topic).
	ErrForeign = errors.New("the state belongs to another deployment")
)

// Config configures a Store. The zero value of each field means its default.
type Config struct {
	// Brokers are the bootstrap servers. Required.
	Brokers []string
	// Topic is the compacted topic holding the state. Default: DefaultTopic.
	Topic string
	// Tenant is whose state the store holds; every key starts with it, and it picks the
	// partition (PartitionOf). Default: DefaultTenant.
	Tenant string
	// Identity names the deployment (a digest of its API credentials and output topic, never a
	// secret): it is recorded with the state, and a state recorded with another identity is
	// refused with ErrForeign. Empty: neither recorded nor checked.
	Identity string
	// Transport connects to the brokers (TLS, SASL); when it restricts MetadataTopics, Topic must
	// be among them. Default: a kafka-go Transport without TLS or SASL.
	Transport *kafka.Transport
	// Partitions and Replication are those of a topic the store creates. Defaults:
	// DefaultPartitions and -1 (the broker's default replication).
	Partitions  int
	Replication int
	// Timeout bounds one load and one write. Default: DefaultTimeout.
	Timeout time.Duration
	// Fence, when set, is called before every write: the write is made only when it returns no
	// error, and is given until the time it returns to complete (see internal/ownership).
	// Default: none.
	Fence func(ctx context.Context) (time.Time, error)
	// Logger receives the store's logs. Default: none.
	Logger *slog.Logger
	// Reader, when set, shares one read of each partition among the stores of the tenants loaded
	// in one generation (see PartitionReader). Default: each Load reads its partition from the start.
	Reader *PartitionReader
}

func (c *Config) setDefaults() {
	c.Topic = cmp.Or(c.Topic, DefaultTopic)
	c.Tenant = cmp.Or(c.Tenant, DefaultTenant)
	c.Partitions = cmp.Or(c.Partitions, DefaultPartitions)
	c.Replication = cmp.Or(c.Replication, -1)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Transport == nil {
		c.Transport = &kafka.Transport{}
	}
}

func (c *Config) validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("the state store needs at least one broker")
	case strings.Contains(c.Tenant, "/"):
		return fmt.Errorf("tenant %q: a tenant id has no '/'", c.Tenant)
	case c.Partitions < 1:
		return fmt.Errorf("%d partitions: want at least 1", c.Partitions)
	case c.Timeout < 0:
		return errors.New("the timeout must be positive")
	}
	return nil
}

// Store is a poller.Store whose state lives in a compacted Kafka topic. It is not safe for
// concurrent use; the poller serialises its calls.
type Store struct {
	cfg    Config
	log    *slog.Logger
	client *kafka.Client
	w      *kafka.Writer
	part   int

	loaded bool
	img    image
	// pending is the request of `watermark set|reset` found by the last Load, and end the
	// partition's end offset when it read.
	pending *Command
	end     int64
	// garbage are keys of the tenant that no committed meta record names (left by a commit that
	// failed before its meta record, or by a crash before the old chunks were deleted): the next
	// commit deletes them.
	garbage []string
}

var _ poller.Store = (*Store)(nil)

// image is the state as committed, with its chunks.
type image struct {
	exists bool
	m      meta
	chunks []*chunk // ordered by (day, idx)
}

type chunk struct {
	ref chunkRef
	ids []entry
}

// Open makes sure the topic exists and is compacted (creating it with Partitions and Replication
// when missing; an existing topic with another cleanup.policy is refused with ErrNotCompacted) and
// returns the store of cfg.Tenant. It does not read the state: Load does.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, log: cfg.Logger.With("component", "state", "state_topic", cfg.Topic, "tenant", cfg.Tenant)}
	s.client = &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: cfg.Transport, Timeout: cfg.Timeout}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	n, err := EnsureTopic(ctx, s.client, cfg.Topic, cfg.Partitions, cfg.Replication, s.log)
	if err != nil {
		return nil, err
	}
	s.part = PartitionOf(cfg.Tenant, n)
	s.w = s.newWriter()
	return s, nil
}

// Partition returns the partition of the topic that holds the tenant's state.
func (s *Store) Partition() int { return s.part }

// PartitionOf returns the partition of a topic of n partitions that holds tenant's state: the
// partition Kafka's default partitioner (murmur2, as the Java client and librdkafka) gives the key
// tenant, so that the group member assigned that partition owns the tenant.
func PartitionOf(tenant string, n int) int {
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	return (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(tenant)}, parts...)
}

func (s *Store) newWriter() *kafka.Writer {
	part := s.part
	return &kafka.Writer{
		Addr:  kafka.TCP(s.cfg.Brokers...),
		Topic: s.cfg.Topic,
		// Every record of a tenant goes to the tenant's partition, whatever its key.
		Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return part }),
		// A commit is durable once every in-sync replica has it.
		RequiredAcks: kafka.RequireAll,
		// Writing a record again is harmless (the same key and value), so kafka-go may retry.
		MaxAttempts: 3,
		// Commits write synchronously: a partial batch must not wait for kafka-go's 1 s default.
		BatchTimeout: time.Millisecond,
		BatchSize:    1000,
		Compression:  kafka.Lz4,
		WriteTimeout: s.cfg.Timeout,
		ReadTimeout:  s.cfg.Timeout,
		Transport:    s.cfg.Transport,
	}
}

// Close releases the writer, waiting for what it is writing.
func (s *Store) Close() error { return s.w.Close() }

// Load implements poller.Store: it reads the tenant's partition from its start to its end.
func (s *Store) Load(ctx context.Context) (poller.State, error) {
	img, garbage, err := s.read(ctx)
	if err != nil {
		return poller.State{}, err
	}
	s.img, s.garbage, s.loaded = img, garbage, true
	return img.state(), nil
}

// Pending returns the request of `watermark set|reset` that the last Load found waiting for the
// tenant's owner, or nil.
func (s *Store) Pending() *Command { return s.pending }

// End returns the partition's end offset when the last Load read it.
func (s *Store) End() int64 { return s.end }

func (img image) state() poller.State {
	st := poller.State{Seen: map[int64]int64{}}
	if !img.exists {
		return st
	}
	st.Exists, st.Floor, st.Watermark = true, img.m.Floor, img.m.Watermark
	st.UpdatedAt = time.Unix(0, img.m.UpdatedAt)
	if img.m.TailTopic != "" || len(img.m.Tail) > 0 {
		st.Tail = poller.Tail{Topic: img.m.TailTopic, Next: maps.Clone(img.m.Tail)}
	}
	st.FullRead = poller.FullRead{At: img.m.FullAt, From: img.m.FullFrom}
	n := 0
	for _, c := range img.chunks {
		n += len(c.ids)
	}
	st.Seen = make(map[int64]int64, n)
	for _, c := range img.chunks {
		for _, e := range c.ids {
			st.Seen[e.id] = e.ft
		}
	}
	return st
}

// record is the newest value of a key in the partition.
type record struct {
	offset int64
	value  []byte
}

// read reads the tenant's records and decodes the state they hold.
func (s *Store) read(ctx context.Context) (image, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	recs, err := s.readRecords(ctx)
	if err != nil {
		return image{}, nil, fmt.Errorf("loading the state of tenant %s from topic %s partition %d: %w", s.cfg.Tenant, s.cfg.Topic, s.part, err)
	}
	s.pending = nil
	if cr, ok := recs[commandKey(s.cfg.Tenant)]; ok {
		c, err := decodeCommand(cr.value)
		if err != nil {
			return image{}, nil, s.corrupt(cr.offset, commandKey(s.cfg.Tenant), err)
		}
		s.pending = &c
		delete(recs, commandKey(s.cfg.Tenant))
	}
	mk := metaKey(s.cfg.Tenant)
	mr, ok := recs[mk]
	if !ok {
		return image{}, slices.Sorted(maps.Keys(recs)), nil
	}
	m, err := decodeMeta(s.cfg.Tenant, mr.value)
	if err != nil {
		return image{}, nil, s.corrupt(mr.offset, mk, err)
	}
	if s.cfg.Identity != "" && m.Identity != "" && m.Identity != s.cfg.Identity {
		return image{}, nil, fmt.Errorf("%w: tenant %s in topic %s was written by a deployment with identity %s, this one is %s",
			ErrForeign, s.cfg.Tenant, s.cfg.Topic, m.Identity, s.cfg.Identity)
	}
	img := image{exists: true, m: m}
	known := map[string]bool{mk: true}
	for _, ref := range m.Chunks {
		k := ref.key(s.cfg.Tenant)
		known[k], known[chunkKey(s.cfg.Tenant, ref.Day, ref.Idx, 1-ref.Slot)] = true, true
		cr, ok := recs[k]
		if !ok {
			return image{}, nil, s.corrupt(mr.offset, mk, fmt.Errorf("it names the chunk %s, which the topic does not hold", k))
		}
		ids, err := decodeChunk(ref, cr.value)
		if err != nil {
			return image{}, nil, s.corrupt(cr.offset, k, err)
		}
		img.chunks = append(img.chunks, &chunk{ref: ref, ids: ids})
	}
	var garbage []string
	for k := range recs {
		if !known[k] {
			garbage = append(garbage, k)
		}
	}
	slices.Sort(garbage)
	return img, garbage, nil
}

// readRecords returns the newest value of each key of the tenant, from the Reader's snapshot of
// the partition and the records after it when there is one, else from a read from the start.
func (s *Store) readRecords(ctx context.Context) (map[string]record, error) {
	from, recs := int64(-1), map[string]record{}
	if s.cfg.Reader != nil {
		taken, end, ok, err := s.cfg.Reader.take(ctx, s)
		if err != nil {
			return nil, err
		}
		if ok {
			from, recs = end, taken
		}
	}
	err := whileTemporary(ctx, func() (err error) {
		s.end, err = s.readInto(ctx, from, recs)
		return err
	})
	return recs, err
}

func (s *Store) corrupt(offset int64, key string, err error) error {
	return fmt.Errorf("%w: tenant %s: the record at offset %d of topic %s partition %d (key %s): %v; followpub does not start over from START_FROM on its own: restore the topic, or run `followpub watermark set` or `reset` to start the tenant over",
		ErrCorrupt, s.cfg.Tenant, offset, s.cfg.Topic, s.part, key, err)
}

// readPartition returns the newest value of each key of the tenant in its partition from offset
// from (-1: the partition's start) up to the partition's end when the read began (tombstones
// remove their key), and that end.
func (s *Store) readPartition(ctx context.Context, from int64) (map[string]record, int64, error) {
	out := map[string]record{}
	end, err := s.readInto(ctx, from, out)
	return out, end, err
}

// readInto applies the records of the tenant in its partition from offset from to out, as
// readPartition. Applying them again from the same offset gives the same out (the last record of
// each key wins), so a retry may reuse out.
func (s *Store) readInto(ctx context.Context, from int64, out map[string]record) (int64, error) {
	prefix := []byte(s.cfg.Tenant + "/")
	return s.scan(ctx, from, func(key []byte) map[string]record {
		if bytes.HasPrefix(key, prefix) {
			return out
		}
		return nil
	})
}

// readTenants returns the newest value of each key in the tenant's partition from its start to
// its end when the read began, grouped by the tenant each key starts with, and that end.
func (s *Store) readTenants(ctx context.Context) (map[string]map[string]record, int64, error) {
	var tenants map[string]map[string]record
	var end int64
	err := whileTemporary(ctx, func() (err error) {
		tenants = map[string]map[string]record{}
		end, err = s.scan(ctx, -1, func(key []byte) map[string]record {
			t, _, ok := bytes.Cut(key, []byte("/"))
			if !ok {
				return nil
			}
			m := tenants[string(t)]
			if m == nil {
				m = map[string]record{}
				tenants[string(t)] = m
			}
			return m
		})
		return err
	})
	return tenants, end, err
}

// scan reads the tenant's partition from offset from (-1: its start) up to its end when the scan
// began, and returns that end. Each record goes to the map into returns for its key (none: the
// record is skipped): a value replaces the key's, a tombstone removes it.
func (s *Store) scan(ctx context.Context, from int64, into func(key []byte) map[string]record) (int64, error) {
	res, err := s.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		s.cfg.Topic: {kafka.FirstOffsetOf(s.part), kafka.LastOffsetOf(s.part)},
	}})
	if err != nil {
		return 0, err
	}
	var first, end int64
	for _, po := range res.Topics[s.cfg.Topic] {
		if po.Error != nil {
			return 0, po.Error
		}
		first, end = max(po.FirstOffset, from), po.LastOffset
	}
	for off, idle := first, 0; off < end && idle < 3; {
		f, err := s.client.Fetch(ctx, &kafka.FetchRequest{
			Topic: s.cfg.Topic, Partition: s.part, Offset: off, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond,
		})
		if err != nil {
			return 0, err
		}
		if f.Error != nil {
			return 0, f.Error
		}
		idle++
		for {
			r, err := f.Records.ReadRecord()
			if err != nil {
				break // the end of the response
			}
			if r.Offset < off || r.Offset >= end {
				continue
			}
			off, idle = r.Offset+1, 0
			key, err := protocol.ReadAll(r.Key)
			if err != nil {
				continue
			}
			out := into(key)
			if out == nil {
				continue
			}
			if r.Value == nil {
				delete(out, string(key))
				continue
			}
			v, err := protocol.ReadAll(r.Value)
			if err != nil {
				return 0, fmt.Errorf("reading the record at offset %d: %w", r.Offset, err)
			}
			out[string(key)] = record{offset: r.Offset, value: v}
		}
		// An offset without a record below end is a gap that compaction left: nothing to read.
	}
	return end, nil
}

// whileTemporary calls f until it returns nil or an error that is not temporary (a partition
// without a leader yet, a leader moving), with the project's backoff, until ctx ends.
func whileTemporary(ctx context.Context, f func() error) error {
	policy := retry.New(50*time.Millisecond, time.Second)
	for {
		err := f()
		var ke kafka.Error
		if err == nil || !errors.As(err, &ke) || !ke.Temporary() {
			return err
		}
		if retry.Sleep(ctx, policy.Next()) != nil {
			return err
		}
	}
}

func (s *Store) ensureLoaded(ctx context.Context) error {
	if s.loaded {
		return nil
	}
	_, err := s.Load(ctx)
	return err
}

// Commit implements poller.Store. It writes the chunks the change touched (new chunks, and the
// last chunk of a day that gained ids, rewritten into its other slot), then the meta record that
// names them, then deletes the chunks the floor left behind: a crash before the meta record
// leaves the previous meta record and the chunks it names intact.
func (s *Store) Commit(ctx context.Context, c poller.Change) error {
	if err := s.ensureLoaded(ctx); err != nil {
		return err
	}
	if !s.img.exists {
		return errors.New("there is no state to commit to (set a watermark first)")
	}
	next, dirty, removed := s.img.apply(c)
	next.m.Seq++
	next.m.UpdatedAt = time.Now().UnixNano()
	msgs := make([]kafka.Message, 0, len(dirty))
	for _, ch := range dirty {
		ch.ref.Seq, ch.ref.N = next.m.Seq, len(ch.ids)
		msgs = append(msgs, kafka.Message{Key: []byte(ch.ref.key(s.cfg.Tenant)), Value: encodeChunk(ch.ref, ch.ids)})
	}
	next.m.Chunks = next.m.Chunks[:0:0]
	for _, ch := range next.chunks {
		next.m.Chunks = append(next.m.Chunks, ch.ref)
	}
	if err := s.write(ctx, msgs); err != nil {
		return fmt.Errorf("committing the state of tenant %s to topic %s: writing %d chunks of remembered ids: %w", s.cfg.Tenant, s.cfg.Topic, len(msgs), err)
	}
	return s.commitMeta(ctx, next, removed)
}

// commitMeta writes next's meta record, then deletes the chunks in removed and the garbage.
func (s *Store) commitMeta(ctx context.Context, next image, removed []chunkRef) error {
	next.m.Format, next.m.Tenant = Format, s.cfg.Tenant
	if s.cfg.Identity != "" {
		next.m.Identity = s.cfg.Identity
	}
	v, err := encodeMeta(next.m)
	if err != nil {
		return err
	}
	if err := s.write(ctx, []kafka.Message{{Key: []byte(metaKey(s.cfg.Tenant)), Value: v}}); err != nil {
		return fmt.Errorf("committing the state of tenant %s to topic %s: %w", s.cfg.Tenant, s.cfg.Topic, err)
	}
	s.img = next
	s.deleteChunks(ctx, removed)
	return nil
}

// deleteChunks writes tombstones for both slots of each chunk in refs and for the garbage, but
// never for a chunk the state now names: a commit may have written a key that was garbage when the
// state was loaded (an unfinished commit's chunk). The commit is already durable: a failure leaves
// records no meta record names, logged and deleted by a later commit.
func (s *Store) deleteChunks(ctx context.Context, refs []chunkRef) {
	var keys []string
	for _, k := range s.garbage {
		if !slices.ContainsFunc(s.img.m.Chunks, func(r chunkRef) bool { return r.key(s.cfg.Tenant) == k }) {
			keys = append(keys, k)
		}
	}
	for _, r := range refs {
		keys = append(keys, chunkKey(s.cfg.Tenant, r.Day, r.Idx, 0), chunkKey(s.cfg.Tenant, r.Day, r.Idx, 1))
	}
	if len(keys) == 0 {
		return
	}
	msgs := make([]kafka.Message, len(keys))
	for i, k := range keys {
		msgs[i] = kafka.Message{Key: []byte(k)}
	}
	if err := s.write(ctx, msgs); err != nil {
		s.garbage = keys
		s.log.Warn("deleting chunks no longer used failed; a later commit deletes them", "chunks", len(keys), "err", err)
		return
	}
	s.garbage = nil
}

// apply returns img with c applied, the chunks it created or rewrote (new objects, in next), and
// the chunks it dropped. img is not changed.
func (img image) apply(c poller.Change) (next image, dirty []*chunk, removed []chunkRef) {
	next = img
	next.m.Tail = maps.Clone(img.m.Tail)
	next.chunks = slices.Clone(img.chunks)
	isDirty := map[*chunk]bool{}
	touch := func(i int) *chunk {
		old := next.chunks[i]
		if isDirty[old] {
			return old
		}
		ch := &chunk{ref: old.ref, ids: slices.Clone(old.ids)}
		ch.ref.Slot = 1 - old.ref.Slot
		next.chunks[i], isDirty[ch] = ch, true
		return ch
	}
	byDay := map[int64][]entry{}
	for _, a := range c.Add {
		d := dayOf(a.FollowTime)
		byDay[d] = append(byDay[d], entry{a.FollowTime, a.ID})
	}
	for _, d := range slices.Sorted(maps.Keys(byDay)) {
		add := byDay[d]
		for len(add) > 0 {
			last := -1
			for i, ch := range next.chunks {
				if ch.ref.Day == d && (last < 0 || ch.ref.Idx > next.chunks[last].ref.Idx) {
					last = i
				}
			}
			if last < 0 || len(next.chunks[last].ids) >= ChunkIDs {
				idx := 0
				if last >= 0 {
					idx = next.chunks[last].ref.Idx + 1
				}
				ch := &chunk{ref: chunkRef{Day: d, Idx: idx}}
				isDirty[ch] = true
				next.chunks = append(next.chunks, ch)
				last = len(next.chunks) - 1
			}
			ch := touch(last)
			n := min(len(add), ChunkIDs-len(ch.ids))
			ch.ids = append(ch.ids, add[:n]...)
			add = add[n:]
		}
	}
	if c.Floor > img.m.Floor {
		next.m.Floor = c.Floor
		kept := next.chunks[:0:0]
		for i, ch := range next.chunks {
			switch {
			case (ch.ref.Day+1)*msPerDay <= c.Floor:
				if !isDirty[ch] || img.has(ch.ref.Day, ch.ref.Idx) {
					removed = append(removed, ch.ref)
				}
				delete(isDirty, ch)
				continue
			case ch.ref.Day*msPerDay < c.Floor:
				if slices.ContainsFunc(ch.ids, func(e entry) bool { return e.ft < c.Floor }) {
					ch = touch(i)
					ch.ids = slices.DeleteFunc(ch.ids, func(e entry) bool { return e.ft < c.Floor })
				}
			}
			kept = append(kept, ch)
		}
		next.chunks = kept
	}
	next.m.Watermark = max(img.m.Watermark, c.Watermark)
	if c.Tail != nil {
		next.m.TailTopic, next.m.Tail = c.Tail.Topic, maps.Clone(c.Tail.Next)
	}
	if c.FullRead != nil {
		next.m.FullAt, next.m.FullFrom = c.FullRead.At, c.FullRead.From
	}
	slices.SortFunc(next.chunks, func(a, b *chunk) int {
		return cmp.Or(cmp.Compare(a.ref.Day, b.ref.Day), cmp.Compare(a.ref.Idx, b.ref.Idx))
	})
	for _, ch := range next.chunks {
		if isDirty[ch] {
			dirty = append(dirty, ch)
		}
	}
	return next, dirty, removed
}

// has reports whether img holds the chunk (day, idx).
func (img image) has(day int64, idx int) bool {
	return slices.ContainsFunc(img.chunks, func(ch *chunk) bool { return ch.ref.Day == day && ch.ref.Idx == idx })
}

// Replace implements poller.Store: a meta record without chunks, keeping the tail; the old chunks
// are deleted after it.
func (s *Store) Replace(ctx context.Context, floor, watermark int64) error {
	if err := s.ensureLoaded(ctx); err != nil {
		return err
	}
	next := image{exists: true, m: meta{Seq: s.img.m.Seq + 1, Floor: floor, Watermark: watermark, UpdatedAt: time.Now().UnixNano(),
		TailTopic: s.img.m.TailTopic, Tail: maps.Clone(s.img.m.Tail), Chunks: []chunkRef{}}}
	var removed []chunkRef
	for _, ch := range s.img.chunks {
		removed = append(removed, ch.ref)
	}
	return s.commitMeta(ctx, next, removed)
}

// Reset implements poller.Store: a tombstone for the meta record, then for the chunks.
func (s *Store) Reset(ctx context.Context) error {
	if err := s.ensureLoaded(ctx); err != nil {
		return err
	}
	if err := s.write(ctx, []kafka.Message{{Key: []byte(metaKey(s.cfg.Tenant))}}); err != nil {
		return fmt.Errorf("resetting the state of tenant %s in topic %s: %w", s.cfg.Tenant, s.cfg.Topic, err)
	}
	var removed []chunkRef
	for _, ch := range s.img.chunks {
		removed = append(removed, ch.ref)
	}
	s.img = image{}
	s.deleteChunks(ctx, removed)
	return nil
}

// write writes msgs, acknowledged by every in-sync replica, within Timeout and, with a Fence,
// only when the fence allows it and until the time it gives. After a failure it waits for the
// writes still in flight (closing the writer) so that none lands after a later commit.
func (s *Store) write(ctx context.Context, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if s.cfg.Fence != nil {
		until, err := s.cfg.Fence(ctx)
		if err != nil {
			return fmt.Errorf("not writing: %w", err)
		}
		var cancelFence context.CancelFunc
		ctx, cancelFence = context.WithDeadline(ctx, until)
		defer cancelFence()
	}
	err := s.w.WriteMessages(ctx, msgs...)
	if err != nil {
		_ = s.w.Close()
		s.w = s.newWriter()
	}
	return err
}
