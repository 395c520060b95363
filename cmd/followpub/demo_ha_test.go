package main_test

import (
	"strings"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/e2etest"
)

// TestDemoHA runs `demo --ha` (two instances on the embedded broker, the owner killed every 8 s):
// it kills owners, shows who owns the tenant, and ends with nothing lost or repeated. The embedded
// broker makes this a test of the demo, not of HA (internal/faults' TestHA* are, on a real broker).
func TestDemoHA(t *testing.T) {
	t.Parallel()
	code, out := e2etest.Run(t, 2*time.Minute, e2etest.Env(), "demo", "--ha", "--duration", "25s", "--kill-every", "8s")
	if code != 0 {
		t.Fatalf("demo --ha exited %d:\n%s", code, out)
	}
	if n := strings.Count(out, "✖ SIGKILL instance-"); n < 2 {
		t.Errorf("demo --ha killed %d owners in 25 s, want at least 2:\n%s", n, out)
	}
	for _, want := range []string{"owner: instance-", " 0 lost, 0 duplicates"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo --ha does not show %q:\n%s", want, out)
		}
	}
}
