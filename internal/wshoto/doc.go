// Package wshoto is the client of WeShoto's open API as followpub uses it: the access-token endpoint
// and the paged follow-up lists (by default listForSystem, the system follow-up list).
//
// What it guarantees:
//
//   - Ids and times are decoded as int64 and never pass through float64; each record also keeps its
//     exact JSON (compacted, unknown fields included) in schema.Record.Raw.
//   - A body that is not the documented shape is an error that names the problem (wrapping
//     ErrMalformed), never a panic and never a silently empty page: no `code`, no `data` when
//     code is 0, no `total`, `records` not an array, a record that is not an object or has no
//     `id` or `follow_time`, a fraction or exponent where an integer belongs, duplicate `id` or
//     `follow_time` keys, invalid JSON or trailing data, a body over Config.MaxBodySize.
//     Accepted beyond the vendor's example: the longs `total`, `id`, `follow_time` and
//     `create_time` as strings of decimal digits (Java back ends quote longs for JavaScript
//     clients), `records: null` when total is 0, members in any order.
//     Bytes inside strings are passed through as sent (invalid UTF-8 is not repaired).
//   - Transient failures (HTTP 429 and 5xx, timeouts, connection errors, malformed bodies, non-zero
//     `code` values) are retried on the project's retry policy (internal/retry: exponential
//     backoff with jitter), bounded in attempts and in time; a server's Retry-After is honoured up
//     to Config.MaxBackoff. Token failures (the configured auth codes, HTTP 401) renew the token
//     and retry once. What is retried is decided in one place, decide, which has a table test.
//   - Requests are rate limited client side and bounded in number at once.
//   - Tokens: a fixed one (Config.AccessToken), or fetched with app id and secret, cached, and
//     renewed a fifth of its life (at most 5 minutes) before create_at + expires_in; concurrent
//     callers share one renewal.
//   - Client.Fetch returns a consistent page set or an error: every page of the window is read, the
//     total and the distinct ids are cross-checked, and a page set that changed while it was read is
//     read again (a bounded number of times, then ErrInconsistentPages). That policy lives in
//     the subpackage paging, behind a one-method page reader the client supplies over HTTP.
//     The list answers are decoded by the subpackage jsonscan.
//   - Secrets (the access token, the app secret) never appear in errors or log lines: the token
//     travels in the query string and every error that could print the URL is redacted.
//
// A Client is safe for concurrent use by multiple goroutines.
package wshoto
