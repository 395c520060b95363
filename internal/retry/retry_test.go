package retry

import (
	"context"
	"testing"
	"time"
)

// TestPolicyIsFullJitter draws many schedules and checks each wait against its ceiling, and that the
// waits fill [0, ceiling] rather than bunching at one end.
func TestPolicyIsFullJitter(t *testing.T) {
	const initial, maxWait = 100 * time.Millisecond, time.Second
	const schedules = 400
	for n := range 8 {
		ceiling := min(initial<<n, maxWait)
		var low, high int
		for range schedules {
			p := New(initial, maxWait)
			var d time.Duration
			for range n + 1 {
				d = p.Next()
			}
			if d < 0 || d > ceiling {
				t.Fatalf("wait %d = %v, want within [0, %v]", n, d, ceiling)
			}
			if d < ceiling/2 {
				low++
			} else {
				high++
			}
		}
		if low < schedules/4 || high < schedules/4 {
			t.Fatalf("wait %d: %d of %d below half the ceiling %v, %d above: not uniform", n, low, schedules, ceiling, high)
		}
	}
}

func TestPolicyResetStartsOver(t *testing.T) {
	p := New(100*time.Millisecond, time.Minute)
	for range 10 {
		p.Next()
	}
	p.Reset()
	if d := p.Next(); d > 100*time.Millisecond {
		t.Fatalf("after Reset the first wait is %v, want ≤ 100ms", d)
	}
}

func TestMaxBelowInitialIsRaised(t *testing.T) {
	p := New(time.Second, time.Millisecond)
	for range 5 {
		if d := p.Next(); d > time.Second {
			t.Fatalf("wait %v above the raised maximum of 1s", d)
		}
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Minute); err != context.Canceled {
		t.Fatalf("Sleep on a cancelled context = %v, want context.Canceled", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("Sleep on a cancelled context waited")
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep(1ms) = %v, want nil", err)
	}
}
