package wshoto

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/followpub/followpub/schema"
)

// Defaults used by New for zero Config fields.
const (
	DefaultBaseURL     = "https://open.wshoto.com"
	DefaultListPath    = "/openapi/crm/follow/listForSystem"
	DefaultTokenPath   = "/openapi/access_token"
	DefaultPageSize    = 100
	MaxPageSize        = 100
	DefaultTimeout     = 10 * time.Second
	DefaultRateLimit   = 10
	DefaultConcurrency = 4
	DefaultMaxAttempts = 6
	DefaultBaseBackoff = 200 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
	DefaultMaxElapsed  = 2 * time.Minute
	DefaultMaxReads    = 5
	DefaultMaxBodySize = 8 << 20
)

// DefaultAuthErrorCodes are the `code` values that mean "the token is not valid": 10001, 10010 and
// 10011 have been seen to mean that.
var DefaultAuthErrorCodes = []int{10001, 10010, 10011}

// Filter holds the optional filters of the list request body. Zero values are not sent.
type Filter struct {
	// TargetType is `target_type` (1 customer, 3 opportunity, 4 clue, 9 order, 10 group chat,
	// 11 contact, 12 company). Nil: not sent.
	TargetType *int
	// TargetIDs is `target_id_list`. Empty: not sent.
	TargetIDs []string
	// IDs is `id_list`, follow ids as decimal strings. Empty: not sent.
	IDs []string
	// FollowUserIDs is `follow_user_ids`. Empty: not sent.
	FollowUserIDs []string
	// FollowDepIDs is `follow_dep_ids`. Empty: not sent.
	FollowDepIDs []int64
	// Title is `title`, the system follow-up type. Empty: not sent.
	Title string
}

// Metrics receives observations from the client. Implementations must be safe for concurrent use
// and must not block.
type Metrics interface {
	// ObserveRequest is called once per HTTP attempt. endpoint is "access_token" or the last path
	// element of the list call (e.g. "listForSystem"); outcome is one of "ok", "http_5xx",
	// "http_429", "http_4xx", "http_other", "timeout", "conn_error", "malformed", "api_error",
	// "auth_error", "canceled".
	ObserveRequest(endpoint, outcome string, d time.Duration)
	// TokenRenewed is called each time a new access token was obtained.
	TokenRenewed()
}

// Config configures a Client. The zero value of every field has a documented meaning; New fills
// defaults, then validates.
type Config struct {
	// BaseURL is the API origin, optionally with a path prefix. Default: https://open.wshoto.com.
	// Plain http:// is accepted only for loopback hosts (localhost, 127.0.0.0/8, ::1) unless
	// AllowInsecure is set.
	BaseURL string
	// AllowInsecure allows a plain http:// BaseURL on a non-loopback host. Default: false.
	AllowInsecure bool
	// ListPath is the path of the list call, below BaseURL. Default: /openapi/crm/follow/listForSystem.
	// The staff follow-up list (/openapi/crm/follow/list) takes the same body and answer.
	ListPath string
	// TokenPath is the path of the token call. Default: /openapi/access_token.
	TokenPath string

	// AccessToken is a fixed token. When set, no token is ever fetched and a token the API rejects
	// is a permanent error.
	AccessToken string
	// AppID and AppSecret are the credentials for the token endpoint, used when AccessToken is
	// empty. One of AccessToken or both of AppID and AppSecret is required.
	AppID     string
	AppSecret string

	// PageSize is `page_size`, 1–100. Default (0): 100.
	PageSize int
	// Location is the time zone in which `follow_time_start`/`follow_time_end` are formatted as
	// yyyy-MM-dd. Default (nil): schema.APILocation(), Asia/Shanghai.
	Location *time.Location
	// Timeout bounds one HTTP request, reading the body included. Default (0): 10s.
	Timeout time.Duration
	// RateLimit is the client-side limit in requests per second, token requests included.
	// Default (0): 10. Negative: no limit.
	RateLimit float64
	// Concurrency is the number of pages fetched at once by Fetch, and the bound on HTTP requests
	// in flight. Default (0): 4.
	Concurrency int
	// AuthErrorCodes are the `code` values that mean "the token is not valid": the token is renewed
	// and the call retried once. Default (nil): 10001, 10010, 10011. HTTP 401 is treated the same.
	AuthErrorCodes []int
	// Filter is sent with every list request.
	Filter Filter

	// MaxAttempts bounds the attempts of one call (the first included). Default (0): 6.
	MaxAttempts int
	// BaseBackoff is the backoff before the first retry; it doubles per retry, and each sleep is
	// drawn uniformly from [0, backoff) (full jitter). Default (0): 200ms.
	BaseBackoff time.Duration
	// MaxBackoff caps one backoff sleep (a Retry-After header included). Default (0): 10s.
	MaxBackoff time.Duration
	// MaxElapsed bounds the time one call spends retrying: no retry starts after it. Default (0): 2m.
	MaxElapsed time.Duration
	// MaxReads bounds the number of times Fetch reads a window whose page set changed while it was
	// read, before it returns ErrInconsistentPages. Default (0): 5.
	MaxReads int
	// MaxBodySize caps a response body, in bytes. Default (0): 8 MiB — 80 KiB a record at the
	// largest page size, and a bound on what Concurrency pages in flight can cost in memory.
	MaxBodySize int64

	// HTTPClient sends the requests. Default (nil): a client of its own that does not follow
	// redirects. Its Timeout, if any, applies on top of Timeout.
	HTTPClient *http.Client
	// Logger receives debug lines about retries and token renewals. Default (nil): silent.
	Logger *slog.Logger
	// Metrics receives per-request observations. Default (nil): none.
	Metrics Metrics
	// Now is the clock used for token expiry. Default (nil): time.Now.
	Now func() time.Time
}

// setDefaults fills the zero fields of c with their defaults.
func (c *Config) setDefaults() {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.ListPath == "" {
		c.ListPath = DefaultListPath
	}
	if c.TokenPath == "" {
		c.TokenPath = DefaultTokenPath
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.Location == nil {
		c.Location = schema.APILocation()
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RateLimit == 0 {
		c.RateLimit = DefaultRateLimit
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.AuthErrorCodes == nil {
		c.AuthErrorCodes = DefaultAuthErrorCodes
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BaseBackoff == 0 {
		c.BaseBackoff = DefaultBaseBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxElapsed == 0 {
		c.MaxElapsed = DefaultMaxElapsed
	}
	if c.MaxReads == 0 {
		c.MaxReads = DefaultMaxReads
	}
	if c.MaxBodySize == 0 {
		c.MaxBodySize = DefaultMaxBodySize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// validate reports the first invalid field of c (after setDefaults).
func (c *Config) validate() error {
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return fmt.Errorf("parsing BaseURL: %w", err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !c.AllowInsecure && !isLoopback(u.Hostname()) {
			return fmt.Errorf("BaseURL %q: plain http is allowed only for loopback hosts (set AllowInsecure to override)", c.BaseURL)
		}
	default:
		return fmt.Errorf("BaseURL %q: scheme must be https or http", c.BaseURL)
	}
	if u.Host == "" {
		return fmt.Errorf("BaseURL %q: no host", c.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("BaseURL %q: must not have a query, fragment or user info", c.BaseURL)
	}
	if !strings.HasPrefix(c.ListPath, "/") || !strings.HasPrefix(c.TokenPath, "/") {
		return errors.New("ListPath and TokenPath must start with /")
	}
	if c.AccessToken == "" && (c.AppID == "" || c.AppSecret == "") {
		return errors.New("credentials: set AccessToken, or both AppID and AppSecret")
	}
	if c.PageSize < 1 || c.PageSize > MaxPageSize {
		return fmt.Errorf("PageSize %d: must be 1–%d", c.PageSize, MaxPageSize)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("Timeout %v: must not be negative", c.Timeout)
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("Concurrency %d: must be at least 1", c.Concurrency) //nolint:staticcheck // ST1005: the field's name
	}
	if c.MaxAttempts < 1 {
		return fmt.Errorf("MaxAttempts %d: must be at least 1", c.MaxAttempts)
	}
	if c.BaseBackoff < 0 || c.MaxBackoff < 0 || c.MaxElapsed < 0 {
		return errors.New("BaseBackoff, MaxBackoff and MaxElapsed must not be negative")
	}
	if c.MaxReads < 1 {
		return fmt.Errorf("MaxReads %d: must be at least 1", c.MaxReads)
	}
	if c.MaxBodySize < 1 {
		return fmt.Errorf("MaxBodySize %d: must be positive", c.MaxBodySize)
	}
	if c.Filter.TargetType != nil && *c.Filter.TargetType < 0 {
		return fmt.Errorf("Filter.TargetType %d: must not be negative", *c.Filter.TargetType)
	}
	return nil
}

// isLoopback reports whether host names the local machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
