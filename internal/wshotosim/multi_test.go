package wshotosim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/followpub/followpub/internal/clocktest"
)

// startMulti serves n tenants (TenantIDs, TenantConfig of base) with a fake clock at testNow.
func startMulti(t testing.TB, n int, base Config) (*Multi, *httptest.Server) {
	t.Helper()
	clk := clocktest.New(testNow)
	base.Clock = clk.Now
	var ts []Tenant
	for _, id := range TenantIDs(n) {
		ts = append(ts, Tenant{ID: id, Config: TenantConfig(base, id)})
	}
	m, err := NewMulti(ts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return m, srv
}

// token asks base's token endpoint for a token; it returns the answer's code, HTTP status and
// token.
func token(t testing.TB, base, appID, secret string) (code int64, status int, tok string) {
	t.Helper()
	resp, err := http.Get(base + TokenPath + "?appid=" + appID + "&app_secret=" + secret)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		Code int64 `json:"code"`
		Data *struct {
			AccessToken string `json:"access_token"`
		} `json:"data"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, resp.StatusCode, ""
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	if a.Data != nil {
		tok = a.Data.AccessToken
	}
	return a.Code, resp.StatusCode, tok
}

// listAt is list against a base URL.
func listAt(t testing.TB, base, tok, body string) answer {
	t.Helper()
	return list(t, &httptest.Server{URL: base}, tok, body)
}

var weekBody = page("2024-01-31", "2024-02-07", 1, 100)

func TestTenantIDs(t *testing.T) {
	if got := TenantIDs(3); !slices.Equal(got, []string{"t01", "t02", "t03"}) {
		t.Errorf("TenantIDs(3) = %v", got)
	}
	if got := TenantIDs(500); got[0] != "t001" || got[499] != "t500" {
		t.Errorf("TenantIDs(500) runs %s … %s; want t001 … t500", got[0], got[499])
	}
}

func TestMultiRoutesByAppIDTokenAndPath(t *testing.T) {
	m, srv := startMulti(t, 3, Config{Count: 20})
	for _, id := range m.IDs() {
		appID, secret, static := TenantCredentials(id)
		want := m.Tenant(id).Visible()
		var wantIDs []int64
		for _, r := range want {
			wantIDs = append(wantIDs, r.ID)
		}
		slices.Sort(wantIDs)
		code, _, tok := token(t, srv.URL, appID, secret)
		if code != 0 || tok == "" {
			t.Fatalf("%s: token: code %d", id, code)
		}
		for _, c := range []struct{ how, base, tok string }{
			{"issued token", srv.URL, tok},
			{"static token", srv.URL, static},
			{"own base URL", srv.URL + TenantsPrefix + id, static},
		} {
			a := listAt(t, c.base, c.tok, weekBody)
			got := ids(t, a.Data.Records)
			slices.Sort(got)
			if a.Code != 0 || !slices.Equal(got, wantIDs) {
				t.Errorf("%s by %s: code %d, ids %v; want that tenant's %v", id, c.how, a.Code, got, wantIDs)
			}
		}
		if st := m.Tenant(id).Stats(); st.Requests["access_token"] != 1 || st.Requests["listForSystem"] != 3 {
			t.Errorf("%s counted %v; want 1 token and 3 list requests", id, st.Requests)
		}
	}
	// Another tenant's token on a tenant's own base URL is refused by that tenant.
	_, _, t2 := TenantCredentials("t02")
	if a := listAt(t, srv.URL+TenantsPrefix+"t01", t2, weekBody); a.Code != CodeTokenInvalid {
		t.Errorf("t02's token at t01's base URL: code %d; want %d", a.Code, CodeTokenInvalid)
	}
	if code, _, _ := token(t, srv.URL, "t01-app", "t02-secret"); code != CodeBadCredentials {
		t.Errorf("t01's app id with t02's secret: code %d; want %d", code, CodeBadCredentials)
	}
	if code, _, _ := token(t, srv.URL, "nobody", "x"); code != CodeBadCredentials {
		t.Errorf("unknown app id: code %d; want %d", code, CodeBadCredentials)
	}
	if a := listAt(t, srv.URL, "bogus", weekBody); a.Code != CodeTokenInvalid {
		t.Errorf("unknown token: code %d; want %d", a.Code, CodeTokenInvalid)
	}
	if a := listAt(t, srv.URL+TenantsPrefix+"t99", "t01-token", weekBody); a.status != http.StatusNotFound {
		t.Errorf("unknown tenant path: status %d; want 404", a.status)
	}
	want := map[string]int64{"unknown_app_id": 1, "unknown_token": 1, "unknown_tenant": 1}
	if got := m.Unrouted(); len(got) != len(want) || got["unknown_app_id"] != 1 || got["unknown_token"] != 1 || got["unknown_tenant"] != 1 {
		t.Errorf("Unrouted() = %v; want %v", got, want)
	}
}

func TestMultiTenantsHaveTheirOwnDataAndIDs(t *testing.T) {
	m, _ := startMulti(t, 20, Config{Count: 50, Rate: 1})
	seen := map[int64]string{}
	followTimes := map[string]string{}
	for _, id := range m.IDs() {
		recs := m.Tenant(id).Visible()
		if len(recs) != 50 {
			t.Fatalf("%s has %d records; want 50", id, len(recs))
		}
		for _, r := range recs {
			if other, dup := seen[r.ID]; dup {
				t.Fatalf("id %d is both %s's and %s's", r.ID, other, id)
			}
			seen[r.ID] = id
			if r.ID >= BigIDBase && r.ID < BigIDBase+MaxIDOffset+1<<30 {
				continue // an id above 2^53, as single-tenant data has
			}
			if r.ID >= 1<<53 {
				t.Fatalf("%s: id %d is out of its ranges", id, r.ID)
			}
		}
		var times []string
		for _, r := range recs {
			times = append(times, strconv.FormatInt(r.FollowTime, 10))
		}
		key := strings.Join(times, ",")
		if other, dup := followTimes[key]; dup {
			t.Errorf("%s's records fall at the same times as %s's", id, other)
		}
		followTimes[key] = id
	}
	// The same tenant id gets the same data in another Multi, whatever else it holds.
	m2, _ := startMulti(t, 3, Config{Count: 50, Rate: 1})
	a, b := m.Tenant("t02").Visible(), m2.Tenant("t02").Visible()
	if len(a) != len(b) || a[0].ID != b[0].ID || string(a[0].Raw) != string(b[0].Raw) {
		t.Errorf("t02 differs between two simulators")
	}
}

func TestMultiFaultsAndRevocationStayWithTheirTenant(t *testing.T) {
	m, srv := startMulti(t, 3, Config{Count: 20})
	healthy := func(when string) {
		t.Helper()
		code, _, tok := token(t, srv.URL, "t01-app", "t01-secret")
		if code != 0 {
			t.Errorf("%s: t01's token request: code %d", when, code)
		}
		for _, tk := range []string{tok, "t01-token"} {
			if a := listAt(t, srv.URL, tk, weekBody); a.status != http.StatusOK || a.Code != 0 || len(a.Data.Records) != 20 {
				t.Errorf("%s: t01's list: status %d code %d, %d records", when, a.status, a.Code, len(a.Data.Records))
			}
		}
	}
	healthy("before")
	_, _, tok2 := token(t, srv.URL, "t02-app", "t02-secret")
	_, _, tok3 := token(t, srv.URL, "t03-app", "t03-secret")

	// t02: revoked credentials.
	m.Tenant("t02").SetRevoked(true)
	if code, _, _ := token(t, srv.URL, "t02-app", "t02-secret"); code != CodeBadCredentials {
		t.Errorf("revoked t02's token request: code %d; want %d", code, CodeBadCredentials)
	}
	for _, tk := range []string{tok2, "t02-token"} {
		if a := listAt(t, srv.URL, tk, weekBody); a.Code != CodeTokenRevoked {
			t.Errorf("revoked t02's list: code %d; want %d", a.Code, CodeTokenRevoked)
		}
	}
	// t03: 500 to everything.
	if err := m.Tenant("t03").SetFaults(Faults{HTTP500: 1}); err != nil {
		t.Fatal(err)
	}
	m.Tenant("t03").SetFaultsOnToken(true)
	if _, status, _ := token(t, srv.URL, "t03-app", "t03-secret"); status != http.StatusInternalServerError {
		t.Errorf("t03 down: token status %d; want 500", status)
	}
	for _, tk := range []string{tok3, "t03-token"} {
		if a := listAt(t, srv.URL, tk, weekBody); a.status != http.StatusInternalServerError {
			t.Errorf("t03 down: list status %d; want 500", a.status)
		}
	}
	healthy("while t02 is revoked and t03 down")
	if st := m.Tenant("t01").Stats(); len(st.Faults) != 0 || len(st.Rejected) != 0 {
		t.Errorf("t01 saw faults %v and rejections %v; want none", st.Faults, st.Rejected)
	}
	if st := m.Tenant("t03").Stats(); st.Faults[FaultHTTP500] != 3 {
		t.Errorf("t03 counted %v; want 3 HTTP 500s", st.Faults)
	}

	// Restored: t02's credentials work again (its old tokens stay refused), t03 answers.
	m.Tenant("t02").SetRevoked(false)
	code, _, fresh := token(t, srv.URL, "t02-app", "t02-secret")
	if code != 0 {
		t.Errorf("restored t02's token request: code %d", code)
	}
	for _, c := range []struct {
		tok  string
		code int64
	}{{fresh, 0}, {"t02-token", 0}, {tok2, CodeTokenRevoked}} {
		if a := listAt(t, srv.URL, c.tok, weekBody); a.Code != c.code {
			t.Errorf("restored t02's list: code %d; want %d", a.Code, c.code)
		}
	}
	if err := m.Tenant("t03").SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if a := listAt(t, srv.URL, "t03-token", weekBody); a.status != http.StatusOK || a.Code != 0 {
		t.Errorf("restored t03's list: status %d code %d", a.status, a.Code)
	}
}

func TestNewMultiRefuses(t *testing.T) {
	cfg := func(id string) Config { return TenantConfig(Config{Count: -1}, id) }
	for _, tc := range []struct {
		name    string
		tenants []Tenant
		want    string
	}{
		{"bad id", []Tenant{{ID: "T1", Config: cfg("t1")}}, `tenant id "T1"`},
		{"duplicate id", []Tenant{{ID: "a", Config: cfg("a")}, {ID: "a", Config: cfg("b")}}, `"a" given twice`},
		{"shared app id", []Tenant{{ID: "a", Config: cfg("a")}, {ID: "b", Config: Config{AppID: "a-app", Count: -1}}}, `tenant b: app id "a-app"`},
		{"shared token", []Tenant{{ID: "a", Config: cfg("a")}, {ID: "b", Config: Config{StaticToken: "a-token", Count: -1}}}, `tenant b: its static token`},
		{"bad config", []Tenant{{ID: "a", Config: Config{Order: "sideways"}}}, `tenant a: wshotosim config: order`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewMulti(tc.tenants)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewMulti: %v; want an error containing %s", err, tc.want)
			}
		})
	}
}

func TestMultiDescribeListsEveryTenant(t *testing.T) {
	m, _ := startMulti(t, 2, Config{Count: 5})
	d := m.Describe("http://127.0.0.1:1")
	for _, line := range []string{
		"t01 t01-app t01-secret t01-token 5 http://127.0.0.1:1/tenants/t01\n",
		"t02 t02-app t02-secret t02-token 5 http://127.0.0.1:1/tenants/t02\n",
	} {
		if !strings.Contains(d, line) {
			t.Errorf("Describe lacks %q:\n%s", line, d)
		}
	}
}

func TestMultiControlChangesATenantsFaultsWhileItRuns(t *testing.T) {
	_, srv := startMulti(t, 2, Config{Count: 5})
	post := func(query string) int {
		t.Helper()
		resp, err := http.Post(srv.URL+ControlPrefix+query, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	status := func(tok string) (int, int64) {
		a := listAt(t, srv.URL, tok, weekBody)
		return a.status, a.Code
	}
	if c := post("t02?down=true"); c != http.StatusOK {
		t.Fatalf("down=true: status %d", c)
	}
	if _, st, _ := token(t, srv.URL, "t02-app", "t02-secret"); st != http.StatusInternalServerError {
		t.Errorf("t02 down: token status %d; want 500", st)
	}
	if st, _ := status("t02-token"); st != http.StatusInternalServerError {
		t.Errorf("t02 down: list status %d; want 500", st)
	}
	if st, code := status("t01-token"); st != http.StatusOK || code != 0 {
		t.Errorf("t01 while t02 is down: status %d code %d", st, code)
	}
	if c := post("t02?down=false&revoked=true"); c != http.StatusOK {
		t.Fatalf("down=false&revoked=true: status %d", c)
	}
	if st, code := status("t02-token"); st != http.StatusOK || code != CodeTokenRevoked {
		t.Errorf("t02 revoked: status %d code %d; want 200 and %d", st, code, CodeTokenRevoked)
	}
	post("t02?revoked=false")
	if st, code := status("t02-token"); st != http.StatusOK || code != 0 {
		t.Errorf("t02 restored: status %d code %d", st, code)
	}
	for q, want := range map[string]int{"t09?down=true": 404, "t01?down=maybe": 400, "t01": 400} {
		if c := post(q); c != want {
			t.Errorf("POST %s%s: status %d; want %d", ControlPrefix, q, c, want)
		}
	}
	resp, err := http.Get(srv.URL + ControlPrefix + "t01?down=true")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET of the control: status %d; want 405", resp.StatusCode)
	}
}

// BenchmarkListRouting serves one list page from a single Server and from a Multi of 500 tenants
// (each request to another tenant), in-process: what routing by token adds.
func BenchmarkListRouting(b *testing.B) {
	body := page("2024-02-06", "2024-02-07", 1, 20)
	serve := func(b *testing.B, h http.Handler, tokens []string) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r := httptest.NewRequest(http.MethodPost, ListPath+"?access_token="+tokens[i%len(tokens)], strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
			i++
		}
	}
	b.Run("single", func(b *testing.B) {
		s, _, _ := start(b, Config{Count: 100})
		serve(b, s, []string{"static"})
	})
	b.Run("multi500", func(b *testing.B) {
		m, _ := startMulti(b, 500, Config{Count: 100})
		var tokens []string
		for _, id := range m.IDs() {
			_, _, tok := TenantCredentials(id)
			tokens = append(tokens, tok)
		}
		serve(b, m, tokens)
	})
}
