package wshotosim

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// TenantsPrefix is the path under which a Multi also serves each tenant on its own base URL:
// {base}/tenants/{id}/openapi/… reaches tenant id only.
const TenantsPrefix = "/tenants/"

// tenantID is the pattern of a tenant id (docs/DESIGN.md §7), which keeps it safe in a URL path.
var tenantID = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Tenant is one tenant of a Multi: its id and its own simulator's configuration.
type Tenant struct {
	ID     string
	Config Config
}

// TenantIDs returns n tenant ids, t01 … tNN (at least two digits, more when n needs them).
func TenantIDs(n int) []string {
	width := max(2, len(strconv.Itoa(n)))
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("t%0*d", width, i+1)
	}
	return ids
}

// TenantCredentials returns the credentials TenantConfig gives tenant id: the app id and secret
// its token endpoint accepts, and its fixed access token.
func TenantCredentials(id string) (appID, appSecret, accessToken string) {
	return id + "-app", id + "-secret", id + "-token"
}

// TenantConfig returns base made tenant id's: its seed mixed with the id (so each tenant has its
// own data, the same in every run) and the credentials of TenantCredentials.
func TenantConfig(base Config, id string) Config {
	c := base
	c.Seed = int64(hashID(id)) ^ base.Seed
	c.AppID, c.AppSecret, c.StaticToken = TenantCredentials(id)
	return c
}

func hashID(id string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return h.Sum64()
}

// idSpaces is the number of id spaces of MaxIDOffset's range a Multi hands out, one per tenant:
// each is 2^30 ids wide, room for 2^28 records of each of a tenant's streams.
const idSpaces = 1 << 22

// Multi serves many simulated tenants on one listener, each a Server of its own, with its own
// credentials, data, arrivals and faults. It routes a token request by its appid, a list request
// by its access_token (a tenant's static token, or a token a tenant issued), and any request under
// TenantsPrefix+id by the path. What it cannot route is answered as a single Server would answer
// bad credentials, an unknown token or an unknown path, and counted in Unrouted. A Multi is safe
// for concurrent use.
type Multi struct {
	ids   []string
	byID  map[string]*Server
	byApp map[string]*Server

	mu       sync.Mutex
	byToken  map[string]*Server // static and issued tokens
	unrouted map[string]int64
}

// NewMulti returns a Multi serving tenants (in that order in Describe). Ids must match
// [a-z0-9][a-z0-9._-]{0,62} and be distinct, and so must the tenants' app ids and static tokens. A
// tenant whose Config.IDOffset is 0 gets an id space of its own, chosen from a hash of its id, so
// that no two tenants' generated ids collide and a tenant keeps its ids when others are added
// (unless two ids hash alike: the later one takes the next free space).
func NewMulti(tenants []Tenant) (*Multi, error) {
	m := &Multi{
		byID: make(map[string]*Server, len(tenants)), byApp: make(map[string]*Server, len(tenants)),
		byToken: make(map[string]*Server, len(tenants)), unrouted: map[string]int64{},
	}
	spaces := make(map[int64]bool, len(tenants))
	for _, t := range tenants {
		if t.Config.IDOffset != 0 {
			spaces[t.Config.IDOffset] = true
		}
	}
	for _, t := range tenants {
		if !tenantID.MatchString(t.ID) {
			return nil, fmt.Errorf("tenant id %q: want [a-z0-9][a-z0-9._-]{0,62}", t.ID)
		}
		if m.byID[t.ID] != nil {
			return nil, fmt.Errorf("tenant id %q given twice", t.ID)
		}
		cfg := t.Config
		if cfg.IDOffset == 0 {
			for b := hashID(t.ID) % idSpaces; ; b = (b + 1) % idSpaces {
				if off := int64(b) * (MaxIDOffset / idSpaces); !spaces[off] {
					cfg.IDOffset = off
					spaces[off] = true
					break
				}
			}
		}
		s, err := New(cfg)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t.ID, err)
		}
		c := s.Config()
		if m.byApp[c.AppID] != nil {
			return nil, fmt.Errorf("tenant %s: app id %q is another tenant's", t.ID, c.AppID)
		}
		if c.StaticToken != "" {
			if m.byToken[c.StaticToken] != nil {
				return nil, fmt.Errorf("tenant %s: its static token is another tenant's", t.ID)
			}
			m.byToken[c.StaticToken] = s
		}
		s.issued = func(tok string) {
			m.mu.Lock()
			m.byToken[tok] = s
			m.mu.Unlock()
		}
		m.ids = append(m.ids, t.ID)
		m.byID[t.ID] = s
		m.byApp[c.AppID] = s
	}
	return m, nil
}

// Tenant returns tenant id's simulator (to change its faults, revoke it, add records, read its
// Stats or Visible records), or nil if there is no such tenant.
func (m *Multi) Tenant(id string) *Server { return m.byID[id] }

// IDs returns the tenant ids in the order given to NewMulti.
func (m *Multi) IDs() []string { return slices.Clone(m.ids) }

// Unrouted counts the requests no tenant could take, by reason: "unknown_app_id",
// "unknown_token", "unknown_tenant" (a path under TenantsPrefix), "other" (a path not served).
func (m *Multi) Unrouted() map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps(m.unrouted)
}

func (m *Multi) refuse(w http.ResponseWriter, reason string, status int, body []byte) {
	m.mu.Lock()
	m.unrouted[reason]++
	m.mu.Unlock()
	writeJSON(w, status, body)
}

// ControlPrefix is the path of the run-time control of a tenant's faults:
// POST {base}/sim/tenants/ID?revoked=true|false&down=true|false (either or both) calls SetRevoked
// or SetDown, for those who run `followpub sim` as a process.
const ControlPrefix = "/sim/tenants/"

// SetDown makes tenant id answer HTTP 500 to everything, the token endpoint included (true), or
// restores the faults of its configuration (false). It reports whether the tenant exists.
func (m *Multi) SetDown(id string, down bool) bool {
	s := m.byID[id]
	if s == nil {
		return false
	}
	if down {
		_ = s.SetFaults(Faults{HTTP500: 1})
		s.SetFaultsOnToken(true)
	} else {
		_ = s.SetFaults(s.cfg.Faults) // validated by New
		s.SetFaultsOnToken(s.cfg.FaultsOnToken)
	}
	return true
}

// control serves ControlPrefix.
func (m *Multi) control(w http.ResponseWriter, r *http.Request, id string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, codeBody(405, "method not allowed"))
		return
	}
	s := m.byID[id]
	if s == nil {
		writeJSON(w, http.StatusNotFound, codeBody(404, "no such tenant"))
		return
	}
	q := r.URL.Query()
	var set []func()
	for name, apply := range map[string]func(bool){
		"revoked": s.SetRevoked,
		"down":    func(v bool) { m.SetDown(id, v) },
	} {
		if !q.Has(name) {
			continue
		}
		v, err := strconv.ParseBool(q.Get(name))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, codeBody(CodeInvalidRequest, name+": want true or false"))
			return
		}
		set = append(set, func() { apply(v) })
	}
	if len(set) == 0 {
		writeJSON(w, http.StatusBadRequest, codeBody(CodeInvalidRequest, "want revoked=true|false or down=true|false"))
		return
	}
	for _, f := range set {
		f()
	}
	writeJSON(w, http.StatusOK, []byte(`{"code":0,"msg":"ok"}`))
}

// ServeHTTP routes the request to its tenant's Server.
func (m *Multi) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id, ok := strings.CutPrefix(r.URL.Path, ControlPrefix); ok {
		m.control(w, r, id)
		return
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, TenantsPrefix); ok {
		id, path, _ := strings.Cut(rest, "/")
		s := m.byID[id]
		if s == nil {
			m.refuse(w, "unknown_tenant", http.StatusNotFound, codeBody(404, "no such tenant"))
			return
		}
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = "/"+path, ""
		r2.URL = &u
		s.ServeHTTP(w, r2)
		return
	}
	switch r.URL.Path {
	case TokenPath:
		if s := m.byApp[r.URL.Query().Get("appid")]; s != nil {
			s.ServeHTTP(w, r)
			return
		}
		m.refuse(w, "unknown_app_id", http.StatusOK, codeBody(CodeBadCredentials, "appid或app_secret错误"))
	case ListPath:
		m.mu.Lock()
		s := m.byToken[r.URL.Query().Get("access_token")]
		m.mu.Unlock()
		if s != nil {
			s.ServeHTTP(w, r)
			return
		}
		m.refuse(w, "unknown_token", http.StatusOK, codeBody(CodeTokenInvalid, "access_token无效"))
	default:
		m.refuse(w, "other", http.StatusNotFound, []byte(`{"code":404,"msg":"not found","data":null,"sub_code":"A0404"}`))
	}
}

// Describe returns the lines `followpub sim -tenants N` prints: where the simulator is, and each
// tenant's credentials, records and own base URL.
func (m *Multi) Describe(baseURL string) string {
	var b strings.Builder
	total := 0
	for _, id := range m.ids {
		total += m.byID[id].Stats().Visible
	}
	fmt.Fprintf(&b, "WeShoto API simulator at %s: %d tenants, %d records\n", baseURL, len(m.ids), total)
	fmt.Fprintf(&b, "  token: GET  %s%s?appid=APP_ID&app_secret=APP_SECRET (routed by appid)\n", baseURL, TokenPath)
	fmt.Fprintf(&b, "  list:  POST %s%s?access_token=TOKEN (routed by the token)\n", baseURL, ListPath)
	fmt.Fprintf(&b, "  or each tenant on its own base URL: %s%sID\n", baseURL, TenantsPrefix)
	b.WriteString("tenant app_id app_secret access_token records base_url\n")
	for _, id := range m.ids {
		s := m.byID[id]
		c := s.Config()
		fmt.Fprintf(&b, "%s %s %s %s %d %s%s%s\n", id, c.AppID, c.AppSecret, cmp.Or(c.StaticToken, "-"),
			s.Stats().Visible, baseURL, TenantsPrefix, id)
	}
	return b.String()
}

// WriteTenantsFile writes a followpub tenants file (docs/DESIGN.md §7) listing every tenant with
// its app id and api_base_url baseURL, and each app secret in a file of its own beside it
// (secrets/ID beside path, mode 0600), so that followpub polls exactly these tenants.
func (m *Multi) WriteTenantsFile(path, baseURL string) error {
	dir := filepath.Join(filepath.Dir(path), "secrets")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing the tenants file: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# The %d tenants of the simulator at %s (followpub sim -tenants).\ntenants:\n", len(m.ids), baseURL)
	for _, id := range m.ids {
		c := m.byID[id].Config()
		if err := os.WriteFile(filepath.Join(dir, id), []byte(c.AppSecret+"\n"), 0o600); err != nil {
			return fmt.Errorf("writing tenant %s's secret: %w", id, err)
		}
		fmt.Fprintf(&b, "  - id: %s\n    app_id: %q\n    app_secret_file: secrets/%s\n    api_base_url: %q\n", id, c.AppID, id, baseURL)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("writing the tenants file: %w", err)
	}
	return nil
}
