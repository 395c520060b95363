package poller_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/state"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/poller/pollertest"
	"github.com/followpub/followpub/schema"
)

// Shape of the benchmark's backfill: the days of make bench's backfill (200,000 records over 20
// days), fewer of them.
const (
	benchDays       = 5
	benchDayRecords = 10_000
)

// daysSource answers each day with its records, in the order given (a copy: handleDay clears what
// it is given).
type daysSource map[int64][]schema.Record

func (s daysSource) Fetch(_ context.Context, from, _ time.Time) ([]schema.Record, error) {
	return slices.Clone(s[from.UnixMilli()]), nil
}

// ackAll is a Publisher whose every record is acknowledged, on one partition; it reads back nothing.
type ackAll struct{ next int64 }

func (a *ackAll) Publish(_ context.Context, recs []schema.Record) (poller.Written, error) {
	a.next += int64(len(recs))
	return poller.Written{Next: map[int]int64{0: a.next}}, nil
}

func (a *ackAll) ReadBack(context.Context, poller.Tail) (poller.ReadBack, error) {
	return poller.ReadBack{Tail: poller.Tail{Topic: fakeTopic, Next: map[int]int64{0: a.next}}}, nil
}

// BenchmarkBackfill measures the poller's own work per record in a backfill of benchDays days of
// benchDayRecords records each, newest first (the order of make bench's simulator): the dedupe
// against the state, the ordering, the batches and their commits, the floor. The publisher only
// acknowledges. store=mem commits to pollertest.MemStore (the poller's work alone), store=bbolt to
// internal/state in a temporary file, fsync'd as in production. Each op is a whole backfill, after
// a watermark set back to its first day; cpu-ns/record is the process's CPU time (GC included).
func BenchmarkBackfill(b *testing.B) {
	loc := mustShanghai(b)
	first := time.Date(2024, 3, 1, 0, 0, 0, 0, loc)
	src := daysSource{}
	rng := rand.New(rand.NewPCG(1, 2))
	id := int64(1_700_000_000_000)
	for d := range benchDays {
		day := first.AddDate(0, 0, d)
		recs := make([]schema.Record, benchDayRecords)
		for i := range recs {
			id += 1 + rng.Int64N(5)
			ft := day.UnixMilli() + rng.Int64N(24*60*60*1000)
			recs[i] = schema.Record{ID: id, FollowTime: ft, Raw: []byte(`{"id":` + strconv.FormatInt(id, 10) + `}`)}
		}
		slices.SortFunc(recs, func(a, b schema.Record) int { return schema.Compare(b, a) })
		src[day.UnixMilli()] = recs
	}
	now := first.AddDate(0, 0, benchDays-1).Add(23 * time.Hour)
	stores := []struct {
		name string
		open func(b *testing.B) poller.Store
	}{
		{"mem", func(*testing.B) poller.Store { return &pollertest.MemStore{} }},
		{"bbolt", func(b *testing.B) poller.Store {
			s, err := state.Open(filepath.Join(b.TempDir(), "followpub.state"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s
		}},
	}
	for _, st := range stores {
		b.Run("store="+st.name, func(b *testing.B) {
			ctx := context.Background()
			p, err := poller.New(poller.Config{Location: loc, Interval: time.Minute, Lookback: time.Hour,
				Clock: func() time.Time { return now }}, src, &ackAll{}, st.open(b))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var cpu time.Duration
			for b.Loop() {
				if err := p.SetWatermark(ctx, first); err != nil {
					b.Fatal(err)
				}
				began := cpuTime(b)
				res, err := p.Cycle(ctx)
				cpu += cpuTime(b) - began
				if err != nil {
					b.Fatal(err)
				}
				if res.Published != benchDays*benchDayRecords {
					b.Fatalf("published %d records, want %d", res.Published, benchDays*benchDayRecords)
				}
			}
			records := float64(b.N * benchDays * benchDayRecords)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/records, "ns/record")
			b.ReportMetric(float64(cpu.Nanoseconds())/records, "cpu-ns/record")
		})
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
