package kafkastate

import (
	"maps"
	"slices"
)

// Garbage returns the keys the last Load found that no committed meta record names.
func (s *Store) Garbage() []string { return s.garbage }

// Held returns the tenants whose records r's snapshot of the partition holds, not yet taken.
func (r *PartitionReader) Held(topic string, part int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	snap := r.parts[partKey{topic, part}]
	if snap == nil {
		return nil
	}
	var held []string
	for _, t := range slices.Sorted(maps.Keys(snap.tenants)) {
		if snap.tenants[t] != nil {
			held = append(held, t)
		}
	}
	return held
}
