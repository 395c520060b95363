package poller_test

import (
	"context"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/clocktest"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/poller/pollertest"
	"github.com/followpub/followpub/schema"
)

// dateSource answers as the API does: the records whose follow_time, in loc, falls on a calendar
// date from from's through to's.
type dateSource struct {
	loc  *time.Location
	recs []schema.Record
}

func (s dateSource) Fetch(_ context.Context, from, to time.Time) ([]schema.Record, error) {
	lo, hi := from.In(s.loc).Format(poller.DateLayout), to.In(s.loc).Format(poller.DateLayout)
	var out []schema.Record
	for _, r := range s.recs {
		if d := time.UnixMilli(r.FollowTime).In(s.loc).Format(poller.DateLayout); d >= lo && d <= hi {
			out = append(out, r)
		}
	}
	return out, nil
}

// TestARecordInTheLastHourBeforeAMidnightWhereSummerTimeBegins: in America/Havana summer time
// began at midnight on 10 March 2024 (00:00 became 01:00), so midnight of that day does not exist
// and time.Date(2024, 3, 10, 0, ...) is 23:00 of 9 March. A record at 23:30 on 9 March is on 9 March
// for the API: a day of 9 March ending at that 23:00 skipped it as outside the day, and the API
// never returns it for 10 March.
func TestARecordInTheLastHourBeforeAMidnightWhereSummerTimeBegins(t *testing.T) {
	havana, err := time.LoadLocation("America/Havana")
	if err != nil {
		t.Fatal(err)
	}
	ft := time.Date(2024, 3, 9, 23, 30, 0, 0, havana)
	rec := schema.Record{ID: 42, FollowTime: ft.UnixMilli(), Raw: []byte(`{"id":42}`)}
	kafka := newKafka()
	clock := clocktest.New(time.Date(2024, 3, 10, 12, 0, 0, 0, havana))
	cfg := poller.Config{Location: havana, Interval: time.Second, Lookback: time.Hour, StartFrom: "2024-03-09",
		BatchSize: 3, Clock: clock.Now}
	p, err := poller.New(cfg, dateSource{loc: havana, recs: []schema.Record{rec}}, kafka, &pollertest.MemStore{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Cycle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := kafka.counts()[42]; n != 1 {
		t.Fatalf("the record of %s published %d times, want once (cycle: %+v)", ft, n, res)
	}
}

// TestACycleAfterAMidnightWhereSummerTimeBeganEnds: a next day computed as midnight stays at 23:00
// of 9 March in Havana (its date is still 9 March), so counting the days of a window that reaches
// 11 March never ended.
func TestACycleAfterAMidnightWhereSummerTimeBeganEnds(t *testing.T) {
	havana, err := time.LoadLocation("America/Havana")
	if err != nil {
		t.Fatal(err)
	}
	clock := clocktest.New(time.Date(2024, 3, 11, 12, 0, 0, 0, havana))
	cfg := poller.Config{Location: havana, Interval: time.Second, Lookback: time.Hour, StartFrom: "2024-03-09",
		BatchSize: 3, Clock: clock.Now}
	p, err := poller.New(cfg, dateSource{loc: havana}, newKafka(), &pollertest.MemStore{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := p.Cycle(context.Background()); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cycle over 9..11 March in America/Havana did not end within 5 s")
	}
}

// TestStartOfDayIsTheFirstInstantOfTheDay: every quarter hour of 2024 (and of 2018 in Sao Paulo,
// which then began summer time at midnight) lies in the day StartOfDay gives, which begins on its
// date and whose instant before is on another date; ParseTimeOrDate of a date gives the same start.
func TestStartOfDayIsTheFirstInstantOfTheDay(t *testing.T) {
	for _, c := range []struct {
		zone string
		year int
	}{{"America/Havana", 2024}, {"America/Santiago", 2024}, {"America/New_York", 2024}, {"Asia/Shanghai", 2024}, {"America/Sao_Paulo", 2018}} {
		loc, err := time.LoadLocation(c.zone)
		if err != nil {
			t.Fatal(err)
		}
		end := time.Date(c.year+1, 1, 1, 12, 0, 0, 0, loc)
		for at := time.Date(c.year, 1, 1, 12, 0, 0, 0, loc); at.Before(end); at = at.Add(15 * time.Minute) {
			s := poller.StartOfDay(at, loc)
			date := at.In(loc).Format(poller.DateLayout)
			if s.After(at) || s.In(loc).Format(poller.DateLayout) != date || s.Add(-time.Nanosecond).In(loc).Format(poller.DateLayout) == date {
				t.Fatalf("%s: StartOfDay(%s) = %s, not the first instant of %s", c.zone, at, s, date)
			}
			if p, err := poller.ParseTimeOrDate(date, loc); err != nil || !p.Equal(s) {
				t.Fatalf("%s: ParseTimeOrDate(%s) = %s, %v; want %s", c.zone, date, p, err, s)
			}
		}
	}
}
