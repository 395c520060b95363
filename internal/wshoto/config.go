package wshoto

import (
	"cmp"
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
	MaxConcurrency     = 64
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
	// in flight, 1–64. Default (0): 4.
	Concurrency int
	// AuthErrorCodes are the `code` values that mean "the token is not valid": the token is renewed
	// and the call retried once. Default (nil): 10001, 10010, 10011. HTTP 401 is treated the same.
	AuthErrorCodes []int
	// Filter is sent with every list request.
	Filter Filter

	// MaxAttempts bounds the attempts of one call (the first included). Default (0): 6.
	MaxAttempts int
	// BaseBackoff is the backoff before the first retry; it doubles per retry, and each sleep is
	// drawn from ±50 % of it (internal/retry's policy). Default (0): 200ms.
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
	c.BaseURL = cmp.Or(c.BaseURL, DefaultBaseURL)
	c.ListPath = cmp.Or(c.ListPath, DefaultListPath)
	c.TokenPath = cmp.Or(c.TokenPath, DefaultTokenPath)
	c.PageSize = cmp.Or(c.PageSize, DefaultPageSize)
	c.Location = cmp.Or(c.Location, schema.APILocation())
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.RateLimit = cmp.Or(c.RateLimit, DefaultRateLimit)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	if c.AuthErrorCodes == nil {
		c.AuthErrorCodes = DefaultAuthErrorCodes
	}
	c.MaxAttempts = cmp.Or(c.MaxAttempts, DefaultMaxAttempts)
	c.BaseBackoff = cmp.Or(c.BaseBackoff, DefaultBaseBackoff)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, DefaultMaxBackoff)
	c.MaxElapsed = cmp.Or(c.MaxElapsed, DefaultMaxElapsed)
	c.MaxReads = cmp.Or(c.MaxReads, DefaultMaxReads)
	c.MaxBodySize = cmp.Or(c.MaxBodySize, DefaultMaxBodySize)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	if c.Now == nil {
		c.Now = time.Now
	}
}

// ConfigError is a configuration error. Field names the Config field at fault (for example
// "BaseURL") and Related, when set, the other field the broken rule ties it to, so a caller can
// name its own flags or variables instead. The message never holds a credential.
type ConfigError struct {
	Field   string
	Related string
	Err     error
}

func (e *ConfigError) Error() string {
	msg := "invalid API client configuration: " + e.Field + ": " + e.Err.Error()
	if e.Related != "" {
		msg += " (see " + e.Related + ")"
	}
	return msg
}

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }

func configErr(field, related, format string, args ...any) error {
	return &ConfigError{Field: field, Related: related, Err: fmt.Errorf(format, args...)}
}

// Validate reports what New would refuse in c, after filling the same defaults, except missing
// credentials: a configuration shared with code that never calls the API may have none, and New
// still requires them. Errors are *ConfigError.
func (c Config) Validate() error {
	c.setDefaults()
	return c.validateFields()
}

// validate reports the first invalid field of c (after setDefaults), credentials included.
func (c *Config) validate() error {
	if err := c.validateFields(); err != nil {
		return err
	}
	if c.AccessToken == "" && c.AppID == "" && c.AppSecret == "" {
		return configErr("AccessToken", "AppID", "no credentials: want a fixed access token, or an app id and an app secret")
	}
	return nil
}

// validateFields reports the first invalid field of c (after setDefaults); credentials may be
// missing, but not half given.
func (c *Config) validateFields() error {
	if err := validBaseURL(c.BaseURL, c.AllowInsecure); err != nil {
		return err
	}
	if !strings.HasPrefix(c.ListPath, "/") {
		return configErr("ListPath", "", "%q: must start with /", c.ListPath)
	}
	if !strings.HasPrefix(c.TokenPath, "/") {
		return configErr("TokenPath", "", "%q: must start with /", c.TokenPath)
	}
	if c.AccessToken == "" && c.AppID != "" && c.AppSecret == "" {
		return configErr("AppSecret", "AppID", "empty, but an app id is set: the token endpoint needs both credentials (or a fixed access token instead)")
	}
	if c.AccessToken == "" && c.AppID == "" && c.AppSecret != "" {
		return configErr("AppID", "AppSecret", "empty, but an app secret is set: the token endpoint needs both credentials (or a fixed access token instead)")
	}
	if c.PageSize < 1 || c.PageSize > MaxPageSize {
		return configErr("PageSize", "", "%d: want 1 to %d", c.PageSize, MaxPageSize)
	}
	if c.Timeout < 0 {
		return configErr("Timeout", "", "%v: must not be negative", c.Timeout)
	}
	if c.Concurrency < 1 || c.Concurrency > MaxConcurrency {
		return configErr("Concurrency", "", "%d: want 1 to %d", c.Concurrency, MaxConcurrency)
	}
	if c.MaxAttempts < 1 {
		return configErr("MaxAttempts", "", "%d: want at least 1", c.MaxAttempts)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"BaseBackoff", c.BaseBackoff}, {"MaxBackoff", c.MaxBackoff}, {"MaxElapsed", c.MaxElapsed}} {
		if d.v < 0 {
			return configErr(d.field, "", "%v: must not be negative", d.v)
		}
	}
	if c.MaxReads < 1 {
		return configErr("MaxReads", "", "%d: want at least 1", c.MaxReads)
	}
	if c.MaxBodySize < 1 {
		return configErr("MaxBodySize", "", "%d: must be positive", c.MaxBodySize)
	}
	if c.Filter.TargetType != nil && *c.Filter.TargetType < 0 {
		return configErr("Filter.TargetType", "", "%d: must not be negative", *c.Filter.TargetType)
	}
	return nil
}

// validBaseURL checks the API origin: http or https with a host, no query, fragment or user
// info, and plain http only to a loopback host unless allowInsecure. Errors never show the user
// info, which may be a credential.
func validBaseURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a credential
		}
		return configErr("BaseURL", "", "not a URL (%v): want an http:// or https:// URL", err)
	}
	if u.User != nil {
		bare := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
		return configErr("BaseURL", "", "%q: must not carry credentials (user[:password]@); the API authenticates with the app id and secret or an access token", bare.String())
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return configErr("BaseURL", "", "%q: the scheme must be https or http", raw)
	}
	if u.Host == "" {
		return configErr("BaseURL", "", "%q: no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return configErr("BaseURL", "", "%q: must not have a query or fragment", raw)
	}
	if u.Scheme == "http" && !allowInsecure && !isLoopback(u.Hostname()) {
		return configErr("BaseURL", "AllowInsecure", "%q: plain http:// is allowed only to loopback hosts (localhost, 127.0.0.0/8, ::1); use https://", raw)
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
