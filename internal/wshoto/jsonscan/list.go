package jsonscan

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/followpub/followpub/schema"
)

// maxDepth bounds the nesting of JSON values the decoder accepts.
const maxDepth = 256

// List is a decoded list answer.
type List struct {
	// Code, Msg and SubCode are the answer's `code`, `msg` and `sub_code`; Msg and SubCode are
	// decoded only when Code is not 0.
	Code    int64
	Msg     string
	SubCode string
	// Total and Records are `data.total` and `data.records`, set only when Code is 0.
	Total   int64
	Records []schema.Record
}

// DecodeList decodes a list answer without passing numbers through float64 and without building a
// map per record. Each record's Raw is the record's bytes in body (compact already) or a compacted
// copy; either way it is capped so that appending to it cannot overwrite a neighbour. hint is the
// expected number of records.
//
// The envelope must be an object with an integer `code`. When code is 0, `data` must be an object
// with a `total` and `records`, an array of objects each with an `id` and a `follow_time`;
// `records` may be null only when total is 0. The API's longs (`total`, `id`, `follow_time`, and
// `create_time` when present and not null) follow one rule: a JSON integer or a string of decimal
// digits, as Java back ends that quote longs send them. When code is not 0, data is not looked
// at. Duplicate `id` or `follow_time` keys in one record are an error: consumers would disagree
// about which one counts.
//
// Every error it returns is about a body that is not this shape; it says what and where.
func DecodeList(body []byte, hint int) (List, error) {
	d := decoder{b: body}
	var out List
	if err := d.list(&out, hint); err != nil {
		return List{}, err
	}
	return out, nil
}

// decoder is a strict, allocation-light JSON scanner over one response body.
type decoder struct {
	b []byte
	i int
	// ws is set whenever whitespace was skipped; the record scanner uses it to know whether the
	// record needs compacting.
	ws bool
	// cbuf holds the compacted copies of records that arrived with whitespace.
	cbuf []byte
}

// syntaxError describes a JSON syntax problem at an offset.
type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.off) }

func (d *decoder) errf(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...), off: d.i}
}

func (d *decoder) unexpected(want string) error {
	if d.i >= len(d.b) {
		return d.errf("unexpected end of body, want %s", want)
	}
	return d.errf("invalid character %q, want %s", d.b[d.i], want)
}

func (d *decoder) skipWS() {
	// Compact JSON has none: one comparison, inlined, instead of a call per token.
	if d.i < len(d.b) && d.b[d.i] > ' ' {
		return
	}
	d.skipSpaces()
}

// skipSpaces is skipWS's slow path: it skips the whitespace at d.i, noting any in d.ws.
func (d *decoder) skipSpaces() {
	i := d.i
	for i < len(d.b) {
		switch d.b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			if i != d.i {
				d.ws = true
				d.i = i
			}
			return
		}
	}
	d.ws = d.ws || i != d.i
	d.i = i
}

// expect skips whitespace and consumes c.
func (d *decoder) expect(c byte) error {
	d.skipWS()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return nil
	}
	return d.unexpected(fmt.Sprintf("%q", c))
}

// list decodes the envelope.
func (d *decoder) list(out *List, hint int) error {
	d.skipWS()
	if d.i >= len(d.b) {
		return errors.New("empty body")
	}
	if d.b[d.i] != '{' {
		return d.errf("body is not a JSON object (starts with %q)", d.b[d.i])
	}
	var (
		haveCode, haveData bool
		msgAt, subAt       = -1, -1 // offsets of msg and sub_code, decoded only for a failure
		dataStart, dataEnd int
		dataDone           bool
		dataNull           bool
	)
	err := d.object(func(key []byte) error {
		switch string(key) {
		case "code":
			if err := once(&haveCode, "code"); err != nil {
				return err
			}
			v, err := d.int64Value("code", false)
			out.Code = v
			return err
		case "msg":
			d.skipWS()
			msgAt = d.i
			return d.skip(0)
		case "sub_code":
			d.skipWS()
			subAt = d.i
			return d.skip(0)
		case "data":
			if err := once(&haveData, "data"); err != nil {
				return err
			}
			d.skipWS()
			if haveCode && out.Code == 0 {
				dataDone = true
				return d.data(out, hint)
			}
			dataStart = d.i
			err := d.skip(0)
			dataEnd = d.i
			dataNull = string(d.b[dataStart:dataEnd]) == "null"
			return err
		default:
			return d.skip(0)
		}
	})
	if err != nil {
		return err
	}
	d.skipWS()
	if d.i != len(d.b) {
		return d.errf("trailing data after the body")
	}
	if !haveCode {
		return errors.New("no code in body")
	}
	if out.Code != 0 {
		// Strings are decoded only now: a successful page does not pay for them.
		for _, f := range []struct {
			at  int
			dst *string
		}{{msgAt, &out.Msg}, {subAt, &out.SubCode}} {
			if f.at >= 0 && d.b[f.at] == '"' {
				d.i = f.at
				_ = d.stringValue(f.dst)
			}
		}
		return nil
	}
	if dataDone {
		return nil
	}
	if !haveData || dataNull {
		return errors.New("code 0 but no data")
	}
	sub := decoder{b: d.b[:dataEnd], i: dataStart}
	if err := sub.data(out, hint); err != nil {
		return err
	}
	d.cbuf = sub.cbuf
	return nil
}

// data decodes the `data` object.
func (d *decoder) data(out *List, hint int) error {
	d.skipWS()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		if d.i < len(d.b) && d.b[d.i] == 'n' {
			return errors.New("code 0 but no data")
		}
		return d.errf("data is not an object")
	}
	var haveTotal, haveRecords, nullRecords bool
	err := d.object(func(key []byte) error {
		switch string(key) {
		case "total":
			if err := once(&haveTotal, "data.total"); err != nil {
				return err
			}
			v, err := d.int64Value("data.total", true)
			out.Total = v
			return err
		case "records":
			if err := once(&haveRecords, "data.records"); err != nil {
				return err
			}
			d.skipWS()
			if d.i < len(d.b) && d.b[d.i] == 'n' {
				nullRecords = true
				return d.literal("null")
			}
			if d.i >= len(d.b) || d.b[d.i] != '[' {
				return d.errf("data.records is not an array")
			}
			return d.records(out, hint)
		default:
			return d.skip(0)
		}
	})
	if err != nil {
		return err
	}
	return out.checkData(haveTotal, haveRecords, nullRecords)
}

// once marks the member what as seen, and says so when it was seen before: consumers would
// disagree about which one counts.
func once(seen *bool, what string) error {
	if *seen {
		return fmt.Errorf("duplicate key %s", what)
	}
	*seen = true
	return nil
}

// checkData says what is missing or contradictory in a decoded `data` object.
func (out *List) checkData(haveTotal, haveRecords, nullRecords bool) error {
	switch {
	case !haveTotal:
		return errors.New("no data.total")
	case out.Total < 0:
		return fmt.Errorf("data.total %d is negative", out.Total)
	case !haveRecords:
		return errors.New("no data.records")
	case nullRecords && out.Total != 0:
		return fmt.Errorf("data.records is null but data.total is %d", out.Total)
	}
	return nil
}

// records decodes the records array; d.b[d.i] is '['.
func (d *decoder) records(out *List, hint int) error {
	d.i++
	if hint < 0 || hint > 1000 {
		hint = 0
	}
	out.Records = make([]schema.Record, 0, hint)
	d.skipWS()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return nil
	}
	for n := 0; ; n++ {
		rec, err := d.record(n)
		if err != nil {
			return err
		}
		out.Records = append(out.Records, rec)
		if more, err := d.more(']', "',' or ']' in data.records"); !more {
			return err
		}
	}
}

// record decodes data.records[n].
func (d *decoder) record(n int) (schema.Record, error) {
	d.skipWS()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		if d.i >= len(d.b) {
			return schema.Record{}, d.unexpected(fmt.Sprintf("record %d", n))
		}
		return schema.Record{}, d.errf("record %d is not an object", n)
	}
	start := d.i
	d.ws = false
	var rec schema.Record
	var haveID, haveTime bool
	var err error
	for first := true; err == nil; first = false {
		var key []byte
		var ok bool
		if key, ok, err = d.member(first); !ok {
			break
		}
		switch string(key) {
		case "id":
			if haveID {
				err = fmt.Errorf("record %d has a duplicate id", n)
			} else {
				haveID = true
				rec.ID, err = d.int64Value("id", true)
			}
		case "follow_time":
			if haveTime {
				err = fmt.Errorf("record %d has a duplicate follow_time", n)
			} else {
				haveTime = true
				rec.FollowTime, err = d.int64Value("follow_time", true)
			}
		case "create_time":
			// Not used, but a long like the others: held to the same rule, null allowed.
			d.skipWS()
			if d.i < len(d.b) && d.b[d.i] == 'n' {
				err = d.literal("null")
			} else {
				_, err = d.int64Value("create_time", true)
			}
		default:
			err = d.skip(1)
		}
	}
	if err != nil {
		return schema.Record{}, fmt.Errorf("record %d: %w", n, err)
	}
	if !haveID {
		return schema.Record{}, fmt.Errorf("record %d has no id", n)
	}
	if !haveTime {
		return schema.Record{}, fmt.Errorf("record %d (id %d) has no follow_time", n, rec.ID)
	}
	raw := d.b[start:d.i:d.i]
	if d.ws {
		if d.cbuf == nil {
			d.cbuf = make([]byte, 0, len(d.b)-start)
		}
		s := len(d.cbuf)
		d.cbuf = appendCompact(d.cbuf, raw)
		raw = d.cbuf[s:len(d.cbuf):len(d.cbuf)]
	}
	rec.Raw = json.RawMessage(raw)
	return rec, nil
}

// appendCompact appends src, a valid JSON value, to dst without the whitespace outside strings.
func appendCompact(dst, src []byte) []byte {
	inStr, esc := false, false
	for _, c := range src {
		if inStr {
			dst = append(dst, c)
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			inStr = true
		}
		dst = append(dst, c)
	}
	return dst
}

// object scans an object at d.i (which the caller has checked is '{'), calling member for each
// key with d.i at the value (whitespace before the value not yet skipped). The key slice is only
// valid during the call.
func (d *decoder) object(member func(key []byte) error) error {
	for first := true; ; first = false {
		key, ok, err := d.member(first)
		if !ok {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
	}
}

// member scans up to the next member's value: first is set with d.i at the object's '{' (which
// the caller has checked), unset after a value. It returns the key (valid until the next scan)
// with d.i at the value, whitespace before it not yet skipped; or ok false, and err nil, once the
// closing '}' is consumed. The hot loops (record, skip) call it directly, not through object.
func (d *decoder) member(first bool) (key []byte, ok bool, err error) {
	b := d.b
	switch {
	case first:
		d.i++ // the '{' the caller found
		d.skipWS()
		if d.i < len(b) && b[d.i] == '}' {
			d.i++
			return nil, false, nil
		}
	case d.i < len(b) && b[d.i] == ',': // compact JSON: no call to more
		d.i++
	default:
		if more, err := d.more('}', "',' or '}'"); !more {
			return nil, false, err
		}
	}
	d.skipWS()
	// A key of ordinary bytes followed by its ':', as compact JSON has it, in one step.
	if i := d.i; i < len(b) && b[i] == '"' {
		if j := ordinary(b, i+1); j+1 < len(b) && b[j] == '"' && b[j+1] == ':' {
			d.i = j + 2
			return b[i+1 : j], true, nil
		}
	}
	if key, err = d.key(); err != nil {
		return nil, false, err
	}
	if err := d.expect(':'); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// more consumes the ',' or the closing byte end after a member or an element, and reports whether
// another one follows; what names the bytes expected, for the error.
func (d *decoder) more(end byte, what string) (bool, error) {
	d.skipWS()
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case ',':
			d.i++
			return true, nil
		case end:
			d.i++
			return false, nil
		}
	}
	return false, d.unexpected(what)
}

// key scans an object key and returns its unescaped bytes.
func (d *decoder) key() ([]byte, error) {
	start := d.i
	if start >= len(d.b) || d.b[start] != '"' {
		return nil, d.unexpected("an object key")
	}
	escaped, err := d.str()
	if err != nil {
		return nil, err
	}
	if !escaped {
		return d.b[start+1 : d.i-1], nil
	}
	var s string
	if err := json.Unmarshal(d.b[start:d.i], &s); err != nil {
		return nil, d.errf("invalid key: %v", err)
	}
	return []byte(s), nil
}

// str scans a string at d.i (which must be '"') and reports whether it contains escapes.
func (d *decoder) str() (escaped bool, err error) {
	b, i := d.b, d.i+1
	for {
		if i = ordinary(b, i); i >= len(b) {
			break
		}
		switch b[i] {
		case '"':
			d.i = i + 1
			return escaped, nil
		case '\\':
			escaped = true
			i++
			if i >= len(b) {
				d.i = i
				return false, d.errf("unterminated string")
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(b) {
					d.i = i
					return false, d.errf("unterminated string")
				}
				for k := 1; k <= 4; k++ {
					if !isHex(b[i+k]) {
						d.i = i
						return false, d.errf("invalid \\u escape in string")
					}
				}
				i += 5
			default:
				d.i = i
				return false, d.errf("invalid escape in string")
			}
		default:
			if b[i] >= 0x20 { // an ordinary byte in the last few, which ordinary leaves
				i++
				continue
			}
			d.i = i
			return false, d.errf("control character in string")
		}
	}
	d.i = i
	return false, d.errf("unterminated string")
}

// ordinary skips, eight bytes at a time, the ordinary string bytes from i: it returns the index
// of the first '"', '\\' or control character, or of a byte among the last seven of b, not
// looked at. Callers check b at the index. Most of a page is strings; ordinary is inlined.
func ordinary(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if m := special(binary.LittleEndian.Uint64(b[i : i+8])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	return i
}

// special marks, in the high bit of each of w's bytes, those that end a run of ordinary string
// bytes: '"', '\\' and control characters (below 0x20). Bytes are in little-endian order, so the
// lowest mark is the first such byte. Marks above the lowest may be false (a borrow carries into
// the next byte), never the lowest one, which is all str uses. UTF-8 bytes (0x80 and up) are never
// marked.
func special(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := w ^ (ones * '"')
	s := w ^ (ones * '\\')
	// (x-ones)&^x marks x's zero bytes; '"' and '\\' are below 0x80, so q's and s's high bits
	// are w's, and one &^w serves the three.
	return ((q - ones) | (s - ones) | (w - ones*0x20)) &^ w & highs
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// stringValue scans a string value and stores it in *dst; null leaves *dst unchanged.
func (d *decoder) stringValue(dst *string) error {
	d.skipWS()
	if d.i < len(d.b) && d.b[d.i] == 'n' {
		return d.literal("null")
	}
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return d.unexpected("a string")
	}
	start := d.i
	escaped, err := d.str()
	if err != nil {
		return err
	}
	if !escaped {
		*dst = string(d.b[start+1 : d.i-1])
		return nil
	}
	return json.Unmarshal(d.b[start:d.i], dst)
}

// int64Value scans an integer value named name. With allowString, a string of decimal digits
// (optionally with a leading minus) is accepted too. Fractions, exponents, null and overflow are
// errors.
func (d *decoder) int64Value(name string, allowString bool) (int64, error) {
	d.skipWS()
	if d.i >= len(d.b) {
		return 0, d.unexpected(name)
	}
	if v, ok := d.smallInt(); ok {
		return v, nil
	}
	c := d.b[d.i]
	if c == '"' && allowString {
		start := d.i
		if _, err := d.str(); err != nil {
			return 0, err
		}
		v, ok := parseInt(d.b[start+1 : d.i-1])
		if !ok {
			return 0, fmt.Errorf("%s %s is not a decimal int64 (a string must hold only digits, an optional leading minus, within int64)", name, d.b[start:d.i])
		}
		return v, nil
	}
	if c != '-' && (c < '0' || c > '9') {
		if c == 'n' {
			return 0, fmt.Errorf("%s is null", name)
		}
		return 0, d.errf("%s is not an integer", name)
	}
	start := d.i
	isInt, err := d.number()
	if err != nil {
		return 0, err
	}
	if !isInt {
		return 0, fmt.Errorf("%s %s is not an integer", name, d.b[start:d.i])
	}
	v, ok := parseInt(d.b[start:d.i])
	if !ok {
		return 0, fmt.Errorf("%s %s overflows int64", name, d.b[start:d.i])
	}
	return v, nil
}

// smallInt decodes, in one pass, the integer at d.i when it has 1 to 18 digits (so it fits an
// int64), no leading zero and no fraction or exponent, as ids and times have; otherwise it
// consumes nothing and reports false, and the full scan decodes or rejects the value.
func (d *decoder) smallInt() (int64, bool) {
	b, i := d.b, d.i
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	if i >= len(b) || b[i] < '1' || b[i] > '9' {
		return 0, false
	}
	var v int64
	for end := min(i+18, len(b)); i < end && '0' <= b[i] && b[i] <= '9'; i++ {
		v = v*10 + int64(b[i]-'0')
	}
	if i < len(b) {
		if c := b[i]; '0' <= c && c <= '9' || c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	d.i = i
	if neg {
		v = -v
	}
	return v, true
}

// parseInt parses an optional minus and decimal digits (no leading zeros but "0") into an int64.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0') // 19 digits cannot overflow uint64
	}
	if neg {
		if u > uint64(math.MaxInt64)+1 {
			return 0, false
		}
		return int64(-u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// number scans a JSON number and reports whether it is an integer (no fraction, no exponent).
func (d *decoder) number() (isInt bool, err error) {
	// Scans in locals: through d, every byte would be a load and a store of d.i.
	b, i := d.b, d.i
	digits := func() {
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	fail := func(what string) (bool, error) {
		d.i = i
		return false, d.unexpected(what)
	}
	isInt = true
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		digits()
	default:
		return fail("a digit")
	}
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return fail("a digit after '.'")
		}
		digits()
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return fail("a digit in the exponent")
		}
		digits()
	}
	d.i = i
	return isInt, nil
}

// literal consumes the literal word.
func (d *decoder) literal(word string) error {
	if len(d.b)-d.i >= len(word) && string(d.b[d.i:d.i+len(word)]) == word {
		d.i += len(word)
		return nil
	}
	return d.unexpected(word)
}

// skip validates and skips one value; depth is the nesting depth of the value's container.
func (d *decoder) skip(depth int) error {
	if depth > maxDepth {
		return d.errf("nesting deeper than %d", maxDepth)
	}
	d.skipWS()
	if d.i >= len(d.b) {
		return d.unexpected("a value")
	}
	switch c := d.b[d.i]; {
	case c == '"':
		// Most strings are ordinary bytes to the closing quote: then no call to str.
		if j := ordinary(d.b, d.i+1); j < len(d.b) && d.b[j] == '"' {
			d.i = j + 1
			return nil
		}
		_, err := d.str()
		return err
	case c == '{':
		for first := true; ; first = false {
			_, ok, err := d.member(first)
			if !ok {
				return err
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == '[':
		d.i++
		d.skipWS()
		if d.i < len(d.b) && d.b[d.i] == ']' {
			d.i++
			return nil
		}
		for {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			if more, err := d.more(']', "',' or ']'"); !more {
				return err
			}
		}
	case c == '-' || '0' <= c && c <= '9':
		_, err := d.number()
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	default:
		return d.unexpected("a value")
	}
}
