package tenants

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/followpub/followpub/internal/wshotosim"
)

// TestTheSimulatorsTenantsFileLoads loads the file `followpub sim -tenants` writes, and gets each
// tenant's token from the simulator with what Load read.
func TestTheSimulatorsTenantsFileLoads(t *testing.T) {
	var ts []wshotosim.Tenant
	for _, id := range wshotosim.TenantIDs(12) {
		ts = append(ts, wshotosim.Tenant{ID: id, Config: wshotosim.TenantConfig(wshotosim.Config{Count: -1}, id)})
	}
	m, err := wshotosim.NewMulti(ts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m)
	defer srv.Close()
	p := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := m.WriteTenantsFile(p, srv.URL); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(p, Defaults{Topic: "crm"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 12 {
		t.Fatalf("loaded %d tenants; want 12", len(loaded))
	}
	for i, tn := range loaded {
		if tn.ID != ts[i].ID || tn.Topic != "crm."+ts[i].ID || tn.APIBaseURL != srv.URL {
			t.Errorf("tenant %d: %s", i, tn)
		}
		resp, err := http.Get(tn.APIBaseURL + wshotosim.TokenPath + "?appid=" + url.QueryEscape(tn.AppID) + "&app_secret=" + url.QueryEscape(tn.AppSecret))
		if err != nil {
			t.Fatal(err)
		}
		var a struct {
			Code int `json:"code"`
		}
		err = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if err != nil || a.Code != 0 {
			t.Errorf("%s: token with the loaded credentials: code %d, %v", tn.ID, a.Code, err)
		}
		if st := m.Tenant(tn.ID).Stats(); st.TokensIssued != 1 {
			t.Errorf("%s: its simulator issued %d tokens; want 1", tn.ID, st.TokensIssued)
		}
	}
}
