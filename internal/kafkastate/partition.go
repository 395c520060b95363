package kafkastate

import (
	"context"
	"sync"
	"time"
)

// PartitionReader shares the reads of the state topic's partitions among the tenants one
// instance loads in one generation: the first Load of a partition reads it from its start to its
// end E once, keeping every tenant's records; each tenant's Load then takes its records from that
// snapshot and reads only from E on, which gives what one read from the start gives. A tenant's
// records are dropped from the snapshot once its Load took them (a second Load of it in the
// generation reads from the start), and a snapshot is read again after a minute; Close drops the
// rest. It is safe for concurrent use.
type PartitionReader struct {
	mu    sync.Mutex
	parts map[partKey]*snapshot
}

type partKey struct {
	topic string
	part  int
}

// snapshot is one read of a partition from its start to end: the newest value of each key,
// grouped by tenant; done is closed when the read completed (err says whether it failed).
type snapshot struct {
	done    chan struct{}
	at      time.Time // when the read began
	closed  bool
	err     error
	end     int64
	tenants map[string]map[string]record
}

// snapshotAge is how long after its read began a snapshot is used: well within the time
// compaction keeps a tombstone (delete.retention.ms, a day by default), so that one written after
// the snapshot cannot be gone when a Load reads from the snapshot's end on.
const snapshotAge = time.Minute

func (snap *snapshot) expired() bool {
	select {
	case <-snap.done:
		return time.Since(snap.at) > snapshotAge
	default:
		return false // being read
	}
}

// NewPartitionReader returns a reader holding no snapshot yet.
func NewPartitionReader() *PartitionReader {
	return &PartitionReader{parts: map[partKey]*snapshot{}}
}

// Close drops the snapshots: the generation they were read for has ended.
func (r *PartitionReader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, snap := range r.parts {
		snap.closed, snap.tenants = true, nil
	}
	r.parts = map[partKey]*snapshot{}
}

// take returns the records of s's tenant as of the partition's offset from (the snapshot's end),
// and ok; ok is false when the tenant's records were taken already in this generation or the
// reader was closed. The first caller for a partition reads it; the others wait for that read.
func (r *PartitionReader) take(ctx context.Context, s *Store) (recs map[string]record, from int64, ok bool, err error) {
	k := partKey{s.cfg.Topic, s.part}
	r.mu.Lock()
	snap, found := r.parts[k]
	if found && snap.expired() {
		found = false
	}
	if !found {
		snap = &snapshot{done: make(chan struct{}), at: time.Now()}
		r.parts[k] = snap
		r.mu.Unlock()
		tenants, end, err := s.readTenants(ctx)
		r.mu.Lock()
		snap.err, snap.end = err, end
		if !snap.closed {
			snap.tenants = tenants
		}
		if err != nil && r.parts[k] == snap {
			delete(r.parts, k) // the next Load reads again
		}
		close(snap.done)
	}
	r.mu.Unlock()
	select {
	case <-snap.done:
	case <-ctx.Done():
		return nil, 0, false, ctx.Err()
	}
	if snap.err != nil {
		return nil, 0, false, snap.err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if snap.closed {
		return nil, 0, false, nil
	}
	recs, found = snap.tenants[s.cfg.Tenant]
	if found && recs == nil {
		return nil, 0, false, nil // taken already
	}
	if recs == nil {
		recs = map[string]record{} // the partition held no record of the tenant
	}
	snap.tenants[s.cfg.Tenant] = nil
	return recs, snap.end, true, nil
}
