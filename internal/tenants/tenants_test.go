package tenants

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/followpub/followpub/internal/wshoto"
)

// The secrets of the tests; none may appear in an error, String or a log line.
const (
	fileSecret = "file-secret-NEVERPRINT"
	envSecret  = "env-secret-NEVERPRINT"
	envToken   = "env-token-NEVERPRINT"
)

// env is a getenv over a map.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

var testEnv = env(map[string]string{"ACME_SECRET": envSecret, "GLOBEX_TOKEN": envToken, "EMPTY": " "})

// write writes the tenants file (and a secret file beside it) into a new directory.
func write(t *testing.T, name, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "acme.secret"), []byte(fileSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var testDefaults = Defaults{Topic: "crm", EventSource: "src", StartFrom: "72h", APIBaseURL: "https://open.wshoto.com", RateLimit: 10, Concurrency: 4}

const goodYAML = `# three enterprises
tenants:
  - id: acme
    app_id: wx-acme
    app_secret_file: acme.secret   # relative to this file
  - id: globex
    access_token_env: GLOBEX_TOKEN
    start_from: 2024-02-01
    target_type: 1
    follow_user_ids: [wx_lina, wx_chenjing]
    follow_dep_ids: [1001, 1002]
  - id: initech.cn
    app_id: wx-initech
    app_secret_env: ACME_SECRET
    api_base_url: http://127.0.0.1:8090/tenants/t03
    topic: initech-follow
    event_source: https://initech.example/crm
    target_ids: [ct1, ct2]
    title: 客户状态变更
    api_rate_limit: 2.5
    api_concurrency: 1
`

func TestLoadYAML(t *testing.T) {
	p := write(t, "tenants.yaml", goodYAML)
	ts, err := Load(p, testDefaults, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	one, dep1, dep2 := 1, int64(1001), int64(1002)
	want := []Tenant{
		{ID: "acme", Topic: "crm.acme", EventSource: "src", StartFrom: "72h", APIBaseURL: "https://open.wshoto.com",
			AppID: "wx-acme", AppSecret: fileSecret, SecretFrom: "file " + filepath.Join(filepath.Dir(p), "acme.secret"),
			RateLimit: 10, Concurrency: 4, Line: 3},
		{ID: "globex", Topic: "crm.globex", EventSource: "src", StartFrom: "2024-02-01", APIBaseURL: "https://open.wshoto.com",
			AccessToken: envToken, SecretFrom: "env GLOBEX_TOKEN",
			Filter:    wshoto.Filter{TargetType: &one, FollowUserIDs: []string{"wx_lina", "wx_chenjing"}, FollowDepIDs: []int64{dep1, dep2}},
			RateLimit: 10, Concurrency: 4, Line: 6},
		{ID: "initech.cn", Topic: "initech-follow", EventSource: "https://initech.example/crm", StartFrom: "72h",
			APIBaseURL: "http://127.0.0.1:8090/tenants/t03", AppID: "wx-initech", AppSecret: envSecret, SecretFrom: "env ACME_SECRET",
			Filter:    wshoto.Filter{TargetIDs: []string{"ct1", "ct2"}, Title: "客户状态变更"},
			RateLimit: 2.5, Concurrency: 1, Line: 12},
	}
	if len(ts) != len(want) {
		t.Fatalf("loaded %d tenants; want %d", len(ts), len(want))
	}
	for i := range want {
		if !same(ts[i], want[i]) || ts[i].Line != want[i].Line {
			t.Errorf("tenant %d:\n got  %s %+v\n want %s %+v", i, ts[i], fields(ts[i]), want[i], fields(want[i]))
		}
	}
}

// fields shows what String hides, for a failing comparison in a test.
func fields(t Tenant) string {
	return fmt.Sprintf("secret=%q token=%q filter=%+v rate=%v conc=%d event_source=%s start_from=%s",
		t.AppSecret, t.AccessToken, t.Filter, t.RateLimit, t.Concurrency, t.EventSource, t.StartFrom)
}

func TestLoadJSON(t *testing.T) {
	// JSON, tab-indented as editors write it.
	p := write(t, "tenants.json", "{\n\t\"tenants\": [\n\t\t{\"id\": \"acme\", \"app_id\": \"wx-acme\", \"app_secret_file\": \"acme.secret\"},\n"+
		"\t\t{\"id\": \"globex\", \"access_token_env\": \"GLOBEX_TOKEN\", \"topic\": \"globex.follow\", \"follow_dep_ids\": [7], \"api_concurrency\": 8}\n\t]\n}\n")
	ts, err := Load(p, Defaults{}, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].Topic != "wshoto.crm.follow.system.acme" || ts[0].AppSecret != fileSecret ||
		ts[1].Topic != "globex.follow" || ts[1].AccessToken != envToken || !slices.Equal(ts[1].Filter.FollowDepIDs, []int64{7}) ||
		ts[1].Concurrency != 8 || ts[1].StartFrom != "today" || ts[1].APIBaseURL != wshoto.DefaultBaseURL || ts[1].Line != 4 {
		t.Errorf("loaded %v / %s / %s", ts, fields(ts[0]), fields(ts[1]))
	}
	// An error in JSON has its line too.
	p = write(t, "bad.json", "{\"tenants\": [\n {\"id\": \"acme\", \"app_id\": \"x\", \"app_secret_file\": \"acme.secret\",\n  \"topik\": \"x\"}]}")
	_, err = Load(p, Defaults{}, testEnv)
	var e *Error
	if !errors.As(err, &e) || e.Tenant != "acme" || e.Field != "topik" || e.Line != 3 {
		t.Errorf("unknown key in JSON: %v; want tenant acme, field topik, line 3", err)
	}
}

// entryOK is a valid entry's credentials, to which a case adds the key it breaks.
const entryOK = "app_id: wx1\n    app_secret_file: acme.secret\n"

func TestLoadRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		file   string
		tenant string // the *Error's Tenant; "#N" for Entry N with no tenant
		field  string
		line   int
		msg    string // also in the message
	}{
		{"unknown key", "tenants:\n  - id: acme\n    " + entryOK + "    tpoic: x\n", "acme", "tpoic", 5, "unknown key (did you mean topic?)"},
		{"unknown key, no near one", "tenants:\n  - id: acme\n    " + entryOK + "    colour: blue\n", "acme", "colour", 5, "colour: unknown key"},
		{"inline app secret", "tenants:\n  - id: acme\n    app_id: wx1\n    app_secret: " + fileSecret + "\n", "acme", "app_secret", 4, "inline secret is not accepted"},
		{"inline access token", "tenants:\n  - id: acme\n    access_token: " + fileSecret + "\n", "acme", "access_token", 3, "access_token_env"},
		{"duplicate id", "tenants:\n  - id: acme\n    " + entryOK + "  - id: acme\n    " + entryOK, "acme", "id", 5, "duplicate id: also the tenant at line 2"},
		{"duplicate topic after defaulting", "tenants:\n  - id: acme\n    " + entryOK + "  - id: globex\n    topic: crm.acme\n    " + entryOK, "globex", "topic", 5, "crm.acme is also tenant acme's"},
		{"bad id", "tenants:\n  - id: Acme!\n    " + entryOK, "#1", "id", 2, `"Acme!": want`},
		{"long id", "tenants:\n  - id: " + strings.Repeat("a", 64) + "\n    " + entryOK, "#1", "id", 2, "at most 63"},
		{"missing id", "tenants:\n  - " + entryOK, "#1", "id", 2, "missing"},
		{"no credentials", "tenants:\n  - id: acme\n    topic: x\n", "acme", "", 2, "no credentials"},
		{"app id without secret", "tenants:\n  - id: acme\n    app_id: wx1\n", "acme", "app_secret_env", 3, "app_id needs app_secret_env or app_secret_file"},
		{"secret without app id", "tenants:\n  - id: acme\n    app_secret_env: ACME_SECRET\n", "acme", "app_id", 3, "needs its app id"},
		{"two secret references", "tenants:\n  - id: acme\n    " + entryOK + "    app_secret_env: ACME_SECRET\n", "acme", "app_secret_file", 4, "give one"},
		{"app id and token", "tenants:\n  - id: acme\n    " + entryOK + "    access_token_env: GLOBEX_TOKEN\n", "acme", "access_token", 5, "both an app id and an access token"},
		{"two token references", "tenants:\n  - id: acme\n    access_token_env: GLOBEX_TOKEN\n    access_token_file: acme.secret\n", "acme", "access_token_file", 4, "give one"},
		{"unreadable secret file", "tenants:\n  - id: acme\n    app_id: wx1\n    app_secret_file: /nonexistent/acme\n", "acme", "app_secret_file", 4, "open /nonexistent/acme: no such file or directory"},
		{"secret file is a directory", "tenants:\n  - id: acme\n    access_token_file: /\n", "acme", "access_token_file", 3, "read /: is a directory"},
		{"unset secret variable", "tenants:\n  - id: acme\n    app_id: wx1\n    app_secret_env: NO_SUCH_VAR\n", "acme", "app_secret_env", 4, "the variable NO_SUCH_VAR is not set"},
		{"empty secret variable", "tenants:\n  - id: acme\n    access_token_env: EMPTY\n", "acme", "access_token_env", 3, "the variable EMPTY is empty"},
		{"bad start_from", "tenants:\n  - id: acme\n    " + entryOK + "    start_from: yesterday\n", "acme", "start_from", 5, `parsing start "yesterday"`},
		{"target_type not a number", "tenants:\n  - id: acme\n    " + entryOK + "    target_type: customer\n", "acme", "target_type", 5, `want an integer, not "customer"`},
		{"negative target_type", "tenants:\n  - id: acme\n    " + entryOK + "    target_type: -1\n", "acme", "target_type", 5, "must not be negative"},
		{"follow_dep_ids not integers", "tenants:\n  - id: acme\n    " + entryOK + "    follow_dep_ids: [1001, sales]\n", "acme", "follow_dep_ids", 5, "want a list of integers"},
		{"target_ids not a list", "tenants:\n  - id: acme\n    " + entryOK + "    target_ids: {a: 1}\n", "acme", "target_ids", 5, "want a list of strings, not a mapping"},
		{"topic not a string", "tenants:\n  - id: acme\n    " + entryOK + "    topic: [a]\n", "acme", "topic", 5, "want a string, not a list"},
		{"bad topic name", "tenants:\n  - id: acme\n    " + entryOK + "    topic: crm follow\n", "acme", "topic", 5, "only ASCII letters"},
		{"empty value", "tenants:\n  - id: acme\n    " + entryOK + "    topic:\n", "acme", "topic", 5, "empty: give a value, or leave the key out"},
		{"key twice", "tenants:\n  - id: acme\n    " + entryOK + "    app_id: wx2\n", "acme", "app_id", 5, "given twice (also line 3)"},
		{"concurrency zero", "tenants:\n  - id: acme\n    " + entryOK + "    api_concurrency: 0\n", "acme", "api_concurrency", 5, "want 1 to 64"},
		{"concurrency too high", "tenants:\n  - id: acme\n    " + entryOK + "    api_concurrency: 65\n", "acme", "api_concurrency", 5, "want 1 to 64"},
		{"rate limit not positive", "tenants:\n  - id: acme\n    " + entryOK + "    api_rate_limit: 0\n", "acme", "api_rate_limit", 5, "want a positive number"},
		{"insecure base url", "tenants:\n  - id: acme\n    " + entryOK + "    api_base_url: http://api.example.com\n", "acme", "api_base_url", 5, "http"},
		{"base url not a url", "tenants:\n  - id: acme\n    " + entryOK + "    api_base_url: ftp://x\n", "acme", "api_base_url", 5, "ftp"},
		{"entry not a mapping", "tenants:\n  - acme\n", "#1", "", 2, "want a mapping"},
		{"unknown top-level key", "tenants:\n  - id: acme\n    " + entryOK + "defaults: {}\n", "#0", "defaults", 5, "unknown key"},
		{"no tenants key", "{}\n", "#0", "tenants", 1, "missing"},
		{"tenants not a list", "tenants: acme\n", "#0", "tenants", 1, "want a list of tenants"},
		{"no tenants", "tenants: []\n", "#0", "tenants", 1, "at least one tenant"},
		{"empty file", "", "#0", "", 0, "empty"},
		{"not YAML", "tenants: [\n", "#0", "", 0, "not valid YAML or JSON"},
		{"two documents", "tenants: []\n---\ntenants: []\n", "#0", "", 2, "more than one YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, "tenants.yaml", strings.ReplaceAll(tc.file, "crm.", testDefaults.Topic+"."))
			ts, err := Load(p, testDefaults, testEnv)
			if err == nil {
				t.Fatalf("loaded %v; want an error", ts)
			}
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 {
				t.Fatalf("got %d problems (%v); want 1", len(es), err)
			}
			e := es[0]
			who := e.Tenant
			if who == "" {
				who = fmt.Sprintf("#%d", e.Entry)
			}
			if who != tc.tenant || e.Field != tc.field || e.Line != tc.line || e.File != p {
				t.Errorf("problem of %s, field %q, line %d, file %s; want %s, %q, %d, %s", who, e.Field, e.Line, e.File, tc.tenant, tc.field, tc.line, p)
			}
			msg := err.Error()
			name := "tenant " + tc.tenant
			if strings.HasPrefix(tc.tenant, "#") {
				name = "entry " + tc.tenant[1:]
			}
			for _, part := range []string{"tenants file " + p, tc.field + ": ", tc.msg} {
				if !strings.Contains(msg, part) {
					t.Errorf("message %q lacks %q", msg, part)
				}
			}
			if tc.tenant != "#0" && !strings.Contains(msg, name) {
				t.Errorf("message %q does not name %s", msg, name)
			}
			for _, secret := range []string{fileSecret, envSecret, envToken} {
				if strings.Contains(msg, secret) {
					t.Errorf("message %q shows a secret", msg)
				}
			}
		})
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	p := write(t, "tenants.yaml", `tenants:
  - id: acme
    app_id: wx1
    app_secret_env: NOPE
    start_from: soon
  - id: BAD
    access_token_env: GLOBEX_TOKEN
  - id: globex
    access_token_file: missing.token
    colour: blue
  - id: initech
    access_token_env: GLOBEX_TOKEN
`)
	ts, err := Load(p, testDefaults, testEnv)
	var es Errors
	if ts != nil || !errors.As(err, &es) {
		t.Fatalf("Load: %v, %v; want Errors", ts, err)
	}
	var got []string
	for _, e := range es {
		got = append(got, fmt.Sprintf("%s#%d %s %d", e.Tenant, e.Entry, e.Field, e.Line))
	}
	want := []string{
		"acme#1 app_secret_env 4", "acme#1 start_from 5",
		"#2 id 6",
		"globex#3 access_token_file 9", "globex#3 colour 10",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems\n %v\nwant\n %v\n%v", got, want, err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(want) {
		t.Errorf("message has %d lines; want one per problem:\n%v", n, err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("/nonexistent/tenants.yaml", testDefaults, testEnv)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "tenants file /nonexistent/tenants.yaml: open /nonexistent/tenants.yaml: no such file or directory") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestSecretsStayHidden(t *testing.T) {
	ts, err := Load(write(t, "tenants.yaml", goodYAML), testDefaults, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	for _, tn := range ts {
		log.Info("tenant", "tenant", tn)
		for _, out := range []string{tn.String(), fmt.Sprintf("%v %+v %#v %s", tn, tn, tn, tn), fmt.Sprint([]Tenant{tn}), logged.String()} {
			for _, secret := range []string{fileSecret, envSecret, envToken} {
				if strings.Contains(out, secret) {
					t.Errorf("%s shows a secret: %s", tn.ID, out)
				}
			}
		}
	}
	if !strings.Contains(logged.String(), `"secret_from":"env GLOBEX_TOKEN"`) || !strings.Contains(ts[0].String(), "app secret from file ") {
		t.Errorf("the log and String should say where the secret came from: %s / %s", logged.String(), ts[0])
	}
}

func TestDiff(t *testing.T) {
	base := func(id string) Tenant {
		return Tenant{ID: id, Topic: "crm." + id, AppID: "wx-" + id, AppSecret: "s", RateLimit: 10, Line: 2}
	}
	one := 1
	prev := []Tenant{base("a"), base("b"), base("c"), base("d"), base("e")}
	moved := base("a")
	moved.Line = 40 // only moved in the file
	rotated := base("b")
	rotated.AppSecret = "s2"
	filtered := base("c")
	filtered.Filter.TargetType = &one
	next := []Tenant{base("f"), moved, rotated, filtered, base("e")}
	added, removed, changed := Diff(prev, next)
	if !slices.Equal(added, []string{"f"}) || !slices.Equal(removed, []string{"d"}) || !slices.Equal(changed, []string{"b", "c"}) {
		t.Errorf("Diff = added %v, removed %v, changed %v; want [f], [d], [b c]", added, removed, changed)
	}
	if a, r, c := Diff(prev, prev); a != nil || r != nil || c != nil {
		t.Errorf("Diff of a load with itself = %v %v %v; want nothing", a, r, c)
	}
	if a, r, c := Diff(nil, prev[:2]); !slices.Equal(a, []string{"a", "b"}) || r != nil || c != nil {
		t.Errorf("Diff from nothing = %v %v %v; want [a b] added", a, r, c)
	}
}
