package poller

import (
	"testing"
	"time"
)

func shanghai(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatalf("loading Asia/Shanghai: %v", err)
	}
	return loc
}

func TestParseStartFrom(t *testing.T) {
	loc := shanghai(t)
	// 2024-02-07 17:30 UTC is 2024-02-08 01:30 in Shanghai: "today" is the Shanghai day.
	now := time.Date(2024, 2, 7, 17, 30, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"today", time.Date(2024, 2, 8, 0, 0, 0, 0, loc)},
		{"", time.Date(2024, 2, 8, 0, 0, 0, 0, loc)},
		{"now", now},
		{"NOW", now},
		{"2024-01-31", time.Date(2024, 1, 31, 0, 0, 0, 0, loc)},
		{"2024-01-31T10:00:00Z", time.Date(2024, 1, 31, 10, 0, 0, 0, time.UTC)},
		{"2024-01-31T10:00:00.123+08:00", time.Date(2024, 1, 31, 2, 0, 0, 123e6, time.UTC)},
		{"72h", now.Add(-72 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"0s", now},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseStartFrom(tt.in, now, loc)
			if err != nil {
				t.Fatalf("ParseStartFrom(%q): %v", tt.in, err)
			}
			if !got.Equal(tt.want) {
				t.Fatalf("ParseStartFrom(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	for _, bad := range []string{"yesterday", "-5h", "2024-13-01", "2024-02-07 10:00", "5d"} {
		if _, err := ParseStartFrom(bad, now, loc); err == nil {
			t.Errorf("ParseStartFrom(%q) succeeded, want an error", bad)
		}
	}
}

func TestStartOfDayAcrossShanghaiMidnight(t *testing.T) {
	loc := shanghai(t)
	// Midnight in Shanghai is 16:00 UTC.
	before := time.Date(2024, 2, 7, 15, 59, 59, 999e6, time.UTC)
	after := time.Date(2024, 2, 7, 16, 0, 0, 0, time.UTC)
	if got, want := StartOfDay(before, loc), time.Date(2024, 2, 7, 0, 0, 0, 0, loc); !got.Equal(want) {
		t.Errorf("StartOfDay(%v) = %v, want %v", before, got, want)
	}
	if got, want := StartOfDay(after, loc), time.Date(2024, 2, 8, 0, 0, 0, 0, loc); !got.Equal(want) {
		t.Errorf("StartOfDay(%v) = %v, want %v", after, got, want)
	}
}

func FuzzParseStartFrom(f *testing.F) {
	for _, s := range []string{"today", "now", "2024-02-07", "2024-02-07T08:00:00Z", "72h", "-1h", "9999999999h", "2024-02-30"} {
		f.Add(s)
	}
	loc := shanghai(f)
	now := time.Date(2024, 2, 7, 8, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseStartFrom(s, now, loc)
		if err == nil && got.IsZero() {
			t.Fatalf("ParseStartFrom(%q) returned the zero time without an error", s)
		}
	})
}
