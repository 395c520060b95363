package wshoto

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
)

// FuzzDecodeList feeds arbitrary bodies to the list decoder: it must never panic, and whatever it
// accepts must be valid JSON whose records' raw bytes are compact JSON objects with the id and
// follow_time the decoder reported. The seed corpus is in testdata/fuzz/FuzzDecodeList, so plain
// `go test` runs it.
func FuzzDecodeList(f *testing.F) {
	f.Add([]byte(`{"code":0,"msg":"请求成功","data":{"total":1,"records":[{"id":9007199254740993,"follow_time":1707292800000,"ext_score":12.50}]},"sub_code":"00000"}`))
	f.Add([]byte(`{"code":3,"msg":"系统繁忙","data":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeList(body, 100)
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON: %q", body)
		}
		for i, r := range got.records {
			var buf bytes.Buffer
			if err := json.Compact(&buf, r.Raw); err != nil {
				t.Fatalf("record %d raw is not JSON: %q: %v", i, r.Raw, err)
			}
			if !bytes.Equal(buf.Bytes(), r.Raw) {
				t.Fatalf("record %d raw is not compact: %q", i, r.Raw)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(r.Raw, &fields); err != nil {
				t.Fatalf("record %d raw is not an object: %q", i, r.Raw)
			}
			if !sameInt(fields["id"], r.ID) || !sameInt(fields["follow_time"], r.FollowTime) {
				t.Fatalf("record %d: decoded id %d follow_time %d from %q", i, r.ID, r.FollowTime, r.Raw)
			}
		}
	})
}

// sameInt reports whether raw, a JSON integer or a string of one, is v.
func sameInt(raw json.RawMessage, v int64) bool {
	s := string(raw)
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n == v
}
