package pollertest

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/followpub/followpub/poller"
)

// MemStore is a poller.Store in memory, for tests. Err, when set, fails every later call, as a full
// or read-only disk would. It is safe for concurrent use.
type MemStore struct {
	mu  sync.Mutex
	st  poller.State
	err error
	// Commits counts successful calls to Commit.
	Commits int
}

var _ poller.Store = (*MemStore)(nil)

// Fail makes every later call return err; nil heals the store.
func (m *MemStore) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
}

// Load implements poller.Store.
func (m *MemStore) Load(context.Context) (poller.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return poller.State{}, m.err
	}
	st := m.st
	st.Seen = maps.Clone(m.st.Seen)
	st.Tail.Next = maps.Clone(m.st.Tail.Next)
	if st.Seen == nil {
		st.Seen = map[int64]int64{}
	}
	return st, nil
}

// Commit implements poller.Store.
func (m *MemStore) Commit(_ context.Context, c poller.Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if m.st.Seen == nil {
		m.st.Seen = map[int64]int64{}
	}
	for _, a := range c.Add {
		m.st.Seen[a.ID] = a.FollowTime
	}
	if c.Floor > m.st.Floor {
		m.st.Floor = c.Floor
		maps.DeleteFunc(m.st.Seen, func(_, ft int64) bool { return ft < c.Floor })
	}
	m.st.Watermark = max(m.st.Watermark, c.Watermark)
	if c.Tail != nil {
		m.st.Tail = poller.Tail{Topic: c.Tail.Topic, Next: maps.Clone(c.Tail.Next)}
	}
	if c.FullRead != nil {
		m.st.FullRead = *c.FullRead
	}
	m.st.UpdatedAt = time.Now()
	m.Commits++
	return nil
}

// Replace implements poller.Store.
func (m *MemStore) Replace(_ context.Context, floor, watermark int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.st = poller.State{Exists: true, Floor: floor, Watermark: watermark, Seen: map[int64]int64{}, UpdatedAt: time.Now(), Tail: m.st.Tail}
	return nil
}

// Reset implements poller.Store.
func (m *MemStore) Reset(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.st = poller.State{}
	return nil
}
