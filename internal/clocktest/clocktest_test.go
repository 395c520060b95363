package clocktest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/clocktest"
)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	start := time.Date(2024, 2, 7, 12, 0, 0, 0, time.UTC)
	clk := clocktest.New(start)
	if got := clk.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	clk.Add(90 * time.Second)
	if got, want := clk.Now(), start.Add(90*time.Second); !got.Equal(want) {
		t.Fatalf("after Add: Now = %v, want %v", got, want)
	}
	later := start.Add(24 * time.Hour)
	clk.Set(later)
	if got := clk.Now(); !got.Equal(later) {
		t.Fatalf("after Set: Now = %v, want %v", got, later)
	}
}

func TestClockIsSafeForConcurrentUse(t *testing.T) {
	clk := clocktest.New(time.Unix(0, 0))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				clk.Add(time.Second)
				_ = clk.Now()
			}
		})
	}
	wg.Wait()
	if got, want := clk.Now(), time.Unix(800, 0); !got.Equal(want) {
		t.Fatalf("Now = %v after 800 concurrent one-second steps, want %v", got, want)
	}
}
