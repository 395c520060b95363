package wshoto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/followpub/followpub/internal/retry"
	"github.com/followpub/followpub/internal/wshoto/jsonscan"
	"github.com/followpub/followpub/internal/wshoto/paging"
)

// Client calls the WeShoto open API. It is safe for concurrent use.
type Client struct {
	cfg       Config
	hc        *http.Client
	listEP    endpoint
	tokenEP   endpoint
	limiter   *rate.Limiter
	sem       chan struct{}
	authCodes map[int64]bool
	log       *slog.Logger
	tokens    *tokenSource // nil with a fixed token
	pages     atomic.Int64 // list pages read, for progress reports
	pager     *paging.Pager
}

// PagesRead returns how many list pages the client has read successfully. Safe for concurrent use.
func (c *Client) PagesRead() int64 { return c.pages.Load() }

// Page is one page of a list answer: `data.total` and `data.records`.
type Page = paging.Page

// endpoint describes one API call.
type endpoint struct {
	name       string // for errors, logs and metrics
	method     string
	url        string // without the access token
	needsToken bool
}

// New returns a client for cfg after filling its defaults and validating it.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("wshoto config: %w", err)
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	c := &Client{
		cfg: cfg,
		hc:  cfg.HTTPClient,
		listEP: endpoint{
			name: path.Base(cfg.ListPath), method: http.MethodPost,
			url: base + cfg.ListPath, needsToken: true,
		},
		tokenEP: endpoint{
			name: "access_token", method: http.MethodGet,
			url: base + cfg.TokenPath + "?" + url.Values{
				"appid": {cfg.AppID}, "app_secret": {cfg.AppSecret},
			}.Encode(),
		},
		sem:       make(chan struct{}, cfg.Concurrency),
		authCodes: make(map[int64]bool, len(cfg.AuthErrorCodes)),
		log:       cfg.Logger,
	}
	if c.hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Concurrency + 1
		c.hc = &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if cfg.RateLimit < 0 {
		c.limiter = rate.NewLimiter(rate.Inf, 1)
	} else {
		c.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), 1)
	}
	for _, code := range cfg.AuthErrorCodes {
		c.authCodes[int64(code)] = true
	}
	if cfg.AccessToken == "" {
		c.tokens = &tokenSource{c: c}
	}
	pager, err := paging.New(listReader{c}, paging.Config{
		PageSize: cfg.PageSize, Concurrency: cfg.Concurrency, MaxReads: cfg.MaxReads,
		Location: cfg.Location, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("wshoto: %w", err)
	}
	c.pager = pager
	return c, nil
}

// Token returns an access token: the fixed one, or a cached one that is renewed (once for all
// concurrent callers) before it expires.
func (c *Client) Token(ctx context.Context) (string, error) {
	return c.token(ctx, "")
}

// token returns a token other than stale (the one the API just refused), renewing if needed.
func (c *Client) token(ctx context.Context, stale string) (string, error) {
	if c.tokens == nil {
		return c.cfg.AccessToken, nil
	}
	return c.tokens.get(ctx, stale)
}

// listRequest is the list call's JSON body, field names as the vendor documents them.
type listRequest struct {
	TargetType      *int     `json:"target_type,omitempty"`
	TargetIDList    []string `json:"target_id_list,omitempty"`
	IDList          []string `json:"id_list,omitempty"`
	FollowUserIDs   []string `json:"follow_user_ids,omitempty"`
	FollowDepIDs    []int64  `json:"follow_dep_ids,omitempty"`
	Title           string   `json:"title,omitempty"`
	FollowTimeStart string   `json:"follow_time_start,omitempty"`
	FollowTimeEnd   string   `json:"follow_time_end,omitempty"`
	CurrentIndex    int      `json:"current_index"`
	PageSize        int      `json:"page_size"`
}

// ListPage reads page index (from 1) of the records whose follow_time falls on the days from
// through to (both inclusive, formatted as yyyy-MM-dd in Config.Location), with Config.Filter.
// A zero from or to leaves that bound out of the request. Failures are retried as documented on
// the package.
func (c *Client) ListPage(ctx context.Context, from, to time.Time, index int) (Page, error) {
	return c.listPage(ctx, from, to, index, c.cfg.PageSize)
}

// listPage is ListPage with a page size of its own.
func (c *Client) listPage(ctx context.Context, from, to time.Time, index, size int) (Page, error) {
	if index < 1 {
		return Page{}, fmt.Errorf("listing page %d: index must be at least 1", index)
	}
	f := c.cfg.Filter
	req := listRequest{
		TargetType: f.TargetType, TargetIDList: f.TargetIDs, IDList: f.IDs,
		FollowUserIDs: f.FollowUserIDs, FollowDepIDs: f.FollowDepIDs, Title: f.Title,
		CurrentIndex: index, PageSize: size,
	}
	if !from.IsZero() {
		req.FollowTimeStart = c.day(from)
	}
	if !to.IsZero() {
		req.FollowTimeEnd = c.day(to)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Page{}, fmt.Errorf("encoding list request: %w", err)
	}
	var page Page
	err = c.call(ctx, c.listEP, body, func(data []byte) error {
		lb, err := jsonscan.DecodeList(data, size)
		if err != nil {
			return fmt.Errorf("%s: %w: %w", c.listEP.name, ErrMalformed, err)
		}
		if lb.Code != 0 {
			return c.apiError(c.listEP.name, lb.Code, lb.Msg, lb.SubCode)
		}
		page = Page{Total: lb.Total, Records: lb.Records}
		c.pages.Add(1)
		return nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("listing page %d of %s..%s: %w", index, req.FollowTimeStart, req.FollowTimeEnd, err)
	}
	return page, nil
}

// day formats t as yyyy-MM-dd in the API's zone.
func (c *Client) day(t time.Time) string { return t.In(c.cfg.Location).Format(time.DateOnly) }

// apiError builds the error of a non-zero code, its message cleaned of secrets.
func (c *Client) apiError(ep string, code int64, msg, subCode string) *APIError {
	for _, s := range []string{c.cfg.AccessToken, c.cfg.AppSecret} {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, redacted)
		}
	}
	return &APIError{Endpoint: ep, Code: code, Msg: msg, SubCode: subCode, Auth: c.authCodes[code]}
}

// call runs one API call with retries: handle decodes a 200 answer's body and returns its error
// (ErrMalformed, *APIError) for decide to classify.
func (c *Client) call(ctx context.Context, ep endpoint, body []byte, handle func([]byte) error) error {
	start := time.Now()
	policy := retry.New(c.cfg.BaseBackoff, c.cfg.MaxBackoff)
	var stale string // a token the API refused
	renewed := false
	for attempt := 1; ; attempt++ {
		var tok string
		if ep.needsToken {
			t, err := c.token(ctx, stale)
			if err != nil {
				return err
			}
			tok = t
		}
		d, retryAfter, err := c.attempt(ctx, ep, tok, body, handle)
		if d < 0 { // never sent: the caller's context ended while waiting for a slot
			return err
		}
		outcome, act := decide(err, ctx.Err() != nil)
		if c.cfg.Metrics != nil {
			c.cfg.Metrics.ObserveRequest(ep.name, outcome, d)
		}
		switch act {
		case actDone:
			return nil
		case actFail:
			if outcome == OutcomeCanceled && !errors.Is(err, ctx.Err()) {
				return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
			}
			return err
		case actRenew:
			if c.tokens == nil || !ep.needsToken {
				return fmt.Errorf("%w: %w", ErrTokenRejected, err)
			}
			if renewed {
				return fmt.Errorf("%w after renewal: %w", ErrTokenRejected, err)
			}
			renewed, stale = true, tok
			attempt-- // the retry after a renewal is not counted against MaxAttempts
			c.log.Debug("token refused; renewing", "endpoint", ep.name, "error", err)
			continue
		}
		// actRetry
		if attempt >= c.cfg.MaxAttempts {
			return fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		sleep := wait(policy, retryAfter, c.cfg.MaxBackoff)
		if time.Since(start)+sleep > c.cfg.MaxElapsed {
			return fmt.Errorf("giving up after %d attempts in %v: %w", attempt, time.Since(start).Round(time.Millisecond), err)
		}
		c.log.Debug("request failed; retrying", "endpoint", ep.name, "attempt", attempt,
			"outcome", outcome, "error", err, "backoff", sleep)
		if serr := retry.Sleep(ctx, sleep); serr != nil {
			return fmt.Errorf("%w (while backing off after: %w)", serr, err)
		}
	}
}

// attempt sends one request and handles its answer. d is the time the request took, or -1 when it
// was never sent because ctx ended while it waited for the rate limiter or a slot. The returned
// error never contains a secret.
func (c *Client) attempt(ctx context.Context, ep endpoint, tok string, body []byte, handle func([]byte) error) (d, retryAfter time.Duration, err error) {
	if err := c.limiter.Wait(ctx); err != nil {
		return -1, 0, fmt.Errorf("%s: waiting for the rate limiter: %w", ep.name, err)
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return -1, 0, fmt.Errorf("%s: waiting for a request slot: %w", ep.name, ctx.Err())
	}
	defer func() { <-c.sem }()

	actx, cancel := context.WithTimeoutCause(ctx, c.cfg.Timeout, errAttemptTimeout)
	defer cancel()
	u := ep.url
	if tok != "" {
		u += "?access_token=" + url.QueryEscape(tok)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, ep.method, u, rd)
	if err != nil {
		return 0, 0, redactErr(fmt.Errorf("%s: building request: %w", ep.name, err), tok, c.cfg.AppSecret)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	req.Header.Set("Accept", "application/json")

	began := time.Now()
	err = c.roundTrip(actx, ctx, ep, req, handle, &retryAfter)
	return time.Since(began), retryAfter, redactErr(err, tok, c.cfg.AppSecret, c.cfg.AccessToken)
}

// roundTrip sends req and handles the answer.
func (c *Client) roundTrip(actx, ctx context.Context, ep endpoint, req *http.Request, handle func([]byte) error, retryAfter *time.Duration) error {
	timedOut := func(err error) error {
		if ctx.Err() == nil && errors.Is(context.Cause(actx), errAttemptTimeout) {
			return fmt.Errorf("%s: %w after %v: %w", ep.name, errAttemptTimeout, c.cfg.Timeout, err)
		}
		return fmt.Errorf("%s: %w", ep.name, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return timedOut(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		se := &StatusError{Endpoint: ep.name, StatusCode: resp.StatusCode}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			se.RetryAfter = s
			*retryAfter = time.Duration(s) * time.Second
		}
		return se
	}
	data, err := readBody(resp.Body, resp.ContentLength, c.cfg.MaxBodySize)
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			return fmt.Errorf("%s: %w", ep.name, err)
		}
		return timedOut(fmt.Errorf("reading body: %w", err))
	}
	return handle(data)
}

// bodyBuffers are the scratch buffers readBody reads into; what it returns is a copy of the right
// size, as records keep it alive (their Raw) until they are published.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody bounds the scratch buffers kept for reuse, so that one huge answer does not stay.
const maxPooledBody = 1 << 20

// readBody reads at most limit bytes; a longer body is ErrMalformed.
func readBody(r io.Reader, length, limit int64) ([]byte, error) {
	if length > limit {
		return nil, fmt.Errorf("%w: body of %d bytes is over the %d-byte limit", ErrMalformed, length, limit)
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBody {
			buf.Reset()
			bodyBuffers.Put(buf)
		}
	}()
	if length > 0 {
		buf.Grow(int(length) + bytes.MinRead)
	}
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: body is over the %d-byte limit", ErrMalformed, limit)
	}
	// A copy by append is not cleared first, unlike a new slice read into.
	return append([]byte{}, buf.Bytes()...), nil
}
