package publisher

import (
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/schema"
)

// Header values that are the same for every message. They are shared: never modified.
var (
	specVersionValue = []byte(schema.SpecVersion)
	eventTypeValue   = []byte(schema.EventType)
	contentTypeValue = []byte(schema.ContentType)
)

// Messages returns the Kafka messages Publish writes for recs, in order: the key (the decimal id,
// shared with the ce_id header), the value (recs[i].Raw, shared, not copied), the CloudEvents
// headers of schema.AppendHeaders and the time of the call as the record timestamp; Topic,
// Partition and WriterData are left empty. Publish builds its messages the same way; it is
// exported so that a tool can write exactly followpub's messages with a kafka-go Writer of its
// own (the benchmarks' producer limit does). The messages share buffers: do not modify them.
func (p *Publisher) Messages(recs []schema.Record) []kafka.Message {
	return p.messages(new(call), recs, false)
}

// keyAndTimeLen bounds the bytes of one message's key (also ce_id) and ce_time in call.buf.
const keyAndTimeLen = len("-9223372036854775808") + len(schema.TimeLayout)

// messages builds the Kafka messages of recs in c's memory, and, when ack is set, ties each to
// its slot of c (Message.WriterData) for complete.
//
// This is the publisher's part of the hot path (docs/BENCHMARKS.md): it allocates nothing per
// record, and nothing at all when c, reused, is large enough (reserve). The headers are those of
// schema.AppendHeaders, in its order (a test holds them equal); ce_time is formatted by dayTimes.
func (p *Publisher) messages(c *call, recs []schema.Record, ack bool) []kafka.Message {
	now := time.Now()
	c.reserve(len(recs), ack)
	msgs, hs, buf := c.msgs, c.headers, c.buf
	var times dayTimes
	// Every message's headers are these, with its own ce_id (1) and ce_time (4).
	headers := [schema.NumHeaders]kafka.Header{
		{Key: schema.HeaderSpecVersion, Value: specVersionValue},
		{Key: schema.HeaderID},
		{Key: schema.HeaderSource, Value: p.source},
		{Key: schema.HeaderType, Value: eventTypeValue},
		{Key: schema.HeaderTime},
		{Key: schema.HeaderContentType, Value: contentTypeValue},
		{Key: schema.HeaderTenant, Value: p.tenant},
	}
	for i := range recs {
		start := len(buf)
		buf = strconv.AppendInt(buf, recs[i].ID, 10)
		mid := len(buf)
		buf = times.append(buf, recs[i].FollowTime)
		// Capped slices: appending to a key cannot overwrite the next value. Should buf ever
		// grow (a year beyond 9999), the earlier values keep the old array, unchanged.
		id, ceTime := buf[start:mid:mid], buf[mid:len(buf):len(buf)]
		// An array of hs: mh[:] has capacity NumHeaders, so appending cannot reach the next's.
		mh := (*[schema.NumHeaders]kafka.Header)(hs[i*schema.NumHeaders:])
		*mh = headers
		mh[1].Value, mh[4].Value = id, ceTime
		msgs[i] = kafka.Message{
			Key:     id, // ce_id is the decimal id, the key
			Value:   recs[i].Raw,
			Headers: mh[:],
			Time:    now, // docs/DESIGN.md §5: the record timestamp is the time of publishing
		}
		if ack {
			c.slots[i] = slot{call: c}
			msgs[i].WriterData = &c.slots[i]
		}
	}
	return msgs
}

const msPerDay = 24 * 60 * 60 * 1000

// dayTimes formats ce_time values exactly as schema.AppendTime does, faster: it asks
// schema.AppendTime for the date of each new UTC day (records come sorted, so a batch spans a few
// days at most) and writes the time of day itself. Its zero value is ready to use.
type dayTimes struct {
	day    int64 // days since the epoch of prefix
	prefix [len("2006-01-02T")]byte
	valid  bool
}

// append appends the ce_time of ms (epoch milliseconds) to dst.
func (f *dayTimes) append(dst []byte, ms int64) []byte {
	day := ms / msPerDay
	if ms%msPerDay < 0 {
		day-- // floor division: before 1970 too
	}
	if !f.valid || day != f.day {
		var b [64]byte
		midnight := schema.AppendTime(b[:0], day*msPerDay)
		if len(midnight) != len(schema.TimeLayout) { // a year outside 0000–9999
			f.valid = false
			return schema.AppendTime(dst, ms)
		}
		copy(f.prefix[:], midnight)
		f.day, f.valid = day, true
	}
	t := ms - day*msPerDay // 0 ≤ t < msPerDay
	h, m, s, milli := t/3_600_000, t/60_000%60, t/1000%60, t%1000
	return append(append(dst, f.prefix[:]...),
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+m/10), byte('0'+m%10), ':',
		byte('0'+s/10), byte('0'+s%10), '.', byte('0'+milli/100), byte('0'+milli/10%10), byte('0'+milli%10), 'Z')
}
