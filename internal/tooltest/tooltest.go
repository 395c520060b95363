package tooltest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Need returns the path of the first of names found on PATH. Without any, it skips the test, or
// fails it when CI is set.
func Need(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found on PATH: run scripts/deploy/tools.sh (Debian packages prometheus, chromium)",
		strings.Join(names, " or "))
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// chromiumFlags keep headless Chromium to the page it is given: no background services, no
// sandbox (the tests run as root), and every connection that is not to loopback sent to a proxy
// on a loopback port where nothing listens.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
	"--disable-client-side-phishing-detection", "--no-pings", "--metrics-recording-only",
	"--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
	"--proxy-server=127.0.0.1:9", "--hide-scrollbars",
}

// chromium runs headless Chromium with args on url and returns its standard output.
func chromium(t testing.TB, url string, args ...string) []byte {
	t.Helper()
	if !strings.HasPrefix(url, "http://127.0.0.1:") && !strings.HasPrefix(url, "http://localhost:") {
		t.Fatalf("tooltest: %s is not a loopback URL", url)
	}
	bin := Need(t, "chromium", "chromium-browser")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append(append([]string{"--user-data-dir=" + t.TempDir()}, chromiumFlags...), args...)
	cmd := exec.CommandContext(ctx, bin, append(all, url)...)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tooltest: chromium on %s: %v\n%s", url, err, stderr.String())
	}
	return out
}

// DumpDOM loads url in headless Chromium and returns the document as rendered (after its
// templates and styles were applied).
func DumpDOM(t testing.TB, url string) string {
	t.Helper()
	return string(chromium(t, url, "--dump-dom"))
}

// Screenshot loads url in headless Chromium at width × height and writes a PNG to path.
func Screenshot(t testing.TB, url, path string, width, height int) {
	t.Helper()
	chromium(t, url, "--screenshot="+path, fmt.Sprintf("--window-size=%d,%d", width, height))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("tooltest: chromium wrote no screenshot of %s: %v", url, err)
	}
	if len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Fatalf("tooltest: the screenshot of %s is not a PNG (%d bytes)", url, len(b))
	}
}

// ImmutableUnavailable says why this machine cannot make a file immutable under a process that
// holds it open (chattr +i needs CAP_LINUX_IMMUTABLE and a file system that checks the flag on
// write, such as ext4 or xfs), or returns "" when it can.
func ImmutableUnavailable(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "probe")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = f.Close() }()
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		return fmt.Sprintf("chattr +i: %v %s", err, out)
	}
	defer func() { _ = exec.Command("chattr", "-i", path).Run() }()
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		return "this file system lets an open descriptor write to an immutable file"
	}
	return ""
}

// Chattr runs chattr flag path (+i makes every write to the file fail with EPERM, even through
// a descriptor opened before).
func Chattr(t testing.TB, flag, path string) {
	t.Helper()
	if out, err := exec.Command("chattr", flag, path).CombinedOutput(); err != nil {
		t.Fatalf("tooltest: chattr %s %s: %v %s", flag, path, err, out)
	}
}
