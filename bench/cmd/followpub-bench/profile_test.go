package main

import (
	"testing"

	"github.com/google/pprof/profile"
)

func stack(funcs ...string) *profile.Sample {
	s := &profile.Sample{}
	for _, f := range funcs {
		s.Location = append(s.Location, &profile.Location{Line: []profile.Line{{Function: &profile.Function{Name: f}}}})
	}
	return s
}

func TestPartOfTakesTheFirstPartOnTheStack(t *testing.T) {
	name := func(s *profile.Sample) string {
		if i := partOf(s); i < len(cpuParts) {
			return cpuParts[i].name
		}
		return "rest"
	}
	for _, c := range []struct {
		stack []string
		want  string
	}{
		// A write called by the poller is kafka-go's, not the poller's.
		{[]string{"runtime.memmove", "github.com/segmentio/kafka-go.(*Writer).WriteMessages", "github.com/followpub/followpub/poller.(*Poller).publishBatch"}, cpuParts[1].name},
		{[]string{"github.com/pierrec/lz4/v4.(*Writer).Write", "github.com/segmentio/kafka-go.(*conn).run"}, cpuParts[0].name},
		{[]string{"github.com/followpub/followpub/internal/wshoto/jsonscan.(*decoder).str", "github.com/followpub/followpub/internal/wshoto.(*Client).listPage"}, cpuParts[2].name},
		{[]string{"go.etcd.io/bbolt.(*Tx).Commit", "github.com/followpub/followpub/poller.(*Poller).commit"}, cpuParts[3].name},
		{[]string{"runtime.scanobject", "runtime.gcBgMarkWorker"}, cpuParts[5].name},
		{[]string{"runtime.mapassign_fast64", "github.com/followpub/followpub/poller.(*Poller).handleDay"}, cpuParts[6].name},
		{[]string{"runtime.futex", "runtime.schedule"}, "rest"},
	} {
		if got := name(stack(c.stack...)); got != c.want {
			t.Errorf("%v: part %q, want %q", c.stack, got, c.want)
		}
	}
}
