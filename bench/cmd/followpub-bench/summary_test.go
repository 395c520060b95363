package main

import "testing"

func TestParseBench(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkHotPath/decode-2         	     100	   8510000 ns/op	       851.0 ns/record	       960.0 cpu-ns/record	       559.0 B/record	         0.3300 allocs/record	 5590000 B/op	    3300 allocs/op
BenchmarkHotPath/cycle/new-2      	      50	  10090000 ns/op	      1009 ns/record	      1641 cpu-ns/record	      1306 B/record	         0.3700 allocs/record
BenchmarkHotPath/cycle/new-2      	      50	  10090000 ns/op	      1041 ns/record	      1641 cpu-ns/record	      1306 B/record	         0.3700 allocs/record
PASS
`)
	got := parseBench(out)
	if v := got["cycle/new"]["ns/record"]; len(v) != 2 || v[0] != 1009 || v[1] != 1041 {
		t.Errorf("cycle/new ns/record = %v, want [1009 1041]", v)
	}
	if v := got["decode"]["allocs/record"]; len(v) != 1 || v[0] != 0.33 {
		t.Errorf("decode allocs/record = %v, want [0.33]", v)
	}
	if len(got) != 2 {
		t.Errorf("parsed %d benchmarks, want 2: %v", len(got), got)
	}
}
