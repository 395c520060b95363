package kafkastate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// Command is a request of `followpub watermark set|reset` to the tenant's owner, written to the
// key tenant/command: the owner applies it at its next cycle and deletes it, so that a replay
// needs no downtime.
type Command struct {
	// Op is "set" or "reset".
	Op string `json:"op"`
	// TimeMS is the new floor and watermark of "set", in epoch milliseconds.
	TimeMS int64 `json:"time_ms,omitempty"`
	// ID tells this request from another.
	ID string `json:"id"`
}

func commandKey(tenant string) string { return tenant + "/command" }

func decodeCommand(v []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(v, &c); err != nil {
		return c, fmt.Errorf("not a command: %w", err)
	}
	if c.Op != "set" && c.Op != "reset" {
		return c, fmt.Errorf("unknown command %q", c.Op)
	}
	return c, nil
}

// Request writes c for the tenant's owner. It is not fenced: any process may ask.
func (s *Store) Request(ctx context.Context, c Command) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := s.w.WriteMessages(ctx, kafka.Message{Key: []byte(commandKey(s.cfg.Tenant)), Value: v}); err != nil {
		return fmt.Errorf("writing the request to tenant %s's owner to topic %s: %w", s.cfg.Tenant, s.cfg.Topic, err)
	}
	return nil
}

// Done deletes the request c once it was applied (a fenced write, like a commit).
func (s *Store) Done(ctx context.Context, c Command) error {
	if err := s.write(ctx, []kafka.Message{{Key: []byte(commandKey(s.cfg.Tenant))}}); err != nil {
		return fmt.Errorf("deleting the request %s of tenant %s: %w", c.ID, s.cfg.Tenant, err)
	}
	s.pending = nil
	return nil
}

// NextCommand reads the tenant's partition from offset from to its end and returns the newest
// request written there (nil when none) and the end. Unlike the other methods it may be called
// while another goroutine uses the store.
func (s *Store) NextCommand(ctx context.Context, from int64) (*Command, int64, error) {
	recs, end, err := s.readPartition(ctx, from)
	if err != nil {
		return nil, from, err
	}
	cr, ok := recs[commandKey(s.cfg.Tenant)]
	if !ok {
		return nil, end, nil
	}
	c, err := decodeCommand(cr.value)
	if err != nil {
		return nil, end, errors.Join(err, s.corrupt(cr.offset, commandKey(s.cfg.Tenant), err))
	}
	return &c, end, nil
}
