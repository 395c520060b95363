package faults

import (
	"syscall"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/wshotosim"
	"github.com/followpub/followpub/poller"
)

// TestSteadyArrivalsDoNotStarveTheCycle runs `followpub run` against a day that never stands
// still: 3 000 records today and 4 new ones a second, read at 50 requests a second in pages of
// 100, so that every read of today (31+ pages, over half a second) sees the page set change. docs/DESIGN.md
// §4 promises a record is published within two poll intervals of becoming visible; a cycle that
// insists on a page set that did not change while it was read would never complete, and nothing
// of today would ever be published. The records visible at a moment must all be in the topic
// within 20 s, and most cycles must complete.
func TestSteadyArrivalsDoNotStarveTheCycle(t *testing.T) {
	t.Parallel()
	now := time.Now()
	today := poller.StartOfDay(now, shanghai)
	first := now.Add(-6 * time.Hour)
	if first.Before(today) {
		first = today
	}
	w := e2etest.NewWorld(t, wshotosim.Config{Count: 3000, Start: first, End: now, Rate: 4}, today)
	addr := e2etest.FreeAddr(t)
	p := start(t, w.Env("FOLLOWPUB_HTTP_ADDR="+addr, "FOLLOWPUB_API_RATE_LIMIT=50", "FOLLOWPUB_POLL_INTERVAL=2s"), "run")
	ta := newTally(t, w.Brokers, w.Topic)
	time.Sleep(8 * time.Second)
	want := w.Want()
	missing := ta.syncUntil(t, want, 20*time.Second)
	body := scrape(addr)
	ok, _ := metric(body, "followpub_cycles_total", `result="ok"`)
	failed, _ := metric(body, "followpub_cycles_total", `result="failed"`)
	p.Signal(syscall.SIGTERM)
	p.Wait(30 * time.Second)
	figures(t, "records=%d arrivals_per_s=4 api_rate=50/s missing_after_20s=%d cycles_ok=%v cycles_failed=%v",
		len(want), len(missing), ok, failed)
	if len(missing) > 0 || ok == 0 {
		t.Fatalf("%d of %d records visible 8 s into the run were still unpublished 20 s later; cycles ok %v, failed %v:\n%s",
			len(missing), len(want), ok, failed, tail(p.Output(), 20))
	}
}
