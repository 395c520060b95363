package jsonscan

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// FuzzDecodeList feeds arbitrary bodies to the list decoders: they must never panic, and whatever
// one accepts must be valid JSON whose records' raw bytes are compact JSON objects with the id and
// follow_time the decoder reported. The scanner and the jsontext decoder must agree on what they
// accept and what they decode, but for nesting deeper than the scanner's limit (jsontext's cannot
// be set). The seed corpus is in testdata/fuzz/FuzzDecodeList, so plain `go test` runs it.
func FuzzDecodeList(f *testing.F) {
	f.Add([]byte(`{"code":0,"msg":"请求成功","data":{"total":1,"records":[{"id":9007199254740993,"follow_time":1707292800000,"ext_score":12.50}]},"sub_code":"00000"}`))
	f.Add([]byte(`{"code":3,"msg":"系统繁忙","data":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := DecodeList(body, 100)
		ref, refErr := decodeListJSONText(body, 100)
		switch {
		case err != nil && refErr == nil && strings.Contains(err.Error(), "nesting deeper"):
		case (err == nil) != (refErr == nil):
			t.Fatalf("the decoders disagree on %q: scanner %v, jsontext %v", body, err, refErr)
		case err == nil && !sameList(got, ref):
			t.Fatalf("the decoders decode %q differently:\n scanner  %+v\n jsontext %+v", body, got, ref)
		}
		if refErr == nil {
			checkList(t, body, ref)
		}
		if err != nil {
			return
		}
		checkList(t, body, got)
	})
}

// sameList reports whether a and b hold the same code, total and records (Msg and SubCode are
// left out: they are decoded only for errors, and invalid UTF-8 in them is repaired differently).
func sameList(a, b List) bool {
	if a.Code != b.Code || a.Total != b.Total || len(a.Records) != len(b.Records) {
		return false
	}
	for i := range a.Records {
		ra, rb := a.Records[i], b.Records[i]
		if ra.ID != rb.ID || ra.FollowTime != rb.FollowTime || !bytes.Equal(ra.Raw, rb.Raw) {
			return false
		}
	}
	return true
}

// checkList fails t unless got, decoded from body, passes the oracle.
func checkList(t *testing.T, body []byte, got List) {
	t.Helper()
	if !json.Valid(body) {
		t.Fatalf("accepted invalid JSON: %q", body)
	}
	for i, r := range got.Records {
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
