package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestDecodeListBigIDsByteForByte(t *testing.T) {
	for _, dec := range listDecoders {
		t.Run(dec.name, func(t *testing.T) {
			recs := []string{
				`{"id":9007199254740993,"content":"系统自动跟进","follow_time":1707292800000,"ext_score":12.50}`,
				`{"id":9223372036854775807,"follow_time":1707292800001,"ext":{"ratio":1.0E2,"tags":["自动"]},"n":null}`,
				`{"follow_time":-1,"id":"9007199254740995","target":{"is_ai":true}}`,
			}
			body := `{"code":0,"msg":"请求成功","data":{"total":3,"records":[` + strings.Join(recs, ",") + `]},"sub_code":"00000"}`
			got, err := dec.decode([]byte(body), 100)
			if err != nil {
				t.Fatal(err)
			}
			wantIDs := []int64{9007199254740993, 9223372036854775807, 9007199254740995}
			wantTimes := []int64{1707292800000, 1707292800001, -1}
			if got.Total != 3 || len(got.Records) != 3 {
				t.Fatalf("total %d, %d records; want 3, 3", got.Total, len(got.Records))
			}
			for i, r := range got.Records {
				if r.ID != wantIDs[i] || r.FollowTime != wantTimes[i] {
					t.Errorf("record %d: id %d follow_time %d; want %d %d", i, r.ID, r.FollowTime, wantIDs[i], wantTimes[i])
				}
				if string(r.Raw) != recs[i] {
					t.Errorf("record %d raw:\n got %s\nwant %s", i, r.Raw, recs[i])
				}
				if cap(r.Raw) != len(r.Raw) {
					t.Errorf("record %d: raw has spare capacity %d; an append would overwrite its neighbour", i, cap(r.Raw)-len(r.Raw))
				}
			}
		})
	}
}

func TestDecodeListCompactsWhitespace(t *testing.T) {
	for _, dec := range listDecoders {
		t.Run(dec.name, func(t *testing.T) {
			body := "{\n  \"code\": 0,\n  \"msg\": \"ok\",\n  \"data\": {\n    \"total\": 2,\n    \"records\": [\n" +
				"      { \"id\" : 1 , \"content\": \"a  b\\\" \\n c\", \"target\": { \"is_ai\": false },\n \"follow_time\":\t5 },\n" +
				"      {\"id\":2,\"follow_time\":6}\n    ]\n  }\n}\n"
			got, err := dec.decode([]byte(body), 2)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{
				`{"id":1,"content":"a  b\" \n c","target":{"is_ai":false},"follow_time":5}`,
				`{"id":2,"follow_time":6}`,
			}
			for i, r := range got.Records {
				if string(r.Raw) != want[i] {
					t.Errorf("record %d raw:\n got %s\nwant %s", i, r.Raw, want[i])
				}
				var buf bytes.Buffer
				if err := json.Compact(&buf, r.Raw); err != nil || buf.String() != string(r.Raw) {
					t.Errorf("record %d is not compact JSON: %s", i, r.Raw)
				}
			}
		})
	}
}

func TestDecodeListNonZeroCode(t *testing.T) {
	for _, dec := range listDecoders {
		t.Run(dec.name, func(t *testing.T) {
			for _, body := range []string{
				`{"code":3,"msg":"系统繁忙","data":null,"sub_code":"B0001"}`,
				`{"data":"whatever","code":10010,"msg":"access_token已过期"}`,
				`{"code":3}`,
			} {
				got, err := dec.decode([]byte(body), 0)
				if err != nil {
					t.Errorf("%s: %v", body, err)
					continue
				}
				if got.Code == 0 {
					t.Errorf("%s: code 0", body)
				}
			}
			got, _ := dec.decode([]byte(`{"code":3,"msg":"系统\u7e41忙","sub_code":"B0001"}`), 0)
			if got.Msg != "系统繁忙" || got.SubCode != "B0001" {
				t.Errorf("msg %q sub_code %q", got.Msg, got.SubCode)
			}
		})
	}
}

func TestDecodeListAcceptsDocumentedVariants(t *testing.T) {
	for _, dec := range listDecoders {
		t.Run(dec.name, func(t *testing.T) {
			for _, body := range []string{
				`{"code":0,"data":{"total":0,"records":[]}}`,
				`{"code":0,"data":{"total":0,"records":null}}`,
				`{"data":{"records":[{"id":1,"follow_time":2}],"total":1},"code":0}`, // data before code
				`{"code":0,"data":{"total":1,"records":[{"\u0069d":1,"follow_time":2}]}}`,
				`{"code":0,"data":{"total":1,"records":[{"id":-0,"follow_time":0}],"extra":[1,{"a":[]}]},"x":true}`,
			} {
				if _, err := dec.decode([]byte(body), 0); err != nil {
					t.Errorf("%s: %v", body, err)
				}
			}
		})
	}
}

func TestDecodeListLongsQuotedOrNot(t *testing.T) {
	for _, dec := range listDecoders {
		t.Run(dec.name, func(t *testing.T) {
			// total, id, follow_time and create_time: each a JSON integer or a string of decimal digits.
			body := func(total, id, ft, ct string) string {
				return `{"code":0,"data":{"total":` + total + `,"records":[{"id":` + id + `,"follow_time":` + ft +
					`,"create_time":` + ct + `}]}}`
			}
			for _, quote := range []struct{ total, id, ft, ct bool }{
				{}, {total: true}, {id: true}, {ft: true}, {ct: true}, {true, true, true, true},
			} {
				q := func(on bool, v string) string {
					if on {
						return `"` + v + `"`
					}
					return v
				}
				b := body(q(quote.total, "1"), q(quote.id, "9007199254740993"), q(quote.ft, "1707292800000"), q(quote.ct, "-5"))
				got, err := dec.decode([]byte(b), 1)
				if err != nil {
					t.Errorf("%s: %v", b, err)
					continue
				}
				if got.Total != 1 || len(got.Records) != 1 || got.Records[0].ID != 9007199254740993 || got.Records[0].FollowTime != 1707292800000 {
					t.Errorf("%s: total %d, records %+v", b, got.Total, got.Records)
				}
			}
			if _, err := dec.decode([]byte(`{"code":0,"data":{"total":1,"records":[{"id":1,"follow_time":2,"create_time":null}]}}`), 1); err != nil {
				t.Errorf("create_time null: %v", err)
			}
			bad := []string{`"1e3"`, `""`, `"-"`, `"9223372036854775808"`, `"-9223372036854775809"`, `" 1"`, `"01"`, `"1.0"`, `"0x1"`}
			for _, field := range []string{"total", "id", "follow_time", "create_time"} {
				for _, v := range bad {
					vals := map[string]string{"total": "1", "id": "1", "follow_time": "2", "create_time": "3"}
					vals[field] = v
					b := body(vals["total"], vals["id"], vals["follow_time"], vals["create_time"])
					_, err := dec.decode([]byte(b), 1)
					name := field
					if field == "total" {
						name = "data.total"
					}
					if err == nil || !strings.Contains(err.Error(), name+" "+v+" is not a decimal int64") {
						t.Errorf("%s %s: error %v; want one saying %s %s is not a decimal int64", field, v, err, name, v)
					}
				}
			}
		})
	}
}

func TestDecodeListMalformed(t *testing.T) {
	rec := func(s string) string { return `{"code":0,"data":{"total":1,"records":[` + s + `]}}` }
	// want is what the error says; text, where it differs, is what the jsontext decoder's says
	// (its syntax errors are jsontext's own), "accepted" where that decoder accepts the body.
	tests := []struct {
		name, body, want, text string
	}{
		{"empty", ``, "empty body", ""},
		{"html", `<html><body>502</body></html>`, "not a JSON object", ""},
		{"array", `[]`, "not a JSON object", ""},
		{"no code", `{"msg":"ok","data":{"total":0,"records":[]}}`, "no code", ""},
		{"code as string", `{"code":"0"}`, "code is not an integer", ""},
		{"no data", `{"code":0,"msg":"ok"}`, "no data", ""},
		{"null data", `{"code":0,"data":null}`, "no data", ""},
		{"data not object", `{"code":0,"data":[]}`, "data is not an object", ""},
		{"no total", `{"code":0,"data":{"records":[]}}`, "no data.total", ""},
		{"negative total", `{"code":0,"data":{"total":-1,"records":[]}}`, "negative", ""},
		{"total float", `{"code":0,"data":{"total":1.5,"records":[]}}`, "not an integer", ""},
		{"no records", `{"code":0,"data":{"total":1}}`, "no data.records", ""},
		{"records object", `{"code":0,"data":{"total":1,"records":{}}}`, "data.records is not an array", ""},
		{"records string", `{"code":0,"data":{"total":1,"records":"x"}}`, "data.records is not an array", ""},
		{"records null with total", `{"code":0,"data":{"total":1,"records":null}}`, "null but data.total is 1", ""},
		{"record not object", rec(`1`), "record 0 is not an object", ""},
		{"no id", rec(`{"follow_time":1}`), "record 0 has no id", ""},
		{"no follow_time", rec(`{"id":7}`), "record 0 (id 7) has no follow_time", ""},
		{"id null", rec(`{"id":null,"follow_time":1}`), "id is null", ""},
		{"id float", rec(`{"id":1.5,"follow_time":1}`), "id 1.5 is not an integer", ""},
		{"id exponent", rec(`{"id":1e3,"follow_time":1}`), "id 1e3 is not an integer", ""},
		{"id overflow", rec(`{"id":9223372036854775808,"follow_time":1}`), "overflows int64", ""},
		{"id bad string", rec(`{"id":"12a","follow_time":1}`), "is not a decimal int64", ""},
		{"id bool", rec(`{"id":true,"follow_time":1}`), "id is not an integer", ""},
		{"follow_time float", rec(`{"id":1,"follow_time":1.0}`), "follow_time 1.0 is not an integer", ""},
		{"duplicate id", rec(`{"id":1,"id":2,"follow_time":1}`), "duplicate id", ""},
		{"truncated", `{"code":0,"data":{"total":3,"records":[{"id":1,"follow_user_id":"wx_`, "unterminated string", "unexpected EOF"},
		{"truncated after value", `{"code":0,"data":{"total":3,"records":[{"id":1,"follow_time":2}`, "unexpected end", "unexpected EOF"},
		{"trailing", `{"code":0,"data":{"total":0,"records":[]}} x`, "trailing data", ""},
		{"two objects", `{"code":3}{"code":0}`, "trailing data", ""},
		{"control char", rec("{\"id\":1,\"follow_time\":1,\"c\":\"a\x01\"}"), "control character", "expecting non-control character"},
		{"bad escape", rec(`{"id":1,"follow_time":1,"c":"\x"}`), "invalid escape", "invalid escape sequence"},
		{"bad literal", rec(`{"id":1,"follow_time":1,"c":tru}`), "want true", "in literal true"},
		{"leading zero", rec(`{"id":01,"follow_time":1}`), "want ',' or '}'", "expecting ',' or '}'"},
		{"deep", rec(`{"id":1,"follow_time":1,"c":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`), "nesting deeper", "accepted"},
		{"missing colon", `{"code" 0}`, `want ':'`, "expecting ':'"},
	}
	for _, dec := range listDecoders {
		t.Run(dec.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					want := tt.want
					if dec.name == "jsontext" && tt.text != "" {
						want = tt.text
					}
					_, err := dec.decode([]byte(tt.body), 1)
					switch {
					case want == "accepted":
						if err != nil {
							t.Fatalf("error %v; this decoder accepts %s", err, tt.body)
						}
					case err == nil:
						t.Fatalf("no error for %s", tt.body)
					case !strings.Contains(err.Error(), want):
						t.Errorf("error %q does not say %q", err, want)
					}
				})
			}
		})
	}
}

func TestDecodeListAgreesWithEncodingJSON(t *testing.T) {
	for _, dec := range listDecoders {
		t.Run(dec.name, func(t *testing.T) {
			body := []byte(`{"code":0,"msg":"请求成功","data":{"total":2,"records":[` +
				`{"id":1234567890,"follow_user_id":"user123","content":"系统自动跟进:客户状态变更","target":{"contact_id":"contact123","external_id":"external123","company_id":"company123","chat_id":"chat123","clue_id":"clue123","is_ai":true},"business_type":1,"business_id":"business123","title":"客户状态变更","follow_time":1707292800000,"create_time":1707292800000},` +
				`{"id":9007199254740993,"follow_time":1707292800000,"content":"\u003cb\u003e & \ud83d\ude80"}` +
				`]},"sub_code":"00000"}`)
			got, err := dec.decode(body, 2)
			if err != nil {
				t.Fatal(err)
			}
			var ref struct {
				Data struct {
					Records []json.RawMessage `json:"records"`
				} `json:"data"`
			}
			if err := json.Unmarshal(body, &ref); err != nil {
				t.Fatal(err)
			}
			for i, raw := range ref.Data.Records {
				var fields struct {
					ID         json.Number `json:"id"`
					FollowTime json.Number `json:"follow_time"`
				}
				if err := json.Unmarshal(raw, &fields); err != nil {
					t.Fatal(err)
				}
				if fields.ID.String() != itoa(got.Records[i].ID) || fields.FollowTime.String() != itoa(got.Records[i].FollowTime) {
					t.Errorf("record %d: got id %d follow_time %d; encoding/json says %s %s", i, got.Records[i].ID, got.Records[i].FollowTime, fields.ID, fields.FollowTime)
				}
				if !bytes.Equal(raw, got.Records[i].Raw) {
					t.Errorf("record %d raw differs:\n got %s\nwant %s", i, got.Records[i].Raw, raw)
				}
			}
		})
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// TestSpecialFindsTheFirstSpecialByte checks the eight-bytes-at-a-time scan of strings against a
// byte-by-byte one: every byte value at every position over a background of ordinary bytes, and
// random words biased towards the bytes around the boundaries (borrows are what could go wrong).
func TestSpecialFindsTheFirstSpecialByte(t *testing.T) {
	isSpecial := func(c byte) bool { return c < 0x20 || c == '"' || c == '\\' }
	first := func(w [8]byte) int {
		for i, c := range w {
			if isSpecial(c) {
				return i
			}
		}
		return 8
	}
	check := func(w [8]byte) {
		t.Helper()
		got := 8
		if m := special(binary.LittleEndian.Uint64(w[:])); m != 0 {
			got = bits.TrailingZeros64(m) / 8
		}
		if want := first(w); got != want {
			t.Fatalf("special(%q): first special byte at %d, want %d", w, got, want)
		}
	}
	for pos := range 8 {
		for c := range 256 {
			for _, bg := range []byte{'a', 0x20, 0x21, 0x23, 0x5d, 0x7f, 0x80, 0xe4, 0xff} {
				var w [8]byte
				for i := range w {
					w[i] = bg
				}
				w[pos] = byte(c)
				check(w)
			}
		}
	}
	edges := []byte{0, 1, 0x1f, 0x20, 0x21, '"', 0x23, '\\', 0x5b, 0x5d, 0x7f, 0x80, 0x9f, 0xa0, 0xff}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		var w [8]byte
		for i := range w {
			if r.IntN(2) == 0 {
				w[i] = edges[r.IntN(len(edges))]
			} else {
				w[i] = byte(r.IntN(256))
			}
		}
		check(w)
	}
}

// TestSmallIntAgreesWithTheFullScan holds the one-pass decoding of short integers to the full
// scan (number, then parseInt): where it decodes, the same value and end; where it declines, it
// consumes nothing. Ids and times as the API sends them must take it.
func TestSmallIntAgreesWithTheFullScan(t *testing.T) {
	inputs := []string{
		"0", "7", "-7", "-0", "10", "1700000000000384", "1707274881654", "-1",
		"123456789012345678", "-123456789012345678", "999999999999999999", "1234567890123456789",
		"9223372036854775807", "-9223372036854775808", "9223372036854775808", "12345678901234567890",
		"01", "-01", "1.5", "1e3", "1E3", "12.0", "-", "", "-a", "a", "1a", `"1"`, " 1",
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20_000 {
		var b []byte
		if r.IntN(4) == 0 {
			b = append(b, '-')
		}
		for range 1 + r.IntN(21) {
			b = append(b, byte('0'+r.IntN(10)))
		}
		if r.IntN(4) == 0 { // a non-digit among the digits, often one next to '0' or '9'
			const odd = "/:?@\x00\xb0\xff.e-"
			b[r.IntN(len(b))] = odd[r.IntN(len(odd))]
		}
		inputs = append(inputs, string(b)+string(",}.eE0 x"[r.IntN(8)]))
	}
	for _, s := range inputs {
		for _, in := range []string{s, s + ",", s + "}"} {
			d := decoder{b: []byte(in)}
			v, ok := d.smallInt()
			full := decoder{b: []byte(in)}
			isInt, err := full.number()
			fv, fok := parseInt(full.b[:full.i])
			switch {
			case !ok && d.i != 0:
				t.Errorf("smallInt(%q) declined but consumed %d bytes", in, d.i)
			case ok && (err != nil || !isInt || !fok || fv != v || full.i != d.i):
				t.Errorf("smallInt(%q) = %d ending at %d; the full scan says %d ending at %d (integer %v, fits %v, %v)", in, v, d.i, fv, full.i, isInt, fok, err)
			}
		}
	}
	for _, s := range []string{"1700000000000384,", "1707274881654}", "-1,", "100,", "999999999999999999"} {
		if d := (decoder{b: []byte(s)}); !func() bool { _, ok := d.smallInt(); return ok }() {
			t.Errorf("smallInt(%q) declined; ids and times must take the one-pass path", s)
		}
	}
}

// TestStrAgreesWithEncodingJSON holds str to encoding/json's reading of one string token, at
// every length up to a few words and so at every position against the eight-byte words and the
// end of the body, where the last bytes are looked at one by one: the same strings accepted, each
// ending at the same byte, escapes reported.
func TestStrAgreesWithEncodingJSON(t *testing.T) {
	pieces := []string{"a", "z", `"`, `\`, `\n`, `\"`, `\\`, `\u00e9`, `\u12`, `\x`, "\x00", "\x01", "\x1f", " ", "自", "\x7f", "\xff"}
	r := rand.New(rand.NewPCG(5, 6))
	for range 50_000 {
		var s strings.Builder
		s.WriteByte('"')
		for range r.IntN(24) {
			s.WriteString(pieces[r.IntN(len(pieces))])
		}
		if r.IntN(2) == 0 {
			s.WriteByte('"')
			s.WriteString(",1}]}}"[:r.IntN(7)])
		}
		body := []byte(s.String())
		d := decoder{b: body}
		escaped, err := d.str()
		dec := json.NewDecoder(bytes.NewReader(body))
		tok, refErr := dec.Token()
		if _, isString := tok.(string); refErr == nil && !isString {
			t.Fatalf("reference read %q as %T", body, tok)
		}
		switch {
		case (err == nil) != (refErr == nil):
			t.Fatalf("str(%q): error %v; encoding/json: %v", body, err, refErr)
		case err == nil && int64(d.i) != dec.InputOffset():
			t.Fatalf("str(%q) ends at %d; encoding/json at %d", body, d.i, dec.InputOffset())
		case err == nil && escaped != bytes.Contains(body[:d.i], []byte(`\`)):
			t.Fatalf("str(%q) reports escaped %v", body, escaped)
		}
	}
}

// TestDecodeListStringsAtTheEnd puts random strings as the last key and the last value of a
// body, where the word-at-a-time scans of keys (member) and skipped values (skip) leave the last
// bytes to be looked at one by one: the scanner must accept exactly the bodies that are valid.
func TestDecodeListStringsAtTheEnd(t *testing.T) {
	pieces := []string{"a", `"`, `\`, `\n`, `\u00e9`, `\x`, "\x01", "\x1f", " ", "自", ":"}
	r := rand.New(rand.NewPCG(7, 8))
	for range 20_000 {
		var s strings.Builder
		for range r.IntN(12) {
			s.WriteString(pieces[r.IntN(len(pieces))])
		}
		str := `"` + s.String() + `"`
		for _, body := range []string{`{"code":3,` + str + `:1}`, `{"code":3,"k":` + str + `}`} {
			_, err := DecodeList([]byte(body), 1)
			if valid := json.Valid([]byte(body)); valid != (err == nil) {
				t.Fatalf("DecodeList(%q): error %v; valid JSON %v", body, err, valid)
			}
		}
	}
}

// TestDecodeListEdgesOfTheFastPaths states, for the inputs the fast paths (smallInt, the word
// search, the member loop) decide, what the contract wants: the id decoded, or an error; and that
// a body cut near the value is an error, never a panic.
func TestDecodeListEdgesOfTheFastPaths(t *testing.T) {
	const bad = int64(-1 << 62) // marks a body that must be an error
	cases := []struct {
		rec  string
		want int64
	}{
		{`"id":123456789012345678`, 123456789012345678},
		{`"id":-123456789012345678`, -123456789012345678},
		{`"id":1234567890123456789`, 1234567890123456789},
		{`"id":9223372036854775807`, 9223372036854775807},
		{`"id":-9223372036854775808`, -9223372036854775808},
		{`"id":9223372036854775808`, bad},
		{`"id":-9223372036854775809`, bad},
		{`"id":18446744073709551617`, bad},
		{`"id":99999999999999999999`, bad},
		{`"id":"9223372036854775808"`, bad},
		{`"id":"1234567890123456789"`, 1234567890123456789},
		{`"id":0`, 0},
		{`"id":-0`, 0},
		{`"id":"-0"`, 0},
		{`"id":00`, bad},
		{`"id":01`, bad},
		{`"id":-01`, bad},
		{`"id":"01"`, bad},
		{`"id":+1`, bad},
		{`"id":--1`, bad},
		{`"id":-`, bad},
		{`"id":1.0`, bad},
		{`"id":1e3`, bad},
		{`"id":1E3`, bad},
		{`"id":123456789012345678e1`, bad},
		{`"id":123456789012345678.5`, bad},
		{`"id":1.`, bad},
		{`"id":1x`, bad},
		{`"id":1 `, 1},
		{`"id":` + "\t\n\r " + `7` + "\r\n", 7},
		{`"id":` + "\f" + `7`, bad},
		{`"id":` + "\v" + `7`, bad},
		{`"id":` + "\u00a0" + `7`, bad},
		{`"id":null`, bad},
		{`"id":"1 "`, bad},
		{`"id":"\u0031"`, bad}, // a string must hold only digits, as sent: not after unescaping
		{`"\u0069d":5`, 5},     // the key unescapes to id
		{`"i\u0064":5`, 5},
		{`"\u0069\u0064":5`, 5},
		{`"id ":5`, bad}, // not id: no id in the record
		{`"id":5,"\u0069d":6`, bad},
		{`"id":5,"id":5`, bad},
	}
	for _, c := range cases {
		for _, tail := range []string{"", strings.Repeat(" ", 1), strings.Repeat("x", 3)} {
			rec := `{` + c.rec + `,"follow_time":1}`
			if strings.Contains(c.rec, "follow") {
				rec = `{` + c.rec + `}`
			}
			body := `{"code":0,"msg":"` + tail + `","data":{"total":1,"records":[` + rec + `]}}`
			got, err := DecodeList([]byte(body), 1)
			switch {
			case c.want == bad && err == nil:
				t.Errorf("%s: accepted, id %d; want an error", body, got.Records[0].ID)
			case c.want != bad && err != nil:
				t.Errorf("%s: %v; want id %d", body, err, c.want)
			case c.want != bad && got.Records[0].ID != c.want:
				t.Errorf("%s: id %d; want %d", body, got.Records[0].ID, c.want)
			}
			// Cut where the value ends, at every length around it: an error, never a panic.
			for k := len(body) - 12; k < len(body); k++ {
				if _, err := DecodeList([]byte(body[:k]), 1); err == nil {
					t.Errorf("%q: a cut body accepted", body[:k])
				}
			}
		}
	}
}
