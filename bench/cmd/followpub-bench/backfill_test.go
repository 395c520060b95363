package main

import (
	"reflect"
	"testing"
)

func TestOwnCPUTable(t *testing.T) {
	d := &driver{opts: options{records: 1000}, bins: []binary{{name: "followpub"}, {name: "variant"}}}
	type run struct{ limit, own spend }
	runs := map[string][]run{
		"followpub": {
			{spend{cpu: 0.002, faults: 10}, spend{cpu: 0.004, faults: 60}},
			{spend{cpu: 0.002, faults: 30}, spend{cpu: 0.003, faults: 80}},
			{spend{cpu: 0.004, faults: 20}, spend{cpu: 0.010, faults: 70}},
		},
	}
	tb := ownCPUTable(d, "lz4", func(bin string) []run { return runs[bin] },
		func(r run) (limit, own spend) { return r.limit, r.own })

	if len(tb.rows) != 1 {
		t.Fatalf("rows = %v, want one (the variant has no runs)", tb.rows)
	}
	want := []string{"followpub `run --once`", "2.00", "4.00", "**2.00×** (2.00×, 1.50×, 2.50×)", "≤ 1.5×", "20", "70"}
	if got := tb.rows[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("row = %q,\nwant %q", got, want)
	}
	if len(tb.head) != len(want) {
		t.Errorf("%d columns in the head, %d in the row", len(tb.head), len(want))
	}
	if len(d.goals) != 1 || d.goals[0].met {
		t.Errorf("goals = %+v, want one, missed", d.goals)
	}
}
