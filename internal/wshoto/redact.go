package wshoto

import (
	"errors"
	"net/url"
	"strings"
)

// redacted replaces secrets in URLs and messages.
const redacted = "REDACTED"

// secretParams are the query parameters whose values are secrets.
var secretParams = []string{"access_token", "app_secret"}

// redactURL returns u with the values of secret query parameters replaced. A string that does not
// parse is dropped entirely rather than risk printing it.
func redactURL(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "(unparsable url)"
	}
	q := pu.Query()
	changed := false
	for _, p := range secretParams {
		if q.Has(p) {
			q.Set(p, redacted)
			changed = true
		}
	}
	if changed {
		pu.RawQuery = q.Encode()
	}
	return pu.Redacted()
}

// secretError carries an error whose message had secrets in it; Error prints the redacted message.
// Unwrap still gives the original chain so that errors.Is and errors.As work; the client only
// produces such chains after redacting their url.Error, so unwrapping does not reveal more.
type secretError struct {
	msg string
	err error
}

func (e *secretError) Error() string { return e.msg }
func (e *secretError) Unwrap() error { return e.err }

// redactErr removes secrets from err: the URL of any url.Error in the chain is redacted in place,
// and if the message still contains one of secrets the error is wrapped so that it prints without
// them.
func redactErr(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = redactURL(ue.URL)
	}
	msg := err.Error()
	dirty := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, redacted)
			dirty = true
		}
	}
	if !dirty {
		return err
	}
	return &secretError{msg: msg, err: err}
}
