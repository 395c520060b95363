package tenants

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/followpub/followpub/internal/modroot"
)

// readmeBlocks returns the fenced blocks of README.md's "For integrators" section, in order.
func readmeBlocks(t *testing.T) []string {
	t.Helper()
	root, err := modroot.Dir()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## For integrators\n")
	if !ok {
		t.Fatal(`README.md has no section "For integrators"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for _, m := range regexp.MustCompile("(?ms)^```[a-z]*\n(.*?)^```$").FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) < 3 {
		t.Fatalf("README's For integrators has %d fenced blocks; want the example, the broken file and its errors", len(blocks))
	}
	return blocks
}

// TestREADMEExample loads README's worked example and its broken file, and holds the errors it
// shows equal to what Load reports.
func TestREADMEExample(t *testing.T) {
	blocks := readmeBlocks(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "acme"), []byte("acme-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(p, []byte(blocks[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{"GLOBEX_WSHOTO_TOKEN": "globex-token", "INITECH_APP_SECRET": "initech-secret"})
	ts, err := Load(p, Defaults{}, getenv)
	if err != nil {
		t.Fatalf("README's example: %v", err)
	}
	var got []string
	for _, tn := range ts {
		got = append(got, tn.ID+" "+tn.Topic+" "+tn.APIBaseURL+" "+tn.AppSecret+tn.AccessToken)
	}
	want := []string{
		"acme wshoto.crm.follow.system.acme https://open.wshoto.com acme-secret",
		"globex wshoto.crm.follow.system.globex https://open.wshoto.com globex-token",
		"initech initech.crm.follow https://wshoto.initech.example initech-secret",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("README's example loads as\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	if err := os.WriteFile(p, []byte(blocks[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(p, Defaults{}, env(nil))
	if err == nil {
		t.Fatal("README's broken file loads")
	}
	shown := strings.ReplaceAll(strings.TrimSpace(blocks[2]), "/etc/followpub", dir)
	if err.Error() != shown {
		t.Errorf("README shows\n%s\nbut Load reports\n%s", shown, err)
	}
}
