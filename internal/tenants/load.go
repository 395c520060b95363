package tenants

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
)

// maxFileSize bounds the tenants file: 10,000 tenants take about 2 MB.
const maxFileSize = 16 << 20

// Load reads the tenants file at path (YAML; JSON is YAML too), fills each entry's defaults from
// defaults, reads its secret and checks everything. It returns the tenants in the file's order,
// or an Errors listing every problem found, each naming its tenant and field.
//
// A secret is read from a variable through getenv (nil: os.LookupEnv) or from a file (a relative
// path is relative to the tenants file's directory); white space around it is dropped.
func Load(path string, defaults Defaults, getenv func(string) (string, bool)) ([]Tenant, error) {
	defaults.setDefaults()
	if getenv == nil {
		getenv = os.LookupEnv
	}
	l := &loader{file: path, dir: filepath.Dir(path), d: defaults, getenv: getenv}
	ts := l.load()
	if len(l.errs) > 0 {
		slices.SortStableFunc(l.errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
		return nil, l.errs
	}
	return ts, nil
}

type loader struct {
	file   string
	dir    string
	d      Defaults
	getenv func(string) (string, bool)
	errs   Errors
}

func (l *loader) fail(tenant string, entry int, field string, line int, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.file, Tenant: tenant, Entry: entry, Field: field, Line: line, Err: fmt.Errorf(format, args...)})
}

func (l *loader) load() []Tenant {
	f, err := os.Open(l.file)
	if err != nil {
		l.fail("", 0, "", 0, "%v", err)
		return nil
	}
	defer func() { _ = f.Close() }() // read only
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		l.fail("", 0, "", 0, "reading: %v", err)
		return nil
	}
	if len(data) > maxFileSize {
		l.fail("", 0, "", 0, "larger than %d MiB", maxFileSize>>20)
		return nil
	}
	// YAML does not allow tabs where JSON does (as indentation); JSON does not need them.
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		data = bytes.ReplaceAll(data, []byte("\t"), []byte(" "))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.fail("", 0, "", 0, "empty: want a list of tenants under the key tenants")
		} else {
			l.fail("", 0, "", 0, "not valid YAML or JSON: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		l.fail("", 0, "", extra.Line, "more than one YAML document: want one")
		return nil
	}
	root := deref(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = deref(root.Content[0])
	}
	if root.Kind != yaml.MappingNode {
		l.fail("", 0, "", root.Line, "want a mapping with the key tenants, a list of tenants")
		return nil
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], deref(root.Content[i+1])
		if k.Value != "tenants" {
			l.fail("", 0, k.Value, k.Line, "unknown key: the file has only tenants")
			continue
		}
		if list != nil {
			l.fail("", 0, k.Value, k.Line, "given twice")
			continue
		}
		list = v
	}
	switch {
	case list == nil:
		l.fail("", 0, "tenants", root.Line, "missing: want a list of tenants")
		return nil
	case list.Kind != yaml.SequenceNode:
		l.fail("", 0, "tenants", list.Line, "want a list of tenants")
		return nil
	case len(list.Content) == 0:
		l.fail("", 0, "tenants", list.Line, "empty: want at least one tenant")
		return nil
	}
	var out []Tenant
	ids := map[string]Tenant{}
	topics := map[string]Tenant{}
	for i, n := range list.Content {
		// An entry with other problems is still checked against the others, so that one load
		// reports everything.
		t, ok := l.entry(i+1, deref(n))
		if t.ID == "" {
			continue
		}
		if prev, dup := ids[t.ID]; dup {
			l.fail(t.ID, i+1, "id", t.Line, "duplicate id: also the tenant at line %d", prev.Line)
			continue
		}
		ids[t.ID] = t
		if prev, dup := topics[t.Topic]; dup {
			l.fail(t.ID, i+1, "topic", t.Line, "topic %s is also tenant %s's (line %d): each tenant needs its own", t.Topic, prev.ID, prev.Line)
			continue
		}
		topics[t.Topic] = t
		if ok {
			out = append(out, t)
		}
	}
	return out
}

// deref follows an alias.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// entry is an entry as written.
type entry struct {
	id, appID                                        string
	appSecretEnv, appSecretFile                      string
	accessTokenEnv, accessTokenFile                  string
	apiBaseURL, topic, eventSource, startFrom, title string
	targetType                                       *int
	targetIDs, followUserIDs                         []string
	followDepIDs                                     []int64
	rateLimit                                        *float64
	concurrency                                      *int
	lines                                            map[string]int // line of each key given
}

// entry decodes and checks the entry at position index (from 1); ok is false if it has a problem.
func (l *loader) entry(index int, n *yaml.Node) (t Tenant, ok bool) {
	before := len(l.errs)
	if n.Kind != yaml.MappingNode {
		l.fail("", index, "", n.Line, "want a mapping (id, credentials, …)")
		return Tenant{}, false
	}
	var e entry
	e.lines = map[string]int{}
	fields := map[string]any{
		"id": &e.id, "app_id": &e.appID,
		"app_secret_env": &e.appSecretEnv, "app_secret_file": &e.appSecretFile,
		"access_token_env": &e.accessTokenEnv, "access_token_file": &e.accessTokenFile,
		"api_base_url": &e.apiBaseURL, "topic": &e.topic, "event_source": &e.eventSource,
		"start_from": &e.startFrom, "title": &e.title,
		"target_type": &e.targetType, "target_ids": &e.targetIDs, "follow_user_ids": &e.followUserIDs,
		"follow_dep_ids": &e.followDepIDs,
		"api_rate_limit": &e.rateLimit, "api_concurrency": &e.concurrency,
	}
	// The id first, so that every later problem can name the tenant.
	name := ""
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], deref(n.Content[i+1]); k.Value == "id" && v.Kind == yaml.ScalarNode && validID.MatchString(v.Value) {
			name = v.Value
			break
		}
	}
	fail := func(field string, line int, format string, args ...any) {
		l.fail(name, index, field, line, format, args...)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		key := k.Value
		if prev, dup := e.lines[key]; dup {
			fail(key, k.Line, "given twice (also line %d)", prev)
			continue
		}
		e.lines[key] = k.Line
		switch key {
		case "app_secret", "access_token":
			fail(key, k.Line, "an inline secret is not accepted: name a variable (%s_env) or a file (%s_file) holding it", key, key)
			continue
		}
		dst, known := fields[key]
		if !known {
			if near := nearest(key, fields); near != "" {
				fail(key, k.Line, "unknown key (did you mean %s?)", near)
			} else {
				fail(key, k.Line, "unknown key")
			}
			continue
		}
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" || v.Kind == yaml.ScalarNode && v.Value == "" && v.Tag == "!!str" {
			fail(key, k.Line, "empty: give a value, or leave the key out")
			continue
		}
		if err := v.Decode(dst); err != nil {
			fail(key, k.Line, "want %s, not %s", want(dst), describe(v))
		}
	}
	if _, given := e.lines["id"]; !given {
		fail("id", n.Line, "missing")
	} else if name == "" && e.id != "" {
		fail("id", e.lines["id"], "%q: want %s (lower-case letters, digits, '.', '_', '-'; at most 63)", e.id, IDPattern)
	}
	t = Tenant{
		ID: name, Line: n.Line,
		Topic:       e.topic,
		EventSource: cmp.Or(e.eventSource, l.d.EventSource),
		StartFrom:   cmp.Or(e.startFrom, l.d.StartFrom),
		APIBaseURL:  cmp.Or(e.apiBaseURL, l.d.APIBaseURL),
		RateLimit:   l.d.RateLimit, Concurrency: l.d.Concurrency,
		Filter: wshoto.Filter{
			TargetType: e.targetType, TargetIDs: e.targetIDs, FollowUserIDs: e.followUserIDs,
			FollowDepIDs: e.followDepIDs, Title: e.title,
		},
	}
	if t.Topic == "" && name != "" {
		t.Topic = l.d.Topic + "." + name
	}
	if e.rateLimit != nil {
		t.RateLimit = *e.rateLimit
	}
	if e.concurrency != nil {
		t.Concurrency = *e.concurrency
	}
	l.credentials(&e, &t, fail)
	l.check(&e, &t, fail)
	return t, len(l.errs) == before
}

// credentials checks the entry's credential references and reads the secret into t.
func (l *loader) credentials(e *entry, t *Tenant, fail func(field string, line int, format string, args ...any)) {
	for _, inline := range []string{"app_secret", "access_token"} {
		if _, given := e.lines[inline]; given {
			return // refused already, with what to write instead
		}
	}
	app := e.appID != "" || e.appSecretEnv != "" || e.appSecretFile != ""
	tok := e.accessTokenEnv != "" || e.accessTokenFile != ""
	line := func(keys ...string) int {
		for _, k := range keys {
			if n := e.lines[k]; n > 0 {
				return n
			}
		}
		return t.Line
	}
	switch {
	case app && tok:
		fail("access_token", line("access_token_env", "access_token_file"), "both an app id and an access token: give one way of authenticating")
		return
	case !app && !tok:
		fail("", t.Line, "%v", errNoCredentials)
		return
	case app:
		t.AppID = e.appID
		switch {
		case e.appID == "":
			fail("app_id", line("app_secret_env", "app_secret_file"), "missing: an app secret needs its app id")
		case e.appSecretEnv != "" && e.appSecretFile != "":
			fail("app_secret_file", line("app_secret_file"), "both app_secret_env and app_secret_file: give one")
		case e.appSecretEnv == "" && e.appSecretFile == "":
			fail("app_secret_env", line("app_id"), "missing: app_id needs app_secret_env or app_secret_file")
		default:
			t.AppSecret, t.SecretFrom = l.secret(e, "app_secret", e.appSecretEnv, e.appSecretFile, fail)
		}
	default:
		if e.accessTokenEnv != "" && e.accessTokenFile != "" {
			fail("access_token_file", line("access_token_file"), "both access_token_env and access_token_file: give one")
			return
		}
		t.AccessToken, t.SecretFrom = l.secret(e, "access_token", e.accessTokenEnv, e.accessTokenFile, fail)
	}
}

// secret reads the secret named by env or file (one of them set); what is its name in messages.
func (l *loader) secret(e *entry, what, env, file string, fail func(field string, line int, format string, args ...any)) (secret, from string) {
	if env != "" {
		field := what + "_env"
		v, ok := l.getenv(env)
		switch {
		case !ok:
			fail(field, e.lines[field], "the variable %s is not set", env)
		case strings.TrimSpace(v) == "":
			fail(field, e.lines[field], "the variable %s is empty", env)
		}
		return strings.TrimSpace(v), "env " + env
	}
	field := what + "_file"
	p := file
	if !filepath.IsAbs(p) {
		p = filepath.Join(l.dir, p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		fail(field, e.lines[field], "reading the secret: %v", err)
		return "", "file " + p
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		fail(field, e.lines[field], "%s is empty", p)
	}
	return s, "file " + p
}

// check applies the rules of the settings' own packages to the entry's values.
func (l *loader) check(e *entry, t *Tenant, fail func(field string, line int, format string, args ...any)) {
	if t.Topic != "" {
		// publisher's own rules for topic names; the broker address is only there to reach them.
		err := publisher.Config{Brokers: []string{"127.0.0.1:9092"}, Topic: t.Topic}.Validate()
		var ce *publisher.ConfigError
		if errors.As(err, &ce) && ce.Field == "Topic" {
			fail("topic", e.lines["topic"], "%v", ce.Err)
		}
	}
	if _, err := poller.ParseStartFrom(t.StartFrom, time.Now(), l.d.Location); err != nil {
		fail("start_from", e.lines["start_from"], "%v", err)
	}
	if e.rateLimit != nil && *e.rateLimit <= 0 {
		fail("api_rate_limit", e.lines["api_rate_limit"], "%v: want a positive number of requests per second", *e.rateLimit)
	}
	// The API client's own rules for the base URL, the filters and the concurrency.
	cfg := wshoto.Config{
		BaseURL: t.APIBaseURL, AllowInsecure: l.d.AllowInsecure, Filter: t.Filter,
		Concurrency: t.Concurrency, RateLimit: t.RateLimit,
	}
	if e.concurrency != nil && *e.concurrency == 0 {
		cfg.Concurrency = -1 // 0 given on purpose is not "the default"
	}
	var ce *wshoto.ConfigError
	if err := cfg.Validate(); errors.As(err, &ce) {
		field := map[string]string{"BaseURL": "api_base_url", "Filter.TargetType": "target_type", "Concurrency": "api_concurrency"}[ce.Field]
		if field == "" {
			field = ce.Field
		}
		fail(field, e.lines[field], "%v", ce.Err)
	}
}

// want describes the type a destination wants.
func want(dst any) string {
	switch dst.(type) {
	case *string:
		return "a string"
	case **int, *int:
		return "an integer"
	case **float64:
		return "a number"
	case *[]string:
		return "a list of strings"
	case *[]int64:
		return "a list of integers"
	}
	return "another type"
}

// describe names what a node holds, for a type error.
func describe(v *yaml.Node) string {
	switch v.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	if v.Kind == yaml.ScalarNode && len(v.Value) <= 40 {
		return fmt.Sprintf("%q", v.Value)
	}
	return "that value"
}

// nearest returns the key of fields closest to key, if a typo away (at most two edits), or "".
func nearest(key string, fields map[string]any) string {
	best, bestD := "", 3
	for f := range fields {
		if d := editDistance(key, f); d < bestD || d == bestD && f < best {
			best, bestD = f, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
