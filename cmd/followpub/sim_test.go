package main_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/wshotosim"
)

// TestSimServesTenants runs `followpub sim -tenants 3` as a process: it lists every tenant,
// writes the tenants file, routes by app id, starts t02 revoked, and takes a fault change while
// it runs.
func TestSimServesTenants(t *testing.T) {
	addr := e2etest.FreeAddr(t)
	base := "http://" + addr
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	p := e2etest.Start(t, e2etest.Env(), "sim", "-tenants", "3", "-addr", addr, "-count", "5", "-revoked", "t02", "-write-tenants-file", file)
	if !e2etest.WaitFor(10*time.Second, func() bool { return strings.Contains(p.Output(), "\nt03 ") }) {
		t.Fatalf("followpub sim -tenants 3 did not list t03:\n%s", p.Output())
	}
	for _, line := range []string{
		"t01 t01-app t01-secret t01-token 5 " + base + "/tenants/t01\n",
		"tenants file for followpub: " + file + "\n",
	} {
		if !strings.Contains(p.Output(), line) {
			t.Errorf("output lacks %q:\n%s", line, p.Output())
		}
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "secrets", "t03")); err != nil || string(b) != "t03-secret\n" {
		t.Errorf("t03's secret file: %q, %v", b, err)
	}
	token := func(id string) string {
		_, body := e2etest.Get(base + wshotosim.TokenPath + "?appid=" + id + "-app&app_secret=" + id + "-secret")
		return body
	}
	if body := token("t01"); !strings.Contains(body, `"code":0`) {
		t.Errorf("t01's token: %s", body)
	}
	if body := token("t02"); !strings.Contains(body, `"code":10002`) {
		t.Errorf("revoked t02's token: %s; want code 10002", body)
	}
	resp, err := http.Post(base+wshotosim.ControlPrefix+"t02?revoked=false", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if body := token("t02"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"code":0`) {
		t.Errorf("t02's token after revoked=false (status %d): %s", resp.StatusCode, body)
	}
	p.Signal(syscall.SIGINT)
	if code := p.Wait(10 * time.Second); code != 0 {
		t.Errorf("sim exited %d after SIGINT; want 0", code)
	}
	for _, args := range [][]string{{"-tenants", "2", "-app-id", "x"}, {"-down", "t01"}, {"-tenants", "2", "-down", "t03"}, {"-tenants", "-1"}} {
		if code, out := e2etest.Run(t, 10*time.Second, e2etest.Env(), append([]string{"sim", "-addr", "127.0.0.1:0"}, args...)...); code != 2 {
			t.Errorf("followpub sim %v: exit %d; want 2\n%s", args, code, out)
		}
	}
}
