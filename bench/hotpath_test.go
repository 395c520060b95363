package bench_test

import (
	"context"
	"net/http"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/followpub/followpub/bench"
	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
	"github.com/followpub/followpub/schema"
)

// dayRecords is the number of records of the benchmarked day: a day of the 200,000-record,
// 20-day backfill.
const dayRecords = 10_000

// fixture is one day of simulated records, served from memory.
type fixture struct {
	loc    *time.Location
	day    time.Time
	pages  *bench.Pages
	client *wshoto.Client
	pub    *publisher.Publisher
	recs   []schema.Record // the day's records as the client decodes them
}

func newFixture(tb testing.TB, n int) *fixture {
	tb.Helper()
	loc := schema.APILocation()
	day := time.Date(2024, 2, 7, 0, 0, 0, 0, loc)
	now := day.Add(36 * time.Hour)
	sim, err := wshotosim.New(wshotosim.Config{
		Count: n, Start: day, End: day.Add(24*time.Hour - time.Millisecond), StaticToken: "bench",
		Location: loc, Clock: func() time.Time { return now },
	})
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{loc: loc, day: day, pages: bench.NewPages(sim)}
	f.client, err = wshoto.New(wshoto.Config{
		BaseURL: "http://127.0.0.1:9", AccessToken: "bench", Location: loc, RateLimit: -1,
		HTTPClient: &http.Client{Transport: f.pages},
	})
	if err != nil {
		tb.Fatal(err)
	}
	publisher.RegisterCodecs() // as followpub's main does
	f.pub, err = publisher.New(publisher.Config{Brokers: []string{"127.0.0.1:9"}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = f.pub.Close() })
	// Warm-up: every page the benchmarks ask for is rendered once, here.
	f.recs, err = f.client.Fetch(context.Background(), day, day)
	if err != nil {
		tb.Fatal(err)
	}
	if len(f.recs) != n {
		tb.Fatalf("fetched %d records, want %d", len(f.recs), n)
	}
	if _, err := f.client.Fetch(context.Background(), day.AddDate(0, 0, -1), day.AddDate(0, 0, -1)); err != nil {
		tb.Fatal(err)
	}
	return f
}

// newPoller returns a poller over the fixture whose state starts at the beginning of the day, so
// that every record of the day is new to it.
func (f *fixture) newPoller(tb testing.TB, pub poller.Publisher) *poller.Poller {
	tb.Helper()
	p, err := poller.New(poller.Config{
		Location: f.loc, StartFrom: f.day.Format(poller.DateLayout),
		Clock: func() time.Time { return f.day.Add(12 * time.Hour) },
	}, f.client, pub, discardStore{})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// discardStore is a poller.Store that keeps nothing: the durable commit is not part of the hot
// path (its cost is in the backfill's figures), while the poller's own state in memory is.
type discardStore struct{}

func (discardStore) Load(context.Context) (poller.State, error)  { return poller.State{}, nil }
func (discardStore) Commit(context.Context, poller.Change) error { return nil }
func (discardStore) Replace(context.Context, int64, int64) error { return nil }
func (discardStore) Reset(context.Context) error                 { return nil }

// builder is a poller.Publisher that builds the Kafka messages as Publish does, and stops there.
type builder struct {
	pub  *publisher.Publisher
	msgs int
}

func (b *builder) Publish(_ context.Context, recs []schema.Record) (poller.Written, error) {
	b.msgs += len(b.pub.Messages(recs))
	return poller.Written{}, nil
}

// ReadBack finds nothing: the builder writes nowhere.
func (b *builder) ReadBack(context.Context, poller.Tail) (poller.ReadBack, error) {
	return poller.ReadBack{Tail: poller.Tail{Topic: "builder", Next: map[int]int64{0: 0}}}, nil
}

// BenchmarkHotPath measures the hot path per record, on one day of 10,000 simulated records
// (100 pages of 100): decode (the API client reading every page of the day from memory: request,
// answer, decoding), messages (building the Kafka messages of one publish batch), and cycle: a
// whole poller cycle over the day, which is decode → the client's paging checks and id
// deduplication → deduplication against the state, ordering → messages, poller.DefaultBatchSize
// at a time → commit to a state in memory. cycle/new starts from an empty state (every record is
// published); cycle/seen repeats a cycle whose records are all remembered (the steady state's
// re-read of today's window). Each reports ns/record (wall), cpu-ns/record (the process's CPU
// time, GC included: steadier than the wall time when other processes take the CPUs), B/record
// and allocs/record.
func BenchmarkHotPath(b *testing.B) {
	f := newFixture(b, dayRecords)
	ctx := context.Background()
	pages := (dayRecords + wshoto.DefaultPageSize - 1) / wshoto.DefaultPageSize

	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		pr := startPerRecord(b, dayRecords)
		for b.Loop() {
			n := 0
			for i := 1; i <= pages; i++ {
				p, err := f.client.ListPage(ctx, f.day, f.day, i)
				if err != nil {
					b.Fatal(err)
				}
				n += len(p.Records)
			}
			if n != dayRecords {
				b.Fatalf("%d records", n)
			}
		}
		pr.report()
	})

	b.Run("messages", func(b *testing.B) {
		batch := f.recs[:poller.DefaultBatchSize]
		b.ReportAllocs()
		pr := startPerRecord(b, len(batch))
		for b.Loop() {
			if msgs := f.pub.Messages(batch); len(msgs) != len(batch) {
				b.Fatal(len(msgs))
			}
		}
		pr.report()
	})

	b.Run("cycle/new", func(b *testing.B) {
		b.ReportAllocs()
		pr := startPerRecord(b, dayRecords)
		for b.Loop() {
			bl := &builder{pub: f.pub}
			p := f.newPoller(b, bl)
			res, err := p.Cycle(ctx)
			if err != nil || res.Published != dayRecords || bl.msgs != dayRecords {
				b.Fatalf("cycle: %+v, %d messages, %v", res, bl.msgs, err)
			}
		}
		pr.report()
	})

	b.Run("cycle/seen", func(b *testing.B) {
		bl := &builder{pub: f.pub}
		p := f.newPoller(b, bl)
		if _, err := p.Cycle(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		pr := startPerRecord(b, dayRecords)
		for b.Loop() {
			res, err := p.Cycle(ctx)
			// Every record is already published: nothing may be published again (a source that
			// reads only what is new returns fewer records, and that is its point).
			if err != nil || res.Published != 0 {
				b.Fatalf("cycle: %+v, %v", res, err)
			}
		}
		pr.report()
	})
}

// perRecord counts the heap allocations of a benchmark loop, to report them per record.
type perRecord struct {
	b       *testing.B
	n       int
	mallocs uint64
	bytes   uint64
	cpu     time.Duration
}

// startPerRecord begins counting, n records per operation; call it just before the loop.
func startPerRecord(b *testing.B, n int) *perRecord {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &perRecord{b: b, n: n, mallocs: ms.Mallocs, bytes: ms.TotalAlloc, cpu: processCPU()}
}

// processCPU returns the CPU time (user + system) this process used so far: unlike the wall time,
// it does not grow when other processes take the CPUs.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds ns/record (wall), cpu-ns/record (CPU time of the process, every goroutine and the
// garbage collector included), B/record and allocs/record; call it after the loop.
func (p *perRecord) report() {
	cpu := processCPU() - p.cpu
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	recs := float64(p.b.N) * float64(p.n)
	p.b.ReportMetric(float64(p.b.Elapsed().Nanoseconds())/recs, "ns/record")
	p.b.ReportMetric(float64(cpu.Nanoseconds())/recs, "cpu-ns/record")
	p.b.ReportMetric(float64(ms.TotalAlloc-p.bytes)/recs, "B/record")
	p.b.ReportMetric(float64(ms.Mallocs-p.mallocs)/recs, "allocs/record")
}
