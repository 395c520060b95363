package jsonscan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/followpub/followpub/schema"
)

// listDecoders are the list decoders held to one contract: the scanner, and decodeListJSONText.
var listDecoders = []struct {
	name   string
	decode func([]byte, int) (List, error)
}{
	{"scan", DecodeList},
	{"jsontext", decodeListJSONText},
}

// decodeListJSONText is DecodeList on encoding/json/jsontext (the go-json-experiment module): the
// same contract, checked by the same tests and differentially by the fuzz oracle. It is the
// alternative the scanner is measured against (BenchmarkDecodeList, docs/BENCHMARKS.md).
func decodeListJSONText(body []byte, hint int) (List, error) {
	t := textDecoders.Get().(*textDecoder)
	defer textDecoders.Put(t)
	var out List
	if err := t.list(body, &out, hint); err != nil {
		return List{}, err
	}
	return out, nil
}

var textDecoders = sync.Pool{New: func() any {
	t := &textDecoder{}
	t.d = jsontext.NewDecoder(&t.buf)
	return t
}}

// textDecoder reads one body with a reused jsontext.Decoder. Duplicate names are checked only for
// the members the client reads, and invalid UTF-8 is passed through, as decodeList does; nesting
// is bounded by jsontext's own limit (10,000), which cannot be set.
type textDecoder struct {
	d    *jsontext.Decoder
	buf  bytes.Buffer // over body: jsontext reads a bytes.Buffer in place
	body []byte
	cbuf []byte
}

var textOptions = []jsontext.Options{
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
}

func (t *textDecoder) reset(body []byte) {
	t.body, t.cbuf = body, nil
	t.buf = *bytes.NewBuffer(body)
	t.d.Reset(&t.buf, textOptions...)
}

func (t *textDecoder) list(body []byte, out *List, hint int) error {
	t.reset(body)
	defer t.reset(nil)
	switch k := t.d.PeekKind(); {
	case len(bytes.TrimLeft(body, " \t\r\n")) == 0:
		return errors.New("empty body")
	case k != '{':
		return fmt.Errorf("body is not a JSON object (starts with %q)", bytes.TrimLeft(body, " \t\r\n")[0])
	}
	var (
		haveCode, haveData, dataDone, dataNull bool
		msg, sub, data                         jsontext.Value
	)
	err := t.object(func(name []byte) error {
		var err error
		switch string(name) {
		case "code":
			if err := once(&haveCode, "code"); err != nil {
				return err
			}
			out.Code, err = t.int64Value("code", false)
		case "msg":
			msg, err = t.d.ReadValue()
			msg = msg.Clone()
		case "sub_code":
			sub, err = t.d.ReadValue()
			sub = sub.Clone()
		case "data":
			if err := once(&haveData, "data"); err != nil {
				return err
			}
			if haveCode && out.Code == 0 {
				dataDone = true
				return t.data(out, hint)
			}
			data, err = t.d.ReadValue()
			dataNull = data.Kind() == 'n'
			data = data.Clone()
		default:
			err = t.d.SkipValue()
		}
		return err
	})
	if err != nil {
		return err
	}
	if _, err := t.d.ReadToken(); err != io.EOF {
		return fmt.Errorf("trailing data after the body at offset %d", t.d.InputOffset())
	}
	switch {
	case !haveCode:
		return errors.New("no code in body")
	case out.Code != 0:
		for _, f := range []struct {
			v   jsontext.Value
			dst *string
		}{{msg, &out.Msg}, {sub, &out.SubCode}} {
			if f.v.Kind() == '"' {
				if s, err := jsontext.AppendUnquote(nil, f.v); err == nil {
					*f.dst = string(s)
				}
			}
		}
		return nil
	case dataDone:
		return nil
	case !haveData || dataNull:
		return errors.New("code 0 but no data")
	}
	// data came before code: decode it now, from a copy, with the same decoder.
	t.reset(data)
	return t.data(out, hint)
}

// object reads an object, calling member with each name and the decoder at its value.
func (t *textDecoder) object(member func(name []byte) error) error {
	if _, err := t.d.ReadToken(); err != nil {
		return err
	}
	for t.d.PeekKind() == '"' {
		name, err := t.d.ReadValue()
		if err != nil {
			return err
		}
		if err := member(t.name(name)); err != nil {
			return err
		}
	}
	_, err := t.d.ReadToken() // '}', or the syntax error
	return err
}

// name returns an object name's unescaped bytes.
func (t *textDecoder) name(v jsontext.Value) []byte {
	if bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1]
	}
	s, _ := jsontext.AppendUnquote(nil, v)
	return s
}

func (t *textDecoder) data(out *List, hint int) error {
	switch t.d.PeekKind() {
	case '{':
	case 'n':
		return errors.New("code 0 but no data")
	default:
		return errors.New("data is not an object")
	}
	var haveTotal, haveRecords, nullRecords bool
	err := t.object(func(name []byte) error {
		switch string(name) {
		case "total":
			if err := once(&haveTotal, "data.total"); err != nil {
				return err
			}
			v, err := t.int64Value("data.total", true)
			out.Total = v
			return err
		case "records":
			if err := once(&haveRecords, "data.records"); err != nil {
				return err
			}
			switch t.d.PeekKind() {
			case 'n':
				nullRecords = true
				_, err := t.d.ReadToken()
				return err
			case '[':
				return t.records(out, hint)
			default:
				if _, err := t.d.ReadValue(); err != nil {
					return err
				}
				return errors.New("data.records is not an array")
			}
		default:
			return t.d.SkipValue()
		}
	})
	if err != nil {
		return err
	}
	return out.checkData(haveTotal, haveRecords, nullRecords)
}

func (t *textDecoder) records(out *List, hint int) error {
	if _, err := t.d.ReadToken(); err != nil {
		return err
	}
	if hint < 0 || hint > 1000 {
		hint = 0
	}
	out.Records = make([]schema.Record, 0, hint)
	for n := 0; ; n++ {
		switch k := t.d.PeekKind(); k {
		case ']':
			_, err := t.d.ReadToken()
			return err
		case '{':
			rec, err := t.record(n)
			if err != nil {
				return err
			}
			out.Records = append(out.Records, rec)
		case 0:
			_, err := t.d.ReadToken()
			return fmt.Errorf("record %d: %w", n, err)
		default:
			if _, err := t.d.ReadValue(); err != nil {
				return err
			}
			return fmt.Errorf("record %d is not an object", n)
		}
	}
}

// record reads data.records[n]. Its members are read as raw values, so that their offsets tell
// whether the record arrived compact: then Raw is its bytes in the body, as they are.
func (t *textDecoder) record(n int) (schema.Record, error) {
	off := int(t.d.InputOffset())
	start := off + bytes.IndexByte(t.body[off:], '{')
	var rec schema.Record
	var haveID, haveTime bool
	if _, err := t.d.ReadToken(); err != nil {
		return schema.Record{}, err
	}
	ws := false
	// value reads the next name or value, noting whitespace before it (gap is the delimiter
	// expected before it: 0 after '{', 1 for ',' or ':') or inside it.
	value := func(gap int64) (jsontext.Value, error) {
		before := t.d.InputOffset()
		v, err := t.d.ReadValue()
		if err != nil {
			return nil, err
		}
		ws = ws || t.d.InputOffset()-int64(len(v))-before != gap
		if k := v.Kind(); (k == '{' || k == '[') && bytes.ContainsAny(v, " \t\r\n") {
			ws = true
		}
		return v, nil
	}
	member := func(gap int64) error {
		nv, err := value(gap)
		if err != nil {
			return err
		}
		v, err := value(1)
		if err != nil {
			return err
		}
		switch string(t.name(nv)) {
		case "id":
			if haveID {
				return fmt.Errorf("record %d has a duplicate id", n)
			}
			haveID = true
			rec.ID, err = longValue("id", v, true)
		case "follow_time":
			if haveTime {
				return fmt.Errorf("record %d has a duplicate follow_time", n)
			}
			haveTime = true
			rec.FollowTime, err = longValue("follow_time", v, true)
		case "create_time":
			if v.Kind() != 'n' {
				_, err = longValue("create_time", v, true)
			}
		}
		return err
	}
	var err error
	for gap := int64(0); err == nil && t.d.PeekKind() == '"'; gap = 1 {
		err = member(gap)
	}
	if err == nil {
		before := t.d.InputOffset()
		_, err = t.d.ReadToken()
		ws = ws || t.d.InputOffset()-1 != before
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
	end := int(t.d.InputOffset())
	raw := t.body[start:end:end]
	if ws {
		if t.cbuf == nil {
			t.cbuf = make([]byte, 0, len(t.body)-start)
		}
		s := len(t.cbuf)
		t.cbuf = appendCompact(t.cbuf, raw)
		raw = t.cbuf[s:len(t.cbuf):len(t.cbuf)]
	}
	rec.Raw = raw
	return rec, nil
}

// int64Value reads a long named name: a JSON integer, or with allowString a string of decimal
// digits.
func (t *textDecoder) int64Value(name string, allowString bool) (int64, error) {
	v, err := t.d.ReadValue()
	if err != nil {
		return 0, err
	}
	return longValue(name, v, allowString)
}

// longValue parses v, the value named name: a JSON integer, or with allowString a string of
// decimal digits.
func longValue(name string, v jsontext.Value, allowString bool) (int64, error) {
	switch v.Kind() {
	case 'n':
		return 0, fmt.Errorf("%s is null", name)
	case '"':
		if !allowString {
			break
		}
		n, ok := parseInt(v[1 : len(v)-1])
		if !ok {
			return 0, fmt.Errorf("%s %s is not a decimal int64 (a string must hold only digits, an optional leading minus, within int64)", name, v)
		}
		return n, nil
	case '0':
		n, ok := parseInt(v)
		switch {
		case ok:
			return n, nil
		case bytes.ContainsAny(v, ".eE"):
			return 0, fmt.Errorf("%s %s is not an integer", name, v)
		default:
			return 0, fmt.Errorf("%s %s overflows int64", name, v)
		}
	}
	return 0, fmt.Errorf("%s is not an integer", name)
}
