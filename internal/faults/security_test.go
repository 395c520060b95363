//go:build linux

package faults

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/internal/wshotosim"
)

// saslEnv points followpub at the broker's SASL_SSL listener with SCRAM-SHA-512.
func saslEnv(s kafkatest.SASLBroker, password string, withCA bool) []string {
	env := []string{
		"FOLLOWPUB_KAFKA_BROKERS=" + strings.Join(s.Brokers, ","),
		"FOLLOWPUB_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
		"FOLLOWPUB_KAFKA_SASL_USERNAME=" + s.User,
		"FOLLOWPUB_KAFKA_SASL_PASSWORD=" + password,
		"FOLLOWPUB_KAFKA_TLS=true",
		"FOLLOWPUB_KAFKA_WRITE_TIMEOUT=5s",
		"FOLLOWPUB_LOG_LEVEL=debug",
	}
	if withCA {
		env = append(env, "FOLLOWPUB_KAFKA_TLS_CA_FILE="+s.CAFile)
	}
	return env
}

// noneOf fails the test if any of the strings appears in out.
func noneOf(t *testing.T, what, out string, secrets ...string) {
	t.Helper()
	noSecret(t, what, out)
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Fatalf("%s shows a secret (%q…):\n%s", what, s[:min(6, len(s))], tail(out, 10))
		}
	}
}

// TestSASLSSL publishes through the broker's SASL_SSL listener (SCRAM-SHA-512 over TLS, the CA
// given in KAFKA_TLS_CA_FILE) and checks the records on the same broker's plain listener. Then it
// proves that TLS verification is on by default (no CA: the self-signed certificate is refused,
// nothing is published) and that a wrong password is refused; the password appears in no output.
func TestSASLSSL(t *testing.T) {
	t.Parallel()
	s := kafkatest.SASL(t)
	from, to := pastDays(1)
	w := e2etest.NewWorld(t, wshotosim.Config{Count: 300, Start: to.Add(-time.Hour), End: to}, from)
	ta := newTally(t, w.Brokers, w.Topic)

	t.Run("SCRAM-SHA-512 over TLS", func(t *testing.T) {
		env := w.Env(saslEnv(s, s.Password, true)...)
		code, out := run(t, 2*time.Minute, env, "check")
		noneOf(t, "check", out, s.Password)
		if code != 0 || !strings.Contains(out, "ok    Kafka brokers") {
			t.Fatalf("check over SASL_SSL exited %d:\n%s", code, out)
		}
		code, out = run(t, 2*time.Minute, env, "run", "--once")
		noneOf(t, "the debug log", out, s.Password)
		if code != 0 {
			t.Fatalf("run --once over SASL_SSL exited %d:\n%s", code, tail(out, 30))
		}
		want := w.Want()
		if missing := ta.syncUntil(t, want, 30*time.Second); len(missing) > 0 {
			t.Fatalf("%d of %d records missing after publishing over SASL_SSL", len(missing), len(want))
		}
	})
	published := ta.total

	t.Run("TLS verification is on by default", func(t *testing.T) {
		w.Sim.Insert(time.Now().Add(-time.Minute))
		code, out := run(t, 2*time.Minute, w.Env(saslEnv(s, s.Password, false)...), "run", "--once")
		noneOf(t, "the debug log", out, s.Password)
		if code != 1 {
			t.Fatalf("run --once without the CA exited %d, want 1:\n%s", code, tail(out, 20))
		}
		if !strings.Contains(out, "certificate") {
			t.Fatalf("the failure does not say the certificate was not trusted:\n%s", tail(out, 10))
		}
		code, out = run(t, time.Minute, w.Env(saslEnv(s, s.Password, false)...), "check")
		noneOf(t, "check", out, s.Password)
		if code != 1 || !strings.Contains(out, "FAIL  Kafka brokers") || !strings.Contains(out, "certificate") {
			t.Fatalf("check without the CA exited %d:\n%s", code, out)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		wrong := "wrong-" + s.Password
		code, out := run(t, 2*time.Minute, w.Env(saslEnv(s, wrong, true)...), "run", "--once")
		noneOf(t, "the debug log", out, s.Password, wrong)
		if code != 1 {
			t.Fatalf("run --once with a wrong password exited %d, want 1:\n%s", code, tail(out, 20))
		}
		if !strings.Contains(strings.ToLower(out), "authentication") {
			t.Fatalf("the failure does not say authentication failed:\n%s", tail(out, 10))
		}
		code, out = run(t, time.Minute, w.Env(saslEnv(s, wrong, true)...), "check")
		noneOf(t, "check", out, s.Password, wrong)
		if code != 1 {
			t.Fatalf("check with a wrong password exited %d:\n%s", code, out)
		}
	})
	ta.sync(t)
	if ta.total != published {
		t.Fatalf("%d records were published without a verified certificate or with a wrong password", ta.total-published)
	}
	figures(t, "sasl=SCRAM-SHA-512 tls=verified records=%d untrusted_cert=refused wrong_password=refused published_when_refused=0", published)
}

// TestPlainHTTPRefused: a plain http:// API URL is refused with exit 2, naming the variable, for
// every host that is not loopback — including names that merely start like one — before anything
// is sent; loopback hosts are accepted, and API_ALLOW_INSECURE=true lifts the refusal.
func TestPlainHTTPRefused(t *testing.T) {
	t.Parallel()
	base := []string{"PATH=" + os.Getenv("PATH"), "FOLLOWPUB_API_ACCESS_TOKEN=" + staticToken,
		"FOLLOWPUB_KAFKA_BROKERS=127.0.0.1:1", "FOLLOWPUB_HTTP_ADDR=", "FOLLOWPUB_LOG_FORMAT=json"}
	for _, u := range []string{"http://api.example.com", "http://10.0.0.1:8080", "http://localhost.example.com",
		"http://127.0.0.1.nip.io", "http://0x7f000001", "http://[::ffff:10.0.0.1]", "http://open.wshoto.com"} {
		for _, cmd := range [][]string{{"run", "--once"}, {"check"}, {"watermark", "show"}} {
			env := append(base[:len(base):len(base)], "FOLLOWPUB_STATE_PATH="+filepath.Join(t.TempDir(), "s"), "FOLLOWPUB_API_BASE_URL="+u)
			began := time.Now()
			code, out := run(t, 30*time.Second, env, cmd...)
			if code != 2 || !strings.Contains(out, "FOLLOWPUB_API_BASE_URL") {
				t.Errorf("%v with %s exited %d, want 2 naming FOLLOWPUB_API_BASE_URL:\n%s", cmd, u, code, tail(out, 5))
			}
			if time.Since(began) > 10*time.Second {
				t.Errorf("%v with %s took %v to refuse: it tried the network", cmd, u, time.Since(began))
			}
		}
	}
	for _, u := range []string{"http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1", "http://127.8.9.10:1"} {
		env := append(base[:len(base):len(base)], "FOLLOWPUB_STATE_PATH="+filepath.Join(t.TempDir(), "s"), "FOLLOWPUB_API_BASE_URL="+u)
		if code, out := run(t, 30*time.Second, env, "watermark", "show"); code != 0 {
			t.Errorf("a loopback http:// URL %s was refused (exit %d):\n%s", u, code, tail(out, 5))
		}
	}
	env := append(base[:len(base):len(base)], "FOLLOWPUB_STATE_PATH="+filepath.Join(t.TempDir(), "s"),
		"FOLLOWPUB_API_BASE_URL=http://api.example.com", "FOLLOWPUB_API_ALLOW_INSECURE=true")
	if code, out := run(t, 30*time.Second, env, "watermark", "show"); code != 0 {
		t.Errorf("FOLLOWPUB_API_ALLOW_INSECURE=true did not allow http:// (exit %d):\n%s", code, tail(out, 5))
	}
}

// TestSecretsNeverShown gathers everything followpub prints or serves while its secrets are in use
// — the app secret and the tokens it obtains, the SASL password, a fixed token — and greps it all:
// the debug log of `run` through token revocations, API faults and an unreachable token endpoint;
// the error of a failed `run --once`; /metrics, /healthz and /readyz; `check` that succeeds and
// `check` that fails; `watermark show` and `watermark set`; `env`.
func TestSecretsNeverShown(t *testing.T) {
	t.Parallel()
	s := kafkatest.SASL(t)
	from, to := pastDays(1)
	w := e2etest.NewWorld(t, wshotosim.Config{Count: 200, Start: to.Add(-time.Hour), End: to, Rate: 2,
		TokenTTL: 2 * time.Second, FaultsOnToken: true}, from, e2etest.WithTokens())
	addr := e2etest.FreeAddr(t)
	secrets := []string{s.Password, appSecret, staticToken}
	var outputs []string
	add := func(what, out string) {
		t.Helper()
		noneOf(t, what, out, secrets...)
		outputs = append(outputs, out)
	}
	env := w.Env(append(saslEnv(s, s.Password, true), "FOLLOWPUB_HTTP_ADDR="+addr, "FOLLOWPUB_API_TIMEOUT=500ms")...)

	p := start(t, env, "run")
	if !e2etest.WaitFor(60*time.Second, func() bool { return ready(addr) == http.StatusOK }) {
		t.Fatalf("never ready:\n%s", tail(p.Output(), 30))
	}
	for _, f := range []wshotosim.Fault{wshotosim.FaultHTTP500, wshotosim.FaultMalformed, wshotosim.FaultCode3, wshotosim.FaultHang, wshotosim.FaultAuth} {
		w.Sim.FailNext(f, 2)
		w.Sim.ExpireTokens()
		time.Sleep(700 * time.Millisecond)
	}
	// The retries' backoff decides when the renewals happen: wait for them rather than for a time.
	e2etest.WaitFor(30*time.Second, func() bool { return len(lines(p.Output(), "access token renewed")) >= 2 })
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		_, body := e2etest.Get("http://" + addr + path)
		add(path, body)
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Fatalf("run exited %d:\n%s", code, tail(p.Output(), 20))
	}
	add("the debug log of run", p.Output())
	if len(lines(p.Output(), "access token renewed")) < 2 {
		t.Errorf("fewer than two token renewals: the token flow was not exercised")
	}

	_, out := run(t, time.Minute, env, "check")
	add("check", out)
	_, out = run(t, 30*time.Second, env, "watermark", "show")
	add("watermark show", out)
	_, out = run(t, 30*time.Second, env, "watermark", "set", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	add("watermark set", out)
	_, out = run(t, 30*time.Second, env, "env")
	add("env", out)

	// Failures: the token endpoint unreachable (its URL carries the app secret), a wrong app
	// secret, a wrong fixed token, a wrong SASL password.
	dead := "http://" + e2etest.FreeAddr(t)
	for _, extra := range [][]string{
		{"FOLLOWPUB_API_BASE_URL=" + dead},
		{"FOLLOWPUB_API_APP_SECRET=" + appSecret + "-wrong"},
		{"FOLLOWPUB_API_ACCESS_TOKEN=" + staticToken + "-wrong"},
		{"FOLLOWPUB_KAFKA_SASL_PASSWORD=" + s.Password + "-wrong"},
	} {
		e := append(env[:len(env):len(env)], extra...)
		code, out := run(t, 2*time.Minute, e, "run", "--once")
		if code != 1 {
			t.Errorf("run --once with %s exited %d, want 1", strings.SplitN(extra[0], "=", 2)[0], code)
		}
		add("a failed run --once", out)
		_, out = run(t, 2*time.Minute, e, "check")
		add("a failed check", out)
	}
	total := 0
	for _, o := range outputs {
		total += len(o)
	}
	figures(t, "outputs=%d bytes=%d secrets_found=0 (app secret, issued tokens, fixed token, SASL password)", len(outputs), total)
}

// TestMetricsLoopbackByDefault starts `run` without FOLLOWPUB_HTTP_ADDR: the endpoints must listen
// on 127.0.0.1:9464 and on nothing else (every listening socket the process holds is checked in
// /proc). If another process holds the port, the refusal must name 127.0.0.1:9464.
func TestMetricsLoopbackByDefault(t *testing.T) {
	t.Parallel()
	from, to := pastDays(1)
	w := e2etest.NewWorld(t, wshotosim.Config{Count: 10, Start: to.Add(-time.Hour), End: to}, from)
	var env []string
	for _, kv := range w.Env() {
		if !strings.HasPrefix(kv, "FOLLOWPUB_HTTP_ADDR=") {
			env = append(env, kv)
		}
	}
	_, out := run(t, 30*time.Second, env, "env")
	if !strings.Contains(out, "127.0.0.1:9464") {
		t.Fatalf("followpub env does not show the default 127.0.0.1:9464:\n%s", out)
	}
	p := start(t, env, "run")
	var listening []string
	e2etest.WaitFor(20*time.Second, func() bool {
		listening = listeners(t, p.Pid())
		return len(listening) > 0 || p.Exited()
	})
	if p.Exited() {
		if strings.Contains(p.Output(), "listening on FOLLOWPUB_HTTP_ADDR=127.0.0.1:9464") {
			t.Logf("port 9464 is taken on this machine; the refusal names the loopback default:\n%s", tail(p.Output(), 2))
			return
		}
		t.Fatalf("followpub exited %d:\n%s", p.ExitCode(), tail(p.Output(), 20))
	}
	if len(listening) != 1 || listening[0] != "127.0.0.1:9464" {
		t.Fatalf("followpub listens on %v, want only 127.0.0.1:9464", listening)
	}
	if code, _ := e2etest.Get("http://127.0.0.1:9464/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz on the default address answered %d", code)
	}
	p.Signal(syscall.SIGTERM)
	p.Wait(30 * time.Second)
	figures(t, "default_listen=%v", listening)
}

// listeners returns the local addresses of the TCP sockets pid holds in the LISTEN state.
func listeners(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, file := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] { // 0A: LISTEN
				continue
			}
			out = append(out, procAddr(fields[1]))
		}
		f.Close()
	}
	return out
}

// procAddr decodes a /proc/net/tcp address (hex IP in host byte order, hex port).
func procAddr(s string) string {
	h, p, _ := strings.Cut(s, ":")
	port, _ := strconv.ParseUint(p, 16, 16)
	var ip net.IP
	for i := 0; i+8 <= len(h); i += 8 {
		v, _ := strconv.ParseUint(h[i:i+8], 16, 32)
		ip = append(ip, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10))
}
