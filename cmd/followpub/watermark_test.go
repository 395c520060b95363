package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// show and reset of a state that does not exist report it and leave no file behind; set creates it.
func TestWatermarkOfAMissingStateCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "missing.state")
	t.Setenv("FOLLOWPUB_STATE_PATH", path)
	t.Setenv("FOLLOWPUB_START_FROM", "2024-02-01")
	run := func(args ...string) string {
		t.Helper()
		var out, errs bytes.Buffer
		if err := cmdWatermark(context.Background(), args, &out, &errs); err != nil {
			t.Fatalf("watermark %v: %v\n%s", args, err, errs.String())
		}
		return out.String()
	}
	files := func() []string {
		t.Helper()
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}

	var st struct {
		Exists    *bool  `json:"exists"`
		Seen      int    `json:"seen"`
		StatePath string `json:"state_path"`
	}
	out := run("show")
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Exists == nil || *st.Exists || st.StatePath != path || st.Seen != 0 {
		t.Fatalf("watermark show of a missing state printed %q (%v)", out, err)
	}
	if out := run("reset"); !strings.Contains(out, "does not exist; nothing to reset") {
		t.Fatalf("watermark reset of a missing state printed %q", out)
	}
	if f := files(); len(f) != 0 {
		t.Fatalf("show and reset of a missing state created %v", f)
	}
	run("set", "2024-02-03")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("watermark set did not create the state: %v", err)
	}
	if out := run("show"); !strings.Contains(out, `"floor_ms":1706889600000,`) { // 2024-02-03 in Asia/Shanghai
		t.Fatalf("watermark show after set printed %q", out)
	}
}
