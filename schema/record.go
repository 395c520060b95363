package schema

import (
	"cmp"
	"encoding/json"
	"strconv"
	"time"
)

// Record is one system follow-up record as the API returned it.
//
// ID and FollowTime are decoded from the record without passing through float64, so ids above 2^53
// survive. Raw holds the record's exact JSON (compact, every field, unknown ones too); it is the
// Kafka message value and must not be modified.
type Record struct {
	// ID is the follow id (`id`), the Kafka key and the CloudEvents id.
	ID int64
	// FollowTime is `follow_time` in epoch milliseconds.
	FollowTime int64
	// Raw is the record's JSON object exactly as received, compacted.
	Raw json.RawMessage
}

// Key returns the Kafka key of the record: the follow id as decimal ASCII.
func (r Record) Key() []byte { return strconv.AppendInt(nil, r.ID, 10) }

// Time returns FollowTime as a time.Time in UTC.
func (r Record) Time() time.Time { return time.UnixMilli(r.FollowTime).UTC() }

// Less orders records by ascending (FollowTime, ID), the publishing order within a cycle.
func Less(a, b Record) bool {
	if a.FollowTime != b.FollowTime {
		return a.FollowTime < b.FollowTime
	}
	return a.ID < b.ID
}

// Compare is Less as a three-way comparison, for slices.SortFunc: one comparison of each field
// rather than two calls of Less, as sorting a day calls it most of the time.
func Compare(a, b Record) int {
	return cmp.Or(cmp.Compare(a.FollowTime, b.FollowTime), cmp.Compare(a.ID, b.ID))
}
