package wshotosim

import (
	"cmp"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/followpub/followpub/schema"
)

// Orders of the list answer.
const (
	OrderNewest   = "newest"   // follow_time descending, then id descending
	OrderOldest   = "oldest"   // follow_time ascending, then id ascending
	OrderShuffled = "shuffled" // a stable pseudo-random order (by a seeded hash of the id)
)

// Faults are the probabilities, each in [0, 1], that a request is answered with a fault instead of
// the real answer. They apply to the list endpoint, and to the token endpoint too when
// Config.FaultsOnToken is set. Their sum must not exceed 1.
type Faults struct {
	// HTTP500 answers HTTP 500.
	HTTP500 float64
	// HTTP429 answers HTTP 429 with Retry-After: 1.
	HTTP429 float64
	// Malformed answers HTTP 200 with a body that is not the documented shape (truncated JSON, an
	// HTML page, records not an array, no data, a record with no follow_time, an empty body).
	Malformed float64
	// Code3 answers {"code":3,"msg":"系统繁忙"}: the vendor's server error.
	Code3 float64
	// Hang holds the request without answering until the client goes away or Config.HangFor
	// passed, then answers normally.
	Hang float64
	// Auth answers code 10011 (token invalid) although the token is valid: a token that "expired
	// early". Not applied to the token endpoint.
	Auth float64
}

// sum returns the total probability.
func (f Faults) sum() float64 {
	return f.HTTP500 + f.HTTP429 + f.Malformed + f.Code3 + f.Hang + f.Auth
}

func (f Faults) validate() error {
	for _, p := range []float64{f.HTTP500, f.HTTP429, f.Malformed, f.Code3, f.Hang, f.Auth} {
		if p < 0 || p > 1 {
			return fmt.Errorf("fault probability %v: must be in [0, 1]", p)
		}
	}
	if f.sum() > 1 {
		return fmt.Errorf("fault probabilities sum to %v: must not exceed 1", f.sum())
	}
	return nil
}

// Config configures a Server. New fills defaults for zero fields, then validates.
type Config struct {
	// Seed makes the generated data, tokens, faults and orders reproducible. Default (0): 1.
	Seed int64
	// AppID and AppSecret are the credentials the token endpoint accepts.
	// Default: "sim-app" and "sim-secret".
	AppID     string
	AppSecret string
	// StaticToken is a token that is always accepted and never expires, for clients configured with
	// a fixed token. Default (empty): none.
	StaticToken string
	// IDOffset is added to every generated id (not to the ids of records given to Add), so that
	// several simulators' ids never collide: NewMulti gives each tenant its own. It must be in
	// [0, MaxIDOffset]. Default (0): none.
	IDOffset int64
	// Location is the zone of the date filter and of the midnight records. Default (nil):
	// schema.APILocation(), Asia/Shanghai.
	Location *time.Location

	// End is the end of the span of the initial records. Default (zero): Clock() at New.
	End time.Time
	// Start is the start of that span. Default (zero): End − Span.
	Start time.Time
	// Span is the length of the span when Start is zero. Default (0): 7 days.
	Span time.Duration
	// Count is the number of initial records, spread over the span; the first ones fall at
	// 23:59:59.999 and 00:00:00.000 around each midnight of the span. Default (0): 1000.
	// Negative: none.
	Count int

	// Rate is the number of new records per second that become visible after New; their
	// follow_time is the moment they become visible, or older for late ones. Default (0): none.
	Rate float64
	// LateFraction is the fraction of new records that are late, in [0, 1]. Default (0): none.
	LateFraction float64
	// LateBy is how much older than its arrival a late record can be (uniformly up to it).
	// Default (0): 30 minutes.
	LateBy time.Duration

	// Order is the order of the list answer: "newest", "oldest" or "shuffled". Default: "newest".
	Order string
	// InsertBetweenPages is the number of records inserted after each list page is served, with a
	// follow_time inside the requested window (not after now): they shift offset pages. Default
	// (0): none.
	InsertBetweenPages int
	// InsertLimit bounds the records inserted by InsertBetweenPages in total. Default (0): no
	// bound.
	InsertLimit int

	// TokenTTL is the life of an issued token (expires_in, in whole seconds, at least 1).
	// Default (0): 7200s.
	TokenTTL time.Duration
	// Latency delays every answer. Default (0): none.
	Latency time.Duration
	// Faults are injected at random (seeded).
	Faults Faults
	// FaultsOnToken applies Faults to the token endpoint too. Default: list endpoint only.
	FaultsOnToken bool
	// HangFor is how long a hang lasts if the client stays. Default (0): 2 minutes.
	HangFor time.Duration

	// Clock is the simulator's time. Default (nil): time.Now.
	Clock func() time.Time
	// Logger receives a line per fault injected (debug). Default (nil): silent.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	c.Seed = cmp.Or(c.Seed, 1)
	c.AppID = cmp.Or(c.AppID, "sim-app")
	c.AppSecret = cmp.Or(c.AppSecret, "sim-secret")
	c.Location = cmp.Or(c.Location, schema.APILocation())
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.End.IsZero() {
		c.End = c.Clock()
	}
	c.Span = cmp.Or(c.Span, 7*24*time.Hour)
	if c.Start.IsZero() {
		c.Start = c.End.Add(-c.Span)
	}
	c.Count = cmp.Or(c.Count, 1000)
	c.LateBy = cmp.Or(c.LateBy, 30*time.Minute)
	c.Order = cmp.Or(c.Order, OrderNewest)
	c.TokenTTL = cmp.Or(c.TokenTTL, 7200*time.Second)
	c.HangFor = cmp.Or(c.HangFor, 2*time.Minute)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
}

func (c *Config) validate() error {
	switch c.Order {
	case OrderNewest, OrderOldest, OrderShuffled:
	default:
		return fmt.Errorf("order %q: must be newest, oldest or shuffled", c.Order)
	}
	if c.End.Before(c.Start) {
		return fmt.Errorf("start %v is after end %v", c.Start, c.End)
	}
	if c.Rate < 0 {
		return fmt.Errorf("rate %v: must not be negative", c.Rate)
	}
	if c.LateFraction < 0 || c.LateFraction > 1 {
		return fmt.Errorf("late fraction %v: must be in [0, 1]", c.LateFraction)
	}
	if c.LateBy < 0 || c.Latency < 0 || c.HangFor < 0 {
		return fmt.Errorf("late-by, latency and hang-for must not be negative")
	}
	if c.InsertBetweenPages < 0 || c.InsertLimit < 0 {
		return fmt.Errorf("insert-between-pages and insert-limit must not be negative")
	}
	if c.IDOffset < 0 || c.IDOffset > MaxIDOffset {
		return fmt.Errorf("id offset %d: must be in [0, %d]", c.IDOffset, MaxIDOffset)
	}
	if c.TokenTTL < time.Second {
		return fmt.Errorf("token TTL %v: must be at least 1s", c.TokenTTL)
	}
	if err := c.Faults.validate(); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	return nil
}

// RegisterFlags registers a flag for every setting of c on fs, with c's current values as
// defaults, so that `followpub sim` is a thin wrapper.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&c.Seed, "seed", c.Seed, "seed of the generated data, tokens, faults and orders (0 = 1)")
	fs.StringVar(&c.AppID, "app-id", c.AppID, "app id the token endpoint accepts (default sim-app)")
	fs.StringVar(&c.AppSecret, "app-secret", c.AppSecret, "app secret the token endpoint accepts (default sim-secret)")
	fs.StringVar(&c.StaticToken, "static-token", c.StaticToken, "a token that is always accepted (empty = none)")
	fs.Func("timezone", "zone of the date filter (default "+schema.APITimeZone+")", func(s string) error {
		loc, err := time.LoadLocation(s)
		if err != nil {
			return err
		}
		c.Location = loc
		return nil
	})
	timeFlag := func(dst *time.Time) func(string) error {
		return func(s string) error {
			for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
				loc := c.Location
				if loc == nil {
					loc = schema.APILocation()
				}
				if t, err := time.ParseInLocation(layout, s, loc); err == nil {
					*dst = t
					return nil
				}
			}
			return fmt.Errorf("%q is neither RFC 3339 nor yyyy-MM-dd", s)
		}
	}
	fs.Func("start", "start of the initial records (RFC 3339 or yyyy-MM-dd; default end - span)", timeFlag(&c.Start))
	fs.Func("end", "end of the initial records (RFC 3339 or yyyy-MM-dd; default now)", timeFlag(&c.End))
	fs.DurationVar(&c.Span, "span", c.Span, "span of the initial records when -start is not given (0 = 168h)")
	fs.IntVar(&c.Count, "count", c.Count, "number of initial records (0 = 1000, negative = none)")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "new records per second")
	fs.Float64Var(&c.LateFraction, "late-fraction", c.LateFraction, "fraction of new records that are late")
	fs.DurationVar(&c.LateBy, "late-by", c.LateBy, "how much older than their arrival late records can be (0 = 30m)")
	fs.StringVar(&c.Order, "order", c.Order, "order of the list answer: newest, oldest, shuffled (default newest)")
	fs.IntVar(&c.InsertBetweenPages, "insert-between-pages", c.InsertBetweenPages, "records inserted into the requested window after each page served")
	fs.IntVar(&c.InsertLimit, "insert-limit", c.InsertLimit, "bound on the records inserted between pages (0 = none)")
	fs.DurationVar(&c.TokenTTL, "token-ttl", c.TokenTTL, "life of an issued token (0 = 2h)")
	fs.DurationVar(&c.Latency, "latency", c.Latency, "delay of every answer")
	fs.Float64Var(&c.Faults.HTTP500, "fault-500", c.Faults.HTTP500, "probability of an HTTP 500 answer")
	fs.Float64Var(&c.Faults.HTTP429, "fault-429", c.Faults.HTTP429, "probability of an HTTP 429 answer")
	fs.Float64Var(&c.Faults.Malformed, "fault-malformed", c.Faults.Malformed, "probability of a malformed body")
	fs.Float64Var(&c.Faults.Code3, "fault-code3", c.Faults.Code3, "probability of a code 3 answer")
	fs.Float64Var(&c.Faults.Hang, "fault-hang", c.Faults.Hang, "probability of a request that hangs")
	fs.Float64Var(&c.Faults.Auth, "fault-auth", c.Faults.Auth, "probability of a token-invalid answer (code 10011) for a valid token")
	fs.BoolVar(&c.FaultsOnToken, "faults-on-token", c.FaultsOnToken, "inject faults on the token endpoint too")
	fs.DurationVar(&c.HangFor, "hang-for", c.HangFor, "how long a hang lasts if the client stays (0 = 2m)")
}
