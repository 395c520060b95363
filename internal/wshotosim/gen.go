package wshotosim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
	"unicode/utf8"
)

// Record is one simulated follow-up record: the documented fields, raw extra members, and two
// attributes the answer does not show but the filters use.
type Record struct {
	ID           int64
	FollowUserID string
	Content      string
	Target       Target
	BusinessType int
	BusinessID   string
	Title        string
	// FollowTime and CreateTime are epoch milliseconds.
	FollowTime int64
	CreateTime int64
	// Extra is appended to the JSON object verbatim: members the vendor page does not document,
	// without braces, e.g. `"ext_score":12.50`. Empty: none. It must be valid JSON members.
	Extra string

	// TargetType is what `target_type` filters on (1, 3, 4, 9, 10, 11 or 12).
	TargetType int
	// FollowDepID is what `follow_dep_ids` filters on.
	FollowDepID int64
}

// Target is the record's `target` object.
type Target struct {
	ContactID  string
	ExternalID string
	CompanyID  string
	ChatID     string
	ClueID     string
	IsAI       bool
}

// appendJSON renders r as compact JSON, fields in the vendor page's order, then Extra.
func (r *Record) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, r.ID, 10)
	b = append(b, `,"follow_user_id":`...)
	b = appendString(b, r.FollowUserID)
	b = append(b, `,"content":`...)
	b = appendString(b, r.Content)
	b = append(b, `,"target":{"contact_id":`...)
	b = appendString(b, r.Target.ContactID)
	b = append(b, `,"external_id":`...)
	b = appendString(b, r.Target.ExternalID)
	b = append(b, `,"company_id":`...)
	b = appendString(b, r.Target.CompanyID)
	b = append(b, `,"chat_id":`...)
	b = appendString(b, r.Target.ChatID)
	b = append(b, `,"clue_id":`...)
	b = appendString(b, r.Target.ClueID)
	b = append(b, `,"is_ai":`...)
	b = strconv.AppendBool(b, r.Target.IsAI)
	b = append(b, `},"business_type":`...)
	b = strconv.AppendInt(b, int64(r.BusinessType), 10)
	b = append(b, `,"business_id":`...)
	b = appendString(b, r.BusinessID)
	b = append(b, `,"title":`...)
	b = appendString(b, r.Title)
	b = append(b, `,"follow_time":`...)
	b = strconv.AppendInt(b, r.FollowTime, 10)
	b = append(b, `,"create_time":`...)
	b = strconv.AppendInt(b, r.CreateTime, 10)
	if r.Extra != "" {
		b = append(b, ',')
		b = append(b, r.Extra...)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string: UTF-8 kept as is (no \u escapes for CJK), quotes,
// backslashes and control characters escaped, invalid UTF-8 replaced by U+FFFD. Unlike
// encoding/json it does not escape <, > and &, as the vendor's Java server does not either.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = fmt.Appendf(b, `\u%04x`, c)
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// Id spaces: generated records draw ids from a sequence per stream, so that the ids of initial
// records, arrivals and inserts never collide and do not depend on their interleaving.
const (
	streamInitial = iota
	streamArrival
	streamInsert
	streamExplicit
	streams
)

// BigIDBase is the first of the ids above 2^53 (9007199254740993 = 2^53 + 1, the first integer a
// float64 cannot hold). One generated record in 17 gets such an id.
const BigIDBase int64 = 1<<53 + 1

// MaxIDOffset bounds Config.IDOffset: with it, the generated ids that are below 2^53 without an
// offset stay below 2^53.
const MaxIDOffset int64 = 1 << 52

// generatedID returns the id of record k of a stream.
func generatedID(stream int, k int64) int64 {
	n := k*streams + int64(stream)
	if n%17 == 5 {
		return BigIDBase + 2*n
	}
	return 1_700_000_000_000_000 + n
}

var (
	userIDs = []string{"zhangwei", "wangfang", "lina", "liuyang", "chenjing", "yangtao", "zhaolei", "huangmin"}
	titles  = []string{"客户状态变更", "商机阶段变更", "线索分配", "订单创建", "群聊创建", "标签变更", "系统自动跟进"}
	stages  = []string{"初步接洽", "需求确认", "方案报价", "谈判审核", "赢单", "输单"}
	types   = []int{1, 3, 4, 9, 10, 11, 12}
)

// generate returns record k of a stream with the given follow time; everything else is drawn from
// a generator seeded by (seed, stream, k), so the same inputs give the same record.
func generate(seed int64, stream int, k int64, followTime int64) Record {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(k)<<3|uint64(stream)))
	id := generatedID(stream, k)
	typ := types[rng.IntN(len(types))]
	title := titles[rng.IntN(len(titles))]
	content := fmt.Sprintf("系统自动跟进:%s,客户阶段变更为「%s」", title, stages[rng.IntN(len(stages))])
	switch rng.IntN(8) {
	case 0:
		content += "\n备注:\"重点客户\" <VIP> & 续约 🚀"
	case 1:
		content += "\t(自动)\\同步"
	}
	r := Record{
		ID:           id,
		FollowUserID: "wx_" + userIDs[rng.IntN(len(userIDs))],
		Content:      content,
		Target: Target{
			ContactID:  fmt.Sprintf("ct%012x", rng.Uint64()>>16),
			ExternalID: fmt.Sprintf("wmEx%010x", rng.Uint64()>>24),
			CompanyID:  fmt.Sprintf("co%06d", rng.IntN(1_000_000)),
			ChatID:     fmt.Sprintf("wrCh%08x", rng.Uint32()),
			ClueID:     fmt.Sprintf("cl%08d", rng.IntN(100_000_000)),
			IsAI:       rng.IntN(4) == 0,
		},
		BusinessType: typ,
		BusinessID:   fmt.Sprintf("biz%010d", rng.IntN(1_000_000_000)),
		Title:        title,
		FollowTime:   followTime,
		CreateTime:   followTime + rng.Int64N(5000),
		TargetType:   typ,
		FollowDepID:  1001 + rng.Int64N(8),
	}
	// Members the vendor page does not document: a decimal with a trailing zero, and on some records
	// a nested object with an exponent and Chinese text — any re-encoding would change their bytes.
	r.Extra = fmt.Sprintf(`"ext_score":%d.%d0`, rng.IntN(100), rng.IntN(10))
	if id%5 == 0 {
		r.Extra += `,"ext":{"source":"sim","tags":["自动","系统"],"ratio":1.0E2,"nested":{"ok":true,"n":null}}`
	}
	return r
}

// initialTimes returns the follow times (epoch ms) of the count initial records over [start, end]:
// first 23:59:59.999 and 00:00:00.000 around each midnight inside the span (as many as count
// allows), then uniformly drawn times.
func initialTimes(seed int64, count int, start, end time.Time, loc *time.Location) []int64 {
	out := make([]int64, 0, max(count, 0))
	y, m, d := start.In(loc).Date()
	for mid := time.Date(y, m, d+1, 0, 0, 0, 0, loc); !mid.After(end) && len(out)+2 <= count; mid = mid.AddDate(0, 0, 1) {
		if mid.Add(-time.Millisecond).Before(start) {
			continue
		}
		out = append(out, mid.UnixMilli()-1, mid.UnixMilli())
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0xfeed))
	lo, hi := start.UnixMilli(), end.UnixMilli()
	for len(out) < count {
		t := lo
		if hi > lo {
			t += rng.Int64N(hi - lo + 1)
		}
		out = append(out, t)
	}
	return out
}
