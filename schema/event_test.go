package schema

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestFormatTime(t *testing.T) {
	tests := []struct {
		ms   int64
		want string
	}{
		{1707292800000, "2024-02-07T08:00:00.000Z"},
		{1707292800001, "2024-02-07T08:00:00.001Z"},
		{1707292800999, "2024-02-07T08:00:00.999Z"},
		{1707292800120, "2024-02-07T08:00:00.120Z"}, // trailing zero kept: exactly three digits
		{0, "1970-01-01T00:00:00.000Z"},
		{-1, "1969-12-31T23:59:59.999Z"},
		{253402300799999, "9999-12-31T23:59:59.999Z"},
	}
	for _, tt := range tests {
		t.Run(strconv.FormatInt(tt.ms, 10), func(t *testing.T) {
			if got := FormatTime(tt.ms); got != tt.want {
				t.Errorf("FormatTime(%d) = %q, want %q", tt.ms, got, tt.want)
			}
			if got := string(AppendTime([]byte("x"), tt.ms)); got != "x"+tt.want {
				t.Errorf("AppendTime = %q, want %q", got, "x"+tt.want)
			}
			back, err := ParseCETime(tt.want)
			if err != nil || back != tt.ms {
				t.Errorf("ParseCETime(%q) = %d, %v; want %d", tt.want, back, err, tt.ms)
			}
			// The same instant as the standard library's RFC 3339 would read it.
			p, err := time.Parse(time.RFC3339Nano, tt.want)
			if err != nil || p.UnixMilli() != tt.ms {
				t.Errorf("time.Parse(%q) = %v, %v", tt.want, p, err)
			}
		})
	}
}

func TestFormatTimeIsUTCWhateverTheLocalZone(t *testing.T) {
	old := time.Local
	time.Local = time.FixedZone("CST", 8*3600)
	defer func() { time.Local = old }()
	if got, want := FormatTime(1707292800000), "2024-02-07T08:00:00.000Z"; got != want {
		t.Errorf("FormatTime in a +08:00 local zone = %q, want %q", got, want)
	}
}

func TestParseTimeRejectsGarbage(t *testing.T) {
	for _, s := range []string{"", "2024-02-07", "2024-02-07 08:00:00Z", "yesterday"} {
		if _, err := ParseCETime(s); err == nil {
			t.Errorf("ParseCETime(%q): no error", s)
		}
	}
	// Other offsets and precisions are accepted and converted.
	if ms, err := ParseCETime("2024-02-07T16:00:00.5+08:00"); err != nil || ms != 1707292800500 {
		t.Errorf("ParseCETime with offset = %d, %v", ms, err)
	}
}

func TestAppendHeaders(t *testing.T) {
	r := Record{ID: 9007199254740993, FollowTime: 1707292800123, Raw: []byte(`{"id":9007199254740993}`)}
	const src = "https://example.test/src"
	prefix := []Header{{Key: "keep", Value: []byte("me")}}
	hs := AppendHeaders(prefix, r, src, "acme")
	want := []Header{
		{"keep", []byte("me")},
		{"ce_specversion", []byte("1.0")},
		{"ce_id", []byte("9007199254740993")},
		{"ce_source", []byte(src)},
		{"ce_type", []byte("com.wshoto.crm.follow.system")},
		{"ce_time", []byte("2024-02-07T08:00:00.123Z")},
		{"content-type", []byte("application/json")},
		{"ce_tenant", []byte("acme")},
	}
	if len(hs) != len(want) || len(hs)-len(prefix) != NumHeaders {
		t.Fatalf("got %d headers, want %d", len(hs), len(want))
	}
	for i := range want {
		if hs[i].Key != want[i].Key || !bytes.Equal(hs[i].Value, want[i].Value) {
			t.Errorf("header %d = %s=%q, want %s=%q", i, hs[i].Key, hs[i].Value, want[i].Key, want[i].Value)
		}
	}
	if !bytes.Equal(hs[2].Value, r.Key()) {
		t.Errorf("ce_id %q != Key() %q", hs[2].Value, r.Key())
	}
	// ce_id must not be extendable into ce_time's bytes: appending to it must copy.
	idv := append(hs[2].Value, 'X')
	if string(hs[5].Value) != "2024-02-07T08:00:00.123Z" || string(idv) != "9007199254740993X" {
		t.Errorf("appending to ce_id changed ce_time: %q", hs[5].Value)
	}
}

func TestAppendHeadersNegativeAndExtremeIDs(t *testing.T) {
	for _, id := range []int64{0, -1, 1<<63 - 1, -1 << 63} {
		hs := AppendHeaders(nil, Record{ID: id, FollowTime: 1}, DefaultSource, DefaultTenant)
		if got, want := string(hs[1].Value), strconv.FormatInt(id, 10); got != want {
			t.Errorf("ce_id = %q, want %q", got, want)
		}
		if got := string(hs[4].Value); got != "1970-01-01T00:00:00.001Z" {
			t.Errorf("ce_time = %q", got)
		}
	}
}

func TestAppendHeadersSourceChanges(t *testing.T) {
	r := Record{ID: 1, FollowTime: 1}
	for _, src := range []string{"a", "b", "a", ""} {
		hs := AppendHeaders(nil, r, src, DefaultTenant)
		if string(hs[2].Value) != src {
			t.Errorf("ce_source = %q, want %q", hs[2].Value, src)
		}
	}
}

func TestAppendHeadersAllocations(t *testing.T) {
	r := Record{ID: 1234567890123, FollowTime: 1707292800000}
	dst := make([]Header, 0, NumHeaders)
	AppendHeaders(dst, r, DefaultSource, DefaultTenant) // warm the source cache
	n := testing.AllocsPerRun(100, func() {
		dst = AppendHeaders(dst[:0], r, DefaultSource, DefaultTenant)
	})
	if n > 1 {
		t.Errorf("AppendHeaders allocates %v times per record, want at most 1", n)
	}
}

func TestKeyAndOrder(t *testing.T) {
	if got := string(Record{ID: 9223372036854775807}.Key()); got != "9223372036854775807" {
		t.Errorf("Key = %q", got)
	}
	a := Record{ID: 2, FollowTime: 1}
	b := Record{ID: 1, FollowTime: 2}
	c := Record{ID: 3, FollowTime: 2}
	if !Less(a, b) || !Less(b, c) || Less(c, b) || Compare(b, b) != 0 || Compare(c, a) != 1 {
		t.Error("Less/Compare do not order by (follow_time, id)")
	}
}

func BenchmarkAppendHeaders(b *testing.B) {
	r := Record{ID: 1234567890123, FollowTime: 1707292800000}
	dst := make([]Header, 0, NumHeaders)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendHeaders(dst[:0], r, DefaultSource, DefaultTenant)
	}
}

func TestAPILocationIsShanghai(t *testing.T) {
	loc := APILocation()
	if loc.String() != APITimeZone {
		t.Fatalf("APILocation() = %q, want %q", loc, APITimeZone)
	}
	// Shanghai has kept UTC+8 without daylight saving time since 1991: midnight there is 16:00 UTC.
	for _, month := range []time.Month{time.January, time.July} {
		midnight := time.Date(2024, month, 7, 0, 0, 0, 0, loc)
		if got := midnight.UTC(); got.Hour() != 16 || got.Day() != 6 {
			t.Errorf("midnight of %s 7 in %s is %v UTC, want 16:00 of the day before", month, loc, got)
		}
	}
}

// Compare agrees with Less on every pair, ties of follow_time and of id included.
func TestCompareAgreesWithLess(t *testing.T) {
	var recs []Record
	for _, ft := range []int64{-1, 0, 1, 1706889600000} {
		for _, id := range []int64{math.MinInt64, -1, 0, 1, math.MaxInt64} {
			recs = append(recs, Record{ID: id, FollowTime: ft})
		}
	}
	for _, a := range recs {
		for _, b := range recs {
			want := 0
			if Less(a, b) {
				want = -1
			} else if Less(b, a) {
				want = 1
			}
			if got := Compare(a, b); got != want {
				t.Errorf("Compare(%+v, %+v) = %d, Less says %d", a, b, got, want)
			}
		}
	}
}

// BenchmarkSortDay sorts a day of 10,000 records as the poller does before publishing it.
func BenchmarkSortDay(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	day := make([]Record, 10_000)
	for i := range day {
		day[i] = Record{ID: rng.Int64(), FollowTime: 1706889600000 + rng.Int64N(86_400_000)}
	}
	recs := make([]Record, len(day))
	for b.Loop() {
		copy(recs, day)
		slices.SortFunc(recs, Compare)
	}
}
