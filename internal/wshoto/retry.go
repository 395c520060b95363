package wshoto

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/followpub/followpub/internal/retry"
)

// Outcomes of one HTTP attempt, as reported to Metrics.
const (
	OutcomeOK        = "ok"
	OutcomeHTTP5xx   = "http_5xx"
	OutcomeHTTP429   = "http_429"
	OutcomeHTTP4xx   = "http_4xx"
	OutcomeHTTPOther = "http_other"
	OutcomeTimeout   = "timeout"
	OutcomeConn      = "conn_error"
	OutcomeMalformed = "malformed"
	OutcomeAPIError  = "api_error"
	OutcomeAuthError = "auth_error"
	OutcomeCanceled  = "canceled"
)

// action is what the call loop does after an attempt.
type action int

const (
	actDone  action = iota // success: return the result
	actRetry               // transient: back off and try again, within the bounds
	actRenew               // the token was refused: renew it and retry once
	actFail                // permanent, or the caller gave up: return the error
)

func (a action) String() string {
	return [...]string{"done", "retry", "renew", "fail"}[a]
}

// errAttemptTimeout marks an attempt that ran past Config.Timeout (as opposed to the caller's
// context ending).
var errAttemptTimeout = errors.New("request timed out")

// decide classifies the error of one attempt and says what to do next. It is the one place that
// decides what is retried:
//
//   - nil: done.
//   - the caller's context ended (canceled or its deadline passed): fail.
//   - the attempt's own timeout, any net.Error timeout: retry ("timeout").
//   - other transport errors (refused, reset, EOF while reading): retry ("conn_error").
//   - HTTP 429: retry; HTTP 5xx and 408: retry; HTTP 401: renew the token; other statuses: fail.
//   - a body that is not the documented shape: retry ("malformed").
//   - a `code` in Config.AuthErrorCodes: renew the token; any other non-zero code: retry.
//
// callerDone reports whether the caller's own context has ended.
func decide(err error, callerDone bool) (outcome string, act action) {
	if err == nil {
		return OutcomeOK, actDone
	}
	if callerDone {
		return OutcomeCanceled, actFail
	}
	var se *StatusError
	if errors.As(err, &se) {
		switch {
		case se.StatusCode == 429:
			return OutcomeHTTP429, actRetry
		case se.StatusCode >= 500 || se.StatusCode == 408:
			return OutcomeHTTP5xx, actRetry
		case se.StatusCode == 401:
			return OutcomeAuthError, actRenew
		case se.StatusCode >= 400:
			return OutcomeHTTP4xx, actFail
		default:
			return OutcomeHTTPOther, actFail
		}
	}
	var ae *APIError
	if errors.As(err, &ae) {
		if ae.Auth {
			return OutcomeAuthError, actRenew
		}
		return OutcomeAPIError, actRetry
	}
	if errors.Is(err, ErrMalformed) {
		return OutcomeMalformed, actRetry
	}
	if errors.Is(err, errAttemptTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return OutcomeTimeout, actRetry
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return OutcomeTimeout, actRetry
	}
	// Anything else is the transport's: refused, reset, EOF, TLS, a cancellation that is not the
	// caller's.
	return OutcomeConn, actRetry
}

// wait returns the sleep before the next retry: the policy's next wait, but at least retryAfter
// when the server asked for it, capped by maxWait.
func wait(p *retry.Policy, retryAfter, maxWait time.Duration) time.Duration {
	d := p.Next()
	if retryAfter > d {
		d = min(retryAfter, maxWait)
	}
	return d
}
