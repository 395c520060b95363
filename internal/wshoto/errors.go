package wshoto

import (
	"errors"
	"fmt"
)

// ErrTokenRejected is wrapped by the error of a call whose token the API rejected even after a
// renewal, or whose fixed token (Config.AccessToken) the API rejected.
var ErrTokenRejected = errors.New("access token rejected")

// APIError is an answer with a non-zero `code`.
type APIError struct {
	// Endpoint names the call, e.g. "listForSystem" or "access_token".
	Endpoint string
	// Code, Msg and SubCode are the answer's `code`, `msg` and `sub_code`.
	Code    int64
	Msg     string
	SubCode string
	// Auth reports whether Code is one of Config.AuthErrorCodes.
	Auth bool
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s: api code %d", e.Endpoint, e.Code)
	if e.SubCode != "" {
		s += " (sub_code " + e.SubCode + ")"
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// StatusError is an HTTP answer whose status is not 200.
type StatusError struct {
	// Endpoint names the call.
	Endpoint string
	// StatusCode is the HTTP status.
	StatusCode int
	// RetryAfter is the Retry-After header in seconds, 0 if absent.
	RetryAfter int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: http status %d", e.Endpoint, e.StatusCode)
}
