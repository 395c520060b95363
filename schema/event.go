package schema

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// CloudEvents attributes that are the same for every event.
const (
	// SpecVersion is the CloudEvents specification version, the value of the ce_specversion header.
	SpecVersion = "1.0"
	// EventType is the CloudEvents type of every event, the value of the ce_type header.
	EventType = "com.wshoto.crm.follow.system"
	// ContentType is the media type of the value, the value of the content-type header.
	ContentType = "application/json"
	// DefaultSource is the CloudEvents source used when none is configured (EVENT_SOURCE).
	DefaultSource = "https://open.wshoto.com/openapi/crm/follow/listForSystem"
	// DefaultTenant is the one tenant of a deployment without TENANTS_FILE, the value of its
	// ce_tenant header (docs/DESIGN.md §7).
	DefaultTenant = "default"
)

// Header names, in the order AppendHeaders appends them (CloudEvents 1.0 Kafka protocol binding,
// binary content mode).
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderSource      = "ce_source"
	HeaderType        = "ce_type"
	HeaderTime        = "ce_time"
	HeaderContentType = "content-type"
	// HeaderTenant is the CloudEvents extension naming the tenant whose API the record came from
	// (docs/DESIGN.md §7): records of several tenants in one topic stay apart.
	HeaderTenant = "ce_tenant"
)

// NumHeaders is the number of headers AppendHeaders appends for one record.
const NumHeaders = 7

// TimeLayout is the layout of ce_time: RFC 3339 in UTC with exactly three fraction digits.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Header is one Kafka record header. It has the shape of kafka-go's kafka.Header, so a value
// converts with kafka.Header(h).
type Header struct {
	Key   string
	Value []byte
}

// Shared header values. They are never modified; callers must not modify them either.
var (
	specVersionValue = []byte(SpecVersion)
	eventTypeValue   = []byte(EventType)
	contentTypeValue = []byte(ContentType)
)

// sourceValue caches the bytes of the last source (or tenant) passed to AppendHeaders, so that a
// process with one configured source converts it once instead of once per record.
type sourceValue struct {
	s string
	b []byte
}

var lastSource, lastTenant atomic.Pointer[sourceValue]

func sourceBytes(source string) []byte { return cachedBytes(&lastSource, source) }

func tenantBytes(tenant string) []byte { return cachedBytes(&lastTenant, tenant) }

func cachedBytes(last *atomic.Pointer[sourceValue], s string) []byte {
	if v := last.Load(); v != nil && v.s == s {
		return v.b
	}
	v := &sourceValue{s: s, b: []byte(s)}
	last.Store(v)
	return v.b
}

// FormatTime formats epoch milliseconds as ce_time does: RFC 3339 in UTC with exactly three
// fraction digits, for example 2024-02-07T08:00:00.000Z.
func FormatTime(ms int64) string {
	var buf [len(TimeLayout) + 8]byte
	return string(AppendTime(buf[:0], ms))
}

// AppendTime appends FormatTime(ms) to dst and returns the extended slice.
func AppendTime(dst []byte, ms int64) []byte {
	return time.UnixMilli(ms).UTC().AppendFormat(dst, TimeLayout)
}

// ParseCETime parses a ce_time value (RFC 3339; any offset and precision are accepted) and returns
// it in epoch milliseconds, truncating finer precision.
func ParseCETime(s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("parsing ce_time %q: %w", s, err)
	}
	return t.UnixMilli(), nil
}

// AppendHeaders appends the NumHeaders CloudEvents headers of r to dst, in this order:
// ce_specversion, ce_id, ce_source, ce_type, ce_time, content-type, ce_tenant; and returns the
// extended slice. source is the CloudEvents source (EVENT_SOURCE), tenant the tenant id.
//
// It allocates one buffer for the ce_id and ce_time values (plus the growth of dst when its
// capacity is too small). The ce_id value is equal to r.Key(), so a caller may use it as the
// message key instead of allocating another. Values are shared between records and between
// calls (the constant ones, and source while it does not change): they must not be modified.
func AppendHeaders(dst []Header, r Record, source, tenant string) []Header {
	buf := make([]byte, 0, 20+len(TimeLayout)+4)
	buf = strconv.AppendInt(buf, r.ID, 10)
	n := len(buf)
	buf = AppendTime(buf, r.FollowTime)
	return append(dst,
		Header{Key: HeaderSpecVersion, Value: specVersionValue},
		Header{Key: HeaderID, Value: buf[:n:n]},
		Header{Key: HeaderSource, Value: sourceBytes(source)},
		Header{Key: HeaderType, Value: eventTypeValue},
		Header{Key: HeaderTime, Value: buf[n:len(buf):len(buf)]},
		Header{Key: HeaderContentType, Value: contentTypeValue},
		Header{Key: HeaderTenant, Value: tenantBytes(tenant)},
	)
}

// ErrInvalidRecord is wrapped by ParseRecord's errors about the record's content.
var ErrInvalidRecord = errors.New("invalid follow-up record")
