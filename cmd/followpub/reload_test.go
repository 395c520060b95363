package main

import (
	"slices"
	"testing"

	"github.com/segmentio/kafka-go"
)

// A reload that added topics left the old transport behind: it is closed once no tenant uses it.
func TestReloadClosesTransportsNoTenantUses(t *testing.T) {
	old, used, current := &kafka.Transport{}, &kafka.Transport{}, &kafka.Transport{}
	s := &service{
		transport:  current,
		transports: []*kafka.Transport{old, used, current},
		tenants:    []*tenantRun{{kafka: used}, {kafka: current}},
	}
	s.closeUnusedTransports()
	if want := []*kafka.Transport{used, current}; !slices.Equal(s.transports, want) {
		t.Fatalf("transports after the reload: %p, want %p (the unused %p closed)", s.transports, want, old)
	}
	s.tenants = nil
	s.closeUnusedTransports()
	if want := []*kafka.Transport{current}; !slices.Equal(s.transports, want) {
		t.Fatalf("transports with no tenant: %p, want only the current one %p", s.transports, want)
	}
}
