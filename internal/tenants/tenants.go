package tenants

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/publisher"
	"github.com/followpub/followpub/schema"
)

// IDPattern is what a tenant id must match (docs/DESIGN.md §7): it is safe in a topic name, a
// Kafka key, a metric label and a URL path.
const IDPattern = `[a-z0-9][a-z0-9._-]{0,62}`

var validID = regexp.MustCompile(`^` + IDPattern + `$`)

// Tenant is one entry of the tenants file, defaults filled and secrets read.
type Tenant struct {
	// ID names the tenant everywhere: state, ce_tenant, metrics, logs.
	ID string
	// Topic is the output topic. Default: Defaults.Topic + "." + ID.
	Topic string
	// EventSource is ce_source. Default: Defaults.EventSource.
	EventSource string
	// StartFrom is where a tenant with no state begins, as START_FROM takes it (today, now, a date,
	// an RFC 3339 time, a duration back); checked by poller.ParseStartFrom. Default:
	// Defaults.StartFrom.
	StartFrom string
	// APIBaseURL is the API origin. Default: Defaults.APIBaseURL.
	APIBaseURL string
	// AppID and AppSecret are the token endpoint's credentials; AccessToken is a fixed token
	// instead. Exactly one of the two ways is set.
	AppID       string
	AppSecret   string
	AccessToken string
	// SecretFrom says where the secret was read, for messages: "env NAME" or "file PATH".
	SecretFrom string
	// Filter is sent with every list request of this tenant.
	Filter wshoto.Filter
	// RateLimit is API_RATE_LIMIT for this tenant: the entry's api_rate_limit, else
	// Defaults.RateLimit; 0 only when both are 0 (the client's default).
	RateLimit float64
	// Concurrency is API_CONCURRENCY for this tenant: the entry's api_concurrency, else
	// Defaults.Concurrency; 0 only when both are 0 (the client's default).
	Concurrency int
	// Line is the line of the entry in the file, for messages. Diff ignores it.
	Line int
}

// String describes t without its secret.
func (t Tenant) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tenant %s (line %d): topic %s, api %s", t.ID, t.Line, t.Topic, t.APIBaseURL)
	if t.AppID != "" {
		fmt.Fprintf(&b, ", app id %s, app secret from %s", t.AppID, t.SecretFrom)
	} else {
		fmt.Fprintf(&b, ", access token from %s", t.SecretFrom)
	}
	return b.String()
}

// GoString is String, so that %#v does not print the secret either.
func (t Tenant) GoString() string { return t.String() }

// LogValue is what slog logs for t: its settings, never its secret.
func (t Tenant) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", t.ID), slog.String("topic", t.Topic), slog.String("api_base_url", t.APIBaseURL),
		slog.String("app_id", t.AppID), slog.String("secret_from", t.SecretFrom),
		slog.String("event_source", t.EventSource), slog.String("start_from", t.StartFrom),
		slog.Float64("api_rate_limit", t.RateLimit), slog.Int("api_concurrency", t.Concurrency),
	)
}

// Defaults are the values an entry takes for what it leaves out: the global settings.
type Defaults struct {
	// Topic is KAFKA_TOPIC; a tenant's topic defaults to Topic + "." + its id.
	// Default (empty): publisher.DefaultTopic.
	Topic string
	// EventSource is EVENT_SOURCE. Default (empty): schema.DefaultSource.
	EventSource string
	// StartFrom is START_FROM. Default (empty): "today".
	StartFrom string
	// APIBaseURL is API_BASE_URL. Default (empty): wshoto.DefaultBaseURL.
	APIBaseURL string
	// RateLimit and Concurrency are API_RATE_LIMIT and API_CONCURRENCY. Default (0): the client's.
	RateLimit   float64
	Concurrency int
	// AllowInsecure is API_ALLOW_INSECURE: whether a tenant's api_base_url may be plain http:// to
	// a host that is not loopback. Default: false.
	AllowInsecure bool
	// Location is API_TIMEZONE, in which start_from dates are read. Default (nil):
	// schema.APILocation().
	Location *time.Location
}

func (d *Defaults) setDefaults() {
	d.Topic = cmp.Or(d.Topic, publisher.DefaultTopic)
	d.EventSource = cmp.Or(d.EventSource, schema.DefaultSource)
	d.StartFrom = cmp.Or(d.StartFrom, "today")
	d.APIBaseURL = cmp.Or(d.APIBaseURL, wshoto.DefaultBaseURL)
	if d.Location == nil {
		d.Location = schema.APILocation()
	}
}

// Error is one problem of a tenants file. Its message names the file, the tenant (or the entry,
// when it has no valid id), the line and the field; never a secret.
type Error struct {
	// File is the tenants file's path.
	File string
	// Tenant is the entry's id; empty when the entry has no valid id, or the problem is the file's.
	Tenant string
	// Entry is the entry's position in the list, from 1; 0 for a problem of the whole file.
	Entry int
	// Field is the key at fault (for example "app_secret_file"); empty for the entry or the file.
	Field string
	// Line is the line of the key (or of the entry, or of the file's problem); 0 when unknown.
	Line int
	// Err is the problem.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tenants file %s", e.File)
	switch {
	case e.Tenant != "":
		fmt.Fprintf(&b, ": tenant %s", e.Tenant)
	case e.Entry > 0:
		fmt.Fprintf(&b, ": entry %d", e.Entry)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem Load found, in the order of the file. errors.As finds each *Error.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.As and errors.Is.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Diff compares two loads of the tenants file by id, for a reload: added are the ids only in
// next, removed those only in prev, changed those in both whose settings or secrets differ (the
// line of the entry aside). Each list is sorted.
func Diff(prev, next []Tenant) (added, removed, changed []string) {
	old := make(map[string]Tenant, len(prev))
	for _, t := range prev {
		old[t.ID] = t
	}
	seen := make(map[string]bool, len(next))
	for _, t := range next {
		seen[t.ID] = true
		o, ok := old[t.ID]
		switch {
		case !ok:
			added = append(added, t.ID)
		case !same(o, t):
			changed = append(changed, t.ID)
		}
	}
	for _, t := range prev {
		if !seen[t.ID] {
			removed = append(removed, t.ID)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	return added, removed, changed
}

func same(a, b Tenant) bool {
	a.Line, b.Line = 0, 0
	return reflect.DeepEqual(a, b)
}

// errNoCredentials is the advice for an entry without a usable credential.
var errNoCredentials = errors.New("no credentials: want app_id with app_secret_env or app_secret_file, or access_token_env or access_token_file")
