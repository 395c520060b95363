package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// ParseRecord returns the Record of one API record given as a JSON object. It reads id and
// follow_time as JSON integers without passing them through float64, and keeps every other field
// as it is. Raw is raw compacted; when raw is already compact, Raw is raw itself (not a copy).
//
// Errors about the content wrap ErrInvalidRecord.
func ParseRecord(raw []byte) (Record, error) {
	var fields struct {
		ID         json.RawMessage `json:"id"`
		FollowTime json.RawMessage `json:"follow_time"`
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return Record{}, fmt.Errorf("%w: decoding: %w", ErrInvalidRecord, err)
	}
	id, err := parseInt("id", fields.ID)
	if err != nil {
		return Record{}, err
	}
	ft, err := parseInt("follow_time", fields.FollowTime)
	if err != nil {
		return Record{}, err
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return Record{}, fmt.Errorf("%w: compacting: %w", ErrInvalidRecord, err)
	}
	value := raw
	if buf.Len() != len(raw) {
		value = buf.Bytes()
	}
	return Record{ID: id, FollowTime: ft, Raw: value}, nil
}

func parseInt(name string, v json.RawMessage) (int64, error) {
	if len(v) == 0 || string(v) == "null" {
		return 0, fmt.Errorf("%w: %s is missing", ErrInvalidRecord, name)
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s is not an int64: %s", ErrInvalidRecord, name, v)
	}
	return n, nil
}
