package poller

import (
	"context"
	"fmt"
	"time"
)

// Status is the state as `followpub watermark show` prints it (docs/DESIGN.md §5).
type Status struct {
	// Exists is false when there is no state yet; the other fields then show where a run would start.
	Exists      bool   `json:"exists"`
	Watermark   string `json:"watermark"`
	WatermarkMS int64  `json:"watermark_ms"`
	Floor       string `json:"floor"`
	FloorMS     int64  `json:"floor_ms"`
	Seen        int    `json:"seen"`
	WindowStart string `json:"window_start"`
	UpdatedAt   string `json:"updated_at"`
}

// Status returns the current state and the start of the next cycle's window.
func (p *Poller) Status(ctx context.Context) (Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.load(ctx); err != nil {
		return Status{}, err
	}
	st := p.st
	if !st.Exists {
		start, err := ParseStartFrom(p.cfg.StartFrom, p.cfg.Clock(), p.cfg.Location)
		if err != nil {
			return Status{}, err
		}
		st.Floor, st.Watermark = start.UnixMilli(), start.UnixMilli()
	}
	s := Status{
		Exists:      st.Exists,
		Watermark:   msTime(st.Watermark).Format(time.RFC3339Nano),
		WatermarkMS: st.Watermark,
		Floor:       msTime(st.Floor).Format(time.RFC3339Nano),
		FloorMS:     st.Floor,
		Seen:        len(st.Seen),
		WindowStart: p.windowStart(st).Format(time.RFC3339),
	}
	if !st.UpdatedAt.IsZero() {
		s.UpdatedAt = st.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	return s, nil
}

// SetWatermark moves the floor and the watermark to t and forgets every remembered id, so the next
// cycle publishes every record from t on again (a replay), or skips what lies before t.
func (p *Poller) SetWatermark(ctx context.Context, t time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.load(ctx); err != nil {
		return err
	}
	return p.replace(ctx, t)
}

// Reset deletes the state; the next cycle starts from StartFrom.
func (p *Poller) Reset(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.store.Reset(ctx); err != nil {
		return fmt.Errorf("resetting the state: %w", err)
	}
	p.st, p.loaded, p.history = State{Seen: map[int64]int64{}}, true, readHistory{}
	clear(p.late)
	p.unsaved, p.unsavedTail, p.settled = nil, nil, false
	clear(p.unsavedIDs)
	return nil
}

func (p *Poller) replace(ctx context.Context, t time.Time) error {
	ms := t.UnixMilli()
	if err := p.store.Replace(ctx, ms, ms); err != nil {
		p.commitFailed(ctx)
		return fmt.Errorf("setting the watermark to %s: %w", t.Format(time.RFC3339), err)
	}
	p.st = State{Exists: true, Floor: ms, Watermark: ms, Seen: map[int64]int64{}, UpdatedAt: p.cfg.Clock(), Tail: p.st.Tail}
	p.history = readHistory{} // a replay begins with a full read
	clear(p.late)
	p.unsaved, p.unsavedTail = nil, nil
	clear(p.unsavedIDs)
	return nil
}

// load reads the state from the store once; later calls keep the copy in memory, which every
// commit updates after the store made it durable.
func (p *Poller) load(ctx context.Context) error {
	if p.loaded {
		return nil
	}
	st, err := p.store.Load(ctx)
	if err != nil {
		return fmt.Errorf("loading the state: %w", err)
	}
	if st.Seen == nil {
		st.Seen = map[int64]int64{}
	}
	p.st, p.loaded = st, true
	p.history = historyOf(st.FullRead, p.cfg.Location)
	return nil
}
