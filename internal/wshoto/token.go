package wshoto

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// tokenSource caches the access token and renews it, once for all concurrent callers.
type tokenSource struct {
	c *Client

	mu       sync.Mutex
	tok      string
	renewAt  time.Time  // renew from then on, before the token runs out
	inflight *tokenCall // the renewal under way, if any
}

// tokenCall is one renewal that any number of callers wait for.
type tokenCall struct {
	done chan struct{}
	tok  string
	err  error
}

// get returns the cached token unless it is due for renewal or equals stale (the API refused it);
// otherwise it joins the renewal under way or starts one. The renewal runs on its own context
// (bounded by MaxElapsed and Timeout), so a caller that gives up does not fail the others.
func (ts *tokenSource) get(ctx context.Context, stale string) (string, error) {
	ts.mu.Lock()
	if ts.tok != "" && ts.tok != stale && ts.c.cfg.Now().Before(ts.renewAt) {
		tok := ts.tok
		ts.mu.Unlock()
		return tok, nil
	}
	call := ts.inflight
	if call == nil {
		call = &tokenCall{done: make(chan struct{})}
		ts.inflight = call
		go ts.renew(context.WithoutCancel(ctx), call)
	}
	ts.mu.Unlock()
	select {
	case <-call.done:
		return call.tok, call.err
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for an access token: %w", ctx.Err())
	}
}

// renew fetches a new token and publishes it to the waiters of call.
func (ts *tokenSource) renew(ctx context.Context, call *tokenCall) {
	c := ts.c
	ctx, cancel := context.WithTimeout(ctx, c.cfg.MaxElapsed+c.cfg.Timeout)
	defer cancel()
	tb, err := c.fetchToken(ctx)
	ts.mu.Lock()
	if err == nil {
		ts.tok = tb.token
		ts.renewAt = renewalTime(c.cfg.Now(), tb.createAt, tb.expiresIn)
		c.log.Info("access token renewed", "expires_in", tb.expiresIn, "renew_at", ts.renewAt)
		if c.cfg.Metrics != nil {
			c.cfg.Metrics.TokenRenewed()
		}
	}
	ts.inflight = nil
	ts.mu.Unlock()
	call.tok, call.err = tb.token, err
	close(call.done)
}

// renewalTime returns when a token received at now, created at createAt (epoch seconds, 0 when
// unknown) and valid for expiresIn seconds, should be renewed: a fifth of its life (at most five
// minutes) before create_at + expires_in. If create_at is in our future, now counts instead; if it
// is so far in our past that less than half the life would be left (clock skew), now counts too, so
// that a skewed server clock cannot make every call renew the token.
func renewalTime(now time.Time, createAt, expiresIn int64) time.Time {
	life := time.Duration(expiresIn) * time.Second
	created := now
	if createAt > 0 {
		if ct := time.Unix(createAt, 0); ct.Before(now) && now.Sub(ct) < life/2 {
			created = ct
		}
	}
	margin := min(life/5, 5*time.Minute)
	return created.Add(life - margin)
}

// fetchToken calls the token endpoint, with retries.
func (c *Client) fetchToken(ctx context.Context) (tokenBody, error) {
	var tb tokenBody
	err := c.call(ctx, c.tokenEP, nil, func(data []byte) error {
		var err error
		tb, err = decodeToken(data)
		if err != nil {
			return err
		}
		if tb.code != 0 {
			// Not an auth error even if the code is one: renewing is what failed.
			e := c.apiError(c.tokenEP.name, tb.code, tb.msg, tb.subCode)
			e.Auth = false
			return e
		}
		return nil
	})
	if err != nil {
		return tokenBody{}, fmt.Errorf("getting an access token: %w", err)
	}
	return tb, nil
}
