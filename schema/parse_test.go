package schema

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseRecord(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		id, ft   int64
		wantJSON string
	}{
		{
			name:     "vendor example",
			in:       `{"id":1234567890,"follow_user_id":"user123","follow_time":1707292800000,"create_time":1707292800000}`,
			id:       1234567890,
			ft:       1707292800000,
			wantJSON: `{"id":1234567890,"follow_user_id":"user123","follow_time":1707292800000,"create_time":1707292800000}`,
		},
		{
			name:     "id above 2^53 and unknown fields survive, white space goes",
			in:       "{ \"id\" : 9007199254740993,\n \"follow_time\": 1707292800000, \"x_new\": {\"n\": 12345678901234567890123, \"f\": 1.50}, \"s\": \"a  b\" }",
			id:       9007199254740993,
			ft:       1707292800000,
			wantJSON: `{"id":9007199254740993,"follow_time":1707292800000,"x_new":{"n":12345678901234567890123,"f":1.50},"s":"a  b"}`,
		},
		{
			name:     "max int64",
			in:       `{"id":9223372036854775807,"follow_time":0}`,
			id:       9223372036854775807,
			wantJSON: `{"id":9223372036854775807,"follow_time":0}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRecord([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if r.ID != tt.id || r.FollowTime != tt.ft || string(r.Raw) != tt.wantJSON {
				t.Errorf("got {%d %d %s}, want {%d %d %s}", r.ID, r.FollowTime, r.Raw, tt.id, tt.ft, tt.wantJSON)
			}
		})
	}
}

func TestParseRecordCompactInputIsNotCopied(t *testing.T) {
	in := []byte(`{"id":1,"follow_time":2}`)
	r, err := ParseRecord(in)
	if err != nil {
		t.Fatal(err)
	}
	if &r.Raw[0] != &in[0] || !bytes.Equal(r.Raw, in) {
		t.Error("compact input was copied or changed")
	}
}

func TestParseRecordErrors(t *testing.T) {
	for _, in := range []string{
		``,
		`[]`,
		`{"follow_time":1}`,
		`{"id":null,"follow_time":1}`,
		`{"id":"1","follow_time":1}`,
		`{"id":1.5,"follow_time":1}`,
		`{"id":1e3,"follow_time":1}`,
		`{"id":9223372036854775808,"follow_time":1}`,
		`{"id":1}`,
		`{"id":1,"follow_time":"2024-02-07"}`,
		`{"id":1,"follow_time":1`,
	} {
		if _, err := ParseRecord([]byte(in)); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("ParseRecord(%s) error = %v, want ErrInvalidRecord", in, err)
		}
	}
}
