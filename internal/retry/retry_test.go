package retry

import (
	"context"
	"testing"
	"time"
)

func TestPolicyGrowsWithinItsBounds(t *testing.T) {
	p := New(100*time.Millisecond, time.Second)
	for n := range 20 {
		d := p.Next()
		base := min(100*time.Millisecond<<n, time.Second)
		lo := time.Duration(float64(base) * (1 - Jitter))
		if n < 3 && (d < lo || d > time.Duration(float64(base)*(1+Jitter))) {
			t.Fatalf("wait %d = %v, want within ±%.0f%% of %v", n, d, Jitter*100, base)
		}
		if d > time.Second || d <= 0 {
			t.Fatalf("wait %d = %v, want in (0, 1s]", n, d)
		}
	}
	p.Reset()
	if d := p.Next(); d > 150*time.Millisecond {
		t.Fatalf("after Reset the first wait is %v, want ≤ 150ms", d)
	}
}

func TestPolicyJitters(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[New(time.Second, time.Minute).Next()] = true
	}
	if len(seen) < 2 {
		t.Fatalf("20 first waits were all equal (%v): no jitter", seen)
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
