package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.yaml.in/yaml/v3"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/schema"
)

// What make test-docker (scripts/docker/test.sh) hands the tests that run the images.
const (
	// envImage is the followpub image built from the Dockerfile.
	envImage = "FOLLOWPUB_TEST_IMAGE"
	// envImageVersion and envImageCommit are the VERSION and COMMIT it was built with.
	envImageVersion = "FOLLOWPUB_TEST_IMAGE_VERSION"
	envImageCommit  = "FOLLOWPUB_TEST_IMAGE_COMMIT"
	// The compose test override; its FP_* ports are picked here.
	composeOverride = "scripts/docker/compose.test.yml"
	// nonroot is the user the image runs as (distroless' nonroot).
	nonroot = "65532"
)

// dockerImage returns the image to test, after checking that a Docker daemon answers. Without an
// image or a daemon the test is skipped, or fails when make test-docker promised both
// (FOLLOWPUB_TEST_DOCKER).
func dockerImage(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping a test that runs Docker containers")
	}
	promised := os.Getenv(kafkatest.EnvDockerPromised) != ""
	unavailable := func(why string) {
		t.Helper()
		if promised {
			t.Fatalf("%s, but %s is set: make test-docker promised an image and a daemon", why, kafkatest.EnvDockerPromised)
		}
		t.Skipf("%s; make test-docker builds the images, starts a daemon and runs this test", why)
	}
	image := os.Getenv(envImage)
	if image == "" {
		unavailable(envImage + " is unset")
	}
	if _, err := docker(t, 15*time.Second, "version", "--format", "{{.Server.Version}}"); err != nil {
		unavailable(fmt.Sprintf("no Docker daemon answers (DOCKER_HOST=%q): %v", os.Getenv("DOCKER_HOST"), err))
	}
	return image
}

// docker runs the docker CLI in the repository's root and returns its standard output; the error
// carries the exit status and standard error.
func docker(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	return dockerEnv(t, timeout, nil, args...)
}

func dockerEnv(t *testing.T, timeout time.Duration, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// mustDocker is docker that fails the test on any error.
func mustDocker(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	out, err := docker(t, timeout, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// procIDs returns the real user and group ids of a process, from /proc (the daemon runs on this
// machine, so a container's processes are visible here).
func procIDs(t *testing.T, pid string) (uid, gid string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		t.Fatalf("reading the status of pid %s: %v", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			switch f[0] {
			case "Uid:":
				uid = f[1]
			case "Gid:":
				gid = f[1]
			}
		}
	}
	return uid, gid
}

// runningPID returns the host pid of a running container's main process.
func runningPID(t *testing.T, id string) string {
	t.Helper()
	var pid string
	if !e2etest.WaitFor(30*time.Second, func() bool {
		out, err := docker(t, 10*time.Second, "inspect", "-f", "{{.State.Running}} {{.State.Pid}}", id)
		f := strings.Fields(out)
		if err == nil && len(f) == 2 && f[0] == "true" && f[1] != "0" {
			pid = f[1]
			return true
		}
		return false
	}) {
		t.Fatalf("container %s is not running", id)
	}
	return pid
}

// TestImage runs the image make test-docker built from the Dockerfile: the stamped version, the
// non-root user, the time zone data, and a state directory the user can write on a fresh volume.
func TestImage(t *testing.T) {
	image := dockerImage(t)
	run := func(args ...string) (string, error) {
		return docker(t, time.Minute, append([]string{"run", "--rm", "--network", "none"}, args...)...)
	}

	t.Run("version", func(t *testing.T) {
		version, commit := os.Getenv(envImageVersion), os.Getenv(envImageCommit)
		if version == "" || commit == "" {
			t.Fatalf("%s and %s must say what the image was built with", envImageVersion, envImageCommit)
		}
		out, err := run(image, "version")
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("followpub %s (commit %s)\n", version, commit); out != want {
			t.Errorf("docker run %s version = %q, want %q", image, out, want)
		}
	})

	t.Run("non-root", func(t *testing.T) {
		if u := strings.TrimSpace(mustDocker(t, time.Minute, "image", "inspect", "-f", "{{.Config.User}}", image)); u != nonroot+":"+nonroot {
			t.Errorf("image user = %q, want %s:%s", u, nonroot, nonroot)
		}
		id := strings.TrimSpace(mustDocker(t, time.Minute, "run", "-d", "--network", "none", image, "sim", "--addr", "127.0.0.1:0"))
		t.Cleanup(func() { _, _ = docker(t, time.Minute, "rm", "-f", "-v", id) })
		uid, gid := procIDs(t, runningPID(t, id))
		if uid != nonroot || gid != nonroot {
			t.Errorf("the container's process runs as uid %s gid %s, want %s", uid, gid, nonroot)
		}
	})

	t.Run("time zone", func(t *testing.T) {
		out, err := run("-e", "FOLLOWPUB_API_TIMEZONE=Asia/Shanghai", image, "watermark", "show")
		if err != nil {
			t.Fatal(err)
		}
		var show struct {
			WindowStart string `json:"window_start"`
		}
		if err := json.Unmarshal([]byte(out), &show); err != nil {
			t.Fatalf("watermark show: %v\n%s", err, out)
		}
		ws, err := time.Parse(time.RFC3339, show.WindowStart)
		if err != nil {
			t.Fatalf("window_start %q: %v", show.WindowStart, err)
		}
		if _, off := ws.Zone(); off != 8*3600 {
			t.Errorf("window_start %s: offset %ds, want +08:00 (Asia/Shanghai)", show.WindowStart, off)
		}
		// A zone that does not exist must be refused, or the check above proves nothing.
		if _, err := run("-e", "FOLLOWPUB_API_TIMEZONE=Mars/Olympus_Mons", image, "watermark", "show"); err == nil ||
			!strings.Contains(err.Error(), "unknown time zone") {
			t.Errorf("an unknown time zone: err = %v, want one saying unknown time zone", err)
		}
	})

	t.Run("state on a fresh volume", func(t *testing.T) {
		vol := "followpub-test-state-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		mustDocker(t, time.Minute, "volume", "create", vol)
		t.Cleanup(func() { _, _ = docker(t, time.Minute, "volume", "rm", "-f", vol) })
		mount := vol + ":/var/lib/followpub"
		if _, err := run("-v", mount, image, "watermark", "set", "2026-11-01"); err != nil {
			t.Fatalf("the non-root user cannot write the state on a fresh volume: %v", err)
		}
		out, err := run("-v", mount, image, "watermark", "show")
		if err != nil {
			t.Fatal(err)
		}
		var show struct {
			Exists      bool   `json:"exists"`
			WindowStart string `json:"window_start"`
		}
		if err := json.Unmarshal([]byte(out), &show); err != nil {
			t.Fatalf("watermark show: %v\n%s", err, out)
		}
		if !show.Exists || !strings.HasPrefix(show.WindowStart, "2026-11-01T00:00:00") {
			t.Errorf("after watermark set 2026-11-01: %s", out)
		}
	})
}

// composeProject runs docker-compose.yml with the test override under one project name.
type composeProject struct {
	t    *testing.T
	name string
	env  []string
}

func (p *composeProject) run(timeout time.Duration, args ...string) (string, error) {
	p.t.Helper()
	base := []string{"compose", "-p", p.name, "-f", "docker-compose.yml", "-f", composeOverride}
	return dockerEnv(p.t, timeout, p.env, append(base, args...)...)
}

func (p *composeProject) must(timeout time.Duration, args ...string) string {
	p.t.Helper()
	out, err := p.run(timeout, args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// left lists what of the project is still there: containers (running or not) and volumes.
func (p *composeProject) left() (containers, volumes []string) {
	p.t.Helper()
	filter := "label=com.docker.compose.project=" + p.name
	c, _ := docker(p.t, time.Minute, "ps", "-aq", "--filter", filter)
	v, _ := docker(p.t, time.Minute, "volume", "ls", "-q", "--filter", filter)
	return strings.Fields(c), strings.Fields(v)
}

// metric sums the samples of followpub's /metrics that have the name and labels of sample (a
// per-tenant series carries tenant too); 0 when there are none.
func metric(url, sample string) float64 {
	name, labels, _ := strings.Cut(strings.TrimSuffix(sample, "}"), "{")
	_, body := e2etest.Get(url)
	var sum float64
	for _, l := range strings.Split(body, "\n") {
		series, v, ok := strings.Cut(l, " ")
		if !ok || strings.HasPrefix(l, "#") {
			continue
		}
		n, ls, _ := strings.Cut(strings.TrimSuffix(series, "}"), "{")
		if n != name || !hasLabels(ls, labels) {
			continue
		}
		f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
		sum += f
	}
	return sum
}

// hasLabels reports whether the label list have (`k="v",…`) holds every pair of want.
func hasLabels(have, want string) bool {
	for _, kv := range strings.Split(want, ",") {
		if kv != "" && !slices.Contains(strings.Split(have, ","), kv) {
			return false
		}
	}
	return true
}

// cycleLogs sums what followpub's JSON log says it published: its "cycle done" lines, and the
// "cycle ended early" lines of a cycle cut short (by a stop, or a generation's end).
func cycleLogs(t *testing.T, logs string) (cycles, published int) {
	t.Helper()
	for _, l := range e2etest.JSONLines(t, logs) {
		if l["msg"] != "cycle done" && l["msg"] != "cycle ended early" {
			continue
		}
		n, ok := l["published"].(float64)
		if !ok {
			t.Fatalf("a %s line without a published count: %v", l["msg"], l)
		}
		if l["msg"] == "cycle done" {
			cycles++
		}
		published += int(n)
	}
	return cycles, published
}

var tailKeyRE = regexp.MustCompile(`(?m)^key=(\S+) `)

// replica is one followpub service of the compose project, seen from the host.
type replica struct {
	service, http string
}

// owned is the replica's followpub_tenants_owned, or -1 when /metrics does not answer.
func (r replica) owned() float64 {
	code, body := e2etest.Get(r.http + "/metrics")
	if code != 200 {
		return -1
	}
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, "followpub_tenants_owned "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return -1
}

// soleOwner waits until exactly one of the running replicas owns the tenant and the others own
// nothing, the same on three reads in a row half a second apart; it returns the owner and the
// time of the first of those reads.
func soleOwner(t *testing.T, timeout time.Duration, running ...replica) (replica, time.Time, bool) {
	t.Helper()
	var owner replica
	var since time.Time
	streak := 0
	ok := e2etest.WaitFor(timeout, func() bool {
		var owners []replica
		answered := 0
		for _, r := range running {
			switch r.owned() {
			case 1:
				owners = append(owners, r)
				answered++
			case 0:
				answered++
			}
		}
		if answered == len(running) && len(owners) == 1 && (streak == 0 || owners[0] == owner) {
			if streak == 0 {
				since = time.Now()
			}
			owner = owners[0]
			streak++
		} else {
			streak = 0
		}
		if streak < 3 {
			time.Sleep(500 * time.Millisecond)
			return false
		}
		return true
	})
	return owner, since, ok
}

// TestComposeUp runs docker-compose.yml as a user would (with the test override: the local images,
// host networking): `up` brings both followpub replicas to ready, exactly one owns the tenant,
// every event they say they published is in Kafka exactly once with its key and CloudEvents
// headers; stopping the owner hands the tenant to the other, which publishes what arrives after
// without repeating anything; the tail service prints every event, and `down` leaves nothing behind.
func TestComposeUp(t *testing.T) {
	image := dockerImage(t)
	kafkaImage := os.Getenv(kafkatest.EnvImage)
	if kafkaImage == "" {
		t.Fatalf("%s is unset: make test-docker names the local Kafka image there", kafkatest.EnvImage)
	}
	ports, taken := map[string]string{}, map[string]bool{}
	for _, name := range []string{"FP_KAFKA_PORT", "FP_KAFKA_CONTROLLER_PORT", "FP_KAFKA_EXTERNAL_PORT", "FP_SIM_PORT", "FP_HTTP_PORT", "FP_HTTP_PORT_2"} {
		for ports[name] == "" {
			if _, port, _ := net.SplitHostPort(e2etest.FreeAddr(t)); !taken[port] {
				ports[name], taken[port] = port, true
			}
		}
	}
	p := &composeProject{t: t, name: "followpub-test-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36),
		env: []string{envImage + "=" + image, kafkatest.EnvImage + "=" + kafkaImage}}
	for k, v := range ports {
		p.env = append(p.env, k+"="+v)
	}
	down := false
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := p.run(time.Minute, "logs", "--no-color", "--tail", "40")
			t.Logf("the project's last log lines:\n%s", logs)
		}
		if !down {
			if _, err := p.run(2*time.Minute, "down", "-v", "--remove-orphans", "--timeout", "45"); err != nil {
				t.Errorf("cleaning up: %v", err)
			}
		}
	})
	replicas := []replica{
		{followpubService, "http://127.0.0.1:" + ports["FP_HTTP_PORT"]},
		{replica2, "http://127.0.0.1:" + ports["FP_HTTP_PORT_2"]},
	}
	logsOf := func(r replica) string {
		return p.must(time.Minute, "logs", "--no-color", "--no-log-prefix", r.service)
	}
	brokers := []string{"127.0.0.1:" + ports["FP_KAFKA_PORT"]}
	topic := envVars["FOLLOWPUB_KAFKA_TOPIC"]

	start := time.Now()
	p.must(5*time.Minute, "up", "-d")
	upTook, start := time.Since(start).Round(100*time.Millisecond), time.Now()
	// Both replicas ready: the owner after a cycle, the standby as a healthy group member.
	for _, r := range replicas {
		if !e2etest.WaitFor(3*time.Minute, func() bool {
			code, _ := e2etest.Get(r.http + "/readyz")
			return code == 200
		}) {
			t.Fatalf("%s: /readyz did not turn 200 within 3 minutes of up", r.service)
		}
	}
	ready := time.Since(start).Round(100 * time.Millisecond)
	for _, r := range replicas {
		id := strings.TrimSpace(p.must(time.Minute, "ps", "-q", r.service))
		if uid, _ := procIDs(t, runningPID(t, id)); uid != nonroot {
			t.Errorf("%s runs as uid %s, want %s", r.service, uid, nonroot)
		}
	}
	owner, _, ok := soleOwner(t, time.Minute, replicas...)
	if !ok {
		t.Fatalf("no single owner within a minute: followpub_tenants_owned %v, %v", replicas[0].owned(), replicas[1].owned())
	}
	standby := replicas[0]
	if owner == standby {
		standby = replicas[1]
	}

	// A few cycles on the owner: the backfill of the last 24 h, then what the simulator keeps adding.
	if !e2etest.WaitFor(time.Minute, func() bool {
		return metric(owner.http+"/metrics", `followpub_cycles_total{result="ok"}`) >= 3
	}) {
		t.Fatalf("%s (the owner) did not complete 3 cycles within a minute of being ready", owner.service)
	}
	if code, _ := e2etest.Get(standby.http + "/readyz"); code != 200 || standby.owned() != 0 {
		t.Fatalf("%s (the standby): /readyz %d, followpub_tenants_owned %v: want 200 and 0", standby.service, code, standby.owned())
	}
	// While the owner runs: no key twice, and Kafka holds at least what the logs said before the
	// read and at most what they say once the next cycle is done (the owner publishes meanwhile).
	_, before := cycleLogs(t, logsOf(owner)+logsOf(standby))
	msgs := e2etest.ReadTopic(t, brokers, topic)
	keys := e2etest.CountKeys(msgs)
	cyclesNow := metric(owner.http+"/metrics", `followpub_cycles_total{result="ok"}`)
	if !e2etest.WaitFor(time.Minute, func() bool {
		return metric(owner.http+"/metrics", `followpub_cycles_total{result="ok"}`) > cyclesNow
	}) {
		t.Fatalf("%s completed no cycle within a minute", owner.service)
	}
	_, after := cycleLogs(t, logsOf(owner)+logsOf(standby))
	if len(keys) != len(msgs) || len(msgs) < before || len(msgs) > after || before == 0 {
		t.Errorf("with %s owning the tenant: Kafka holds %d events with %d distinct keys; the replicas' logs said %d published before the read, %d after",
			owner.service, len(msgs), len(keys), before, after)
	}
	beforeFailover := len(msgs)

	// The owner stops (SIGTERM: it leaves the group): the standby takes the tenant over and
	// publishes what becomes visible from then on.
	p.must(2*time.Minute, "stop", owner.service)
	stopped := time.Now()
	cyclesOld, publishedOld := cycleLogs(t, logsOf(owner))
	_, owned, ok := soleOwner(t, time.Minute, standby)
	if !ok {
		t.Fatalf("%s did not take the tenant over within a minute of %s's stop", standby.service, owner.service)
	}
	tookOver := owned.Sub(stopped).Round(100 * time.Millisecond)
	if !e2etest.WaitFor(time.Minute, func() bool {
		return metric(standby.http+"/metrics", `followpub_cycles_total{result="ok"}`) >= 3 &&
			metric(standby.http+"/metrics", "followpub_records_published_total") > 0
	}) {
		t.Fatalf("%s, owning the tenant, did not complete 3 cycles with something published within a minute", standby.service)
	}

	// Both stopped cleanly, the replicas have published exactly what their cycles logged.
	p.must(2*time.Minute, "stop", standby.service)
	cyclesNew, publishedNew := cycleLogs(t, logsOf(standby))
	if cyclesOld < 3 || publishedOld == 0 || cyclesNew < 3 || publishedNew == 0 {
		t.Fatalf("%s logged %d cycles publishing %d events, %s %d cycles publishing %d: want 3 cycles and some events each",
			owner.service, cyclesOld, publishedOld, standby.service, cyclesNew, publishedNew)
	}
	published := publishedOld + publishedNew
	msgs = e2etest.ReadTopic(t, brokers, topic)
	keys = e2etest.CountKeys(msgs)
	if len(msgs) != published || len(keys) != published {
		t.Errorf("Kafka holds %d events with %d distinct keys; the cycle lines of %s say %d published, of %s %d, %d in all",
			len(msgs), len(keys), owner.service, publishedOld, standby.service, publishedNew, published)
	}
	// Records that came after the owner's stop can only be the new owner's.
	arrivedAfter := 0
	for _, m := range msgs {
		if err := checkEvent(m); err != nil {
			t.Errorf("partition %d offset %d: %v", m.Partition, m.Offset, err)
		}
		for _, h := range m.Headers {
			if ft, err := time.Parse(time.RFC3339Nano, string(h.Value)); h.Key == schema.HeaderTime && err == nil && ft.After(stopped) {
				arrivedAfter++
			}
		}
	}
	if arrivedAfter == 0 {
		t.Errorf("no event in Kafka has a follow_time after %s's stop: %s published nothing that arrived after the takeover", owner.service, standby.service)
	}

	// The tail service prints every event, each once.
	var printed []string
	if !e2etest.WaitFor(time.Minute, func() bool {
		out, _ := p.run(time.Minute, "logs", "--no-color", "--no-log-prefix", tailService)
		printed = nil
		for _, m := range tailKeyRE.FindAllStringSubmatch(out, -1) {
			printed = append(printed, m[1])
		}
		return len(printed) >= len(msgs)
	}) || len(printed) != len(msgs) {
		t.Errorf("the tail service printed %d events, want %d", len(printed), len(msgs))
	}
	for _, k := range printed {
		if keys[k] == 0 {
			t.Errorf("the tail service printed key %s, which Kafka does not hold", k)
		}
	}

	p.must(2*time.Minute, "down", "-v", "--timeout", "45")
	down = true
	if c, v := p.left(); len(c)+len(v) > 0 {
		t.Errorf("after down: containers %v and volumes %v are left", c, v)
	}
	if conn, err := net.DialTimeout("tcp", brokers[0], time.Second); err == nil {
		_ = conn.Close()
		t.Errorf("after down the broker's port %s still accepts connections", ports["FP_KAFKA_PORT"])
	}
	t.Logf("compose: up -d took %v (it waits for Kafka's health); /readyz 200 on both replicas %v after it; %s owned the tenant, %s stood by; %d events in Kafka, each once, before the failover; "+
		"%s stopped: %s owned the tenant %v after stop returned; over their lives %s published %d events in %d cycles, %s %d in %d (%d with a follow_time after the stop); "+
		"Kafka holds %d (%d distinct keys, key and CloudEvents headers checked on each); the tail service printed %d; down left nothing",
		upTook, ready, owner.service, standby.service, beforeFailover, owner.service, standby.service, tookOver,
		owner.service, publishedOld, cyclesOld, standby.service, publishedNew, cyclesNew, arrivedAfter,
		len(msgs), len(keys), len(printed))
}

// checkEvent holds one Kafka record to the event format: the key is the follow-up's id, and the
// CloudEvents headers say so too.
func checkEvent(m kafka.Message) error {
	var v struct {
		ID json.Number `json:"id"`
	}
	if err := json.Unmarshal(m.Value, &v); err != nil {
		return fmt.Errorf("value is not a JSON object with an id: %v", err)
	}
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	var errs []error
	if string(m.Key) != v.ID.String() {
		errs = append(errs, fmt.Errorf("key %q, value id %s", m.Key, v.ID))
	}
	if h[schema.HeaderID] != string(m.Key) {
		errs = append(errs, fmt.Errorf("%s %q, key %q", schema.HeaderID, h[schema.HeaderID], m.Key))
	}
	if h[schema.HeaderSpecVersion] != "1.0" {
		errs = append(errs, fmt.Errorf("%s %q, want 1.0", schema.HeaderSpecVersion, h[schema.HeaderSpecVersion]))
	}
	if h[schema.HeaderType] == "" || h[schema.HeaderSource] == "" {
		errs = append(errs, fmt.Errorf("%s %q, %s %q: want both", schema.HeaderType, h[schema.HeaderType], schema.HeaderSource, h[schema.HeaderSource]))
	}
	if _, err := time.Parse(time.RFC3339Nano, h[schema.HeaderTime]); err != nil {
		errs = append(errs, fmt.Errorf("%s: %v", schema.HeaderTime, err))
	}
	if h[schema.HeaderContentType] != "application/json" {
		errs = append(errs, fmt.Errorf("%s %q, want application/json", schema.HeaderContentType, h[schema.HeaderContentType]))
	}
	return errors.Join(errs...)
}

// overrideAddressVars are the variables host networking forces the test override to change: the
// services' names do not resolve on the host's network and their ports are picked free.
var overrideAddressVars = map[string]bool{
	"KAFKA_CONTROLLER_QUORUM_VOTERS": true, "KAFKA_LISTENERS": true, "KAFKA_ADVERTISED_LISTENERS": true,
	"FOLLOWPUB_API_BASE_URL": true, "FOLLOWPUB_KAFKA_BROKERS": true, "FOLLOWPUB_HTTP_ADDR": true,
}

// yamlFields returns a mapping's fields, following aliases and merge keys (<<) as compose does.
func yamlFields(n *yaml.Node) map[string]*yaml.Node {
	for n.Kind == yaml.AliasNode || n.Kind == yaml.DocumentNode {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else {
			n = n.Content[0]
		}
	}
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		return out
	}
	var merged []map[string]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		if k == "<<" {
			merged = append(merged, yamlFields(v))
			continue
		}
		out[k] = v
	}
	for _, m := range merged {
		for k, v := range m {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	}
	return out
}

func composeServices(t *testing.T, name string) map[string]map[string]*yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(readFile(t, name)), &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	svcs := yamlFields(&doc)["services"]
	if svcs == nil {
		t.Fatalf("%s has no services", name)
	}
	out := map[string]map[string]*yaml.Node{}
	for k, v := range yamlFields(svcs) {
		out[k] = yamlFields(v)
	}
	return out
}

func yamlStrings(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, c.Value)
	}
	return out
}

// withoutFlag drops flag and its value from args; it returns the value too.
func withoutFlag(args []string, flag string) (rest []string, value string) {
	for i := 0; i < len(args); i++ {
		if args[i] == flag && i+1 < len(args) {
			value = args[i+1]
			i++
			continue
		}
		rest = append(rest, args[i])
	}
	return rest, value
}

var listenerNameRE = regexp.MustCompile(`(\w+)://`)

// checkOverride: the test override changes the images and the networking of every service of
// docker-compose.yml, and nothing else but the addresses host networking forces.
func checkOverride(base, over map[string]map[string]*yaml.Node) []string {
	var p problems
	for name := range base {
		if over[name] == nil {
			p.add("%s: service %s of docker-compose.yml is missing: it would run on its public image and network", composeOverride, name)
		}
	}
	for name, svc := range over {
		b := base[name]
		if b == nil {
			p.add("%s: service %s is not in docker-compose.yml", composeOverride, name)
			continue
		}
		for _, key := range []string{"image", "pull_policy", "network_mode"} {
			if svc[key] == nil {
				p.add("%s: service %s sets no %s", composeOverride, name, key)
			}
		}
		if b["ports"] != nil && (svc["ports"] == nil || svc["ports"].Tag != "!reset") {
			p.add("%s: service %s keeps docker-compose.yml's ports: host networking maps none (ports: !reset [])", composeOverride, name)
		}
		for key, n := range svc {
			switch key {
			case "image":
				if n.Value == "" || (b["image"] != nil && n.Value == b["image"].Value) {
					p.add("%s: service %s: image %q does not swap docker-compose.yml's", composeOverride, name, n.Value)
				}
			case "pull_policy":
				if n.Value != "never" {
					p.add("%s: service %s: pull_policy %q, want never (no registry)", composeOverride, name, n.Value)
				}
			case "network_mode":
				if n.Value != "host" {
					p.add("%s: service %s: network_mode %q, want host", composeOverride, name, n.Value)
				}
			case "build", "ports":
				if n.Tag != "!reset" {
					p.add("%s: service %s: %s must be !reset, not changed", composeOverride, name, key)
				}
			case "environment":
				baseEnv := yamlFields(b["environment"])
				for k, v := range yamlFields(n) {
					switch {
					case !overrideAddressVars[k]:
						p.add("%s: service %s changes %s, which is not an address", composeOverride, name, k)
					case baseEnv[k] == nil:
						p.add("%s: service %s sets %s, which docker-compose.yml does not", composeOverride, name, k)
					case !strings.Contains(v.Value, "127.0.0.1:") || strings.Contains(v.Value, "0.0.0.0") || strings.Contains(v.Value, "localhost"):
						p.add("%s: service %s: %s=%s: want 127.0.0.1 addresses only", composeOverride, name, k, v.Value)
					case !slices.Equal(listenerNameRE.FindAllString(v.Value, -1), listenerNameRE.FindAllString(baseEnv[k].Value, -1)):
						p.add("%s: service %s: %s=%s names other listeners than docker-compose.yml's %s", composeOverride, name, k, v.Value, baseEnv[k].Value)
					}
				}
			case "command":
				got, addr := withoutFlag(yamlStrings(n), "--addr")
				want, _ := withoutFlag(yamlStrings(b["command"]), "--addr")
				if !slices.Equal(got, want) || !strings.HasPrefix(addr, "127.0.0.1:") {
					p.add("%s: service %s: command %v: want docker-compose.yml's %v with --addr 127.0.0.1:PORT",
						composeOverride, name, yamlStrings(n), yamlStrings(b["command"]))
				}
			case "healthcheck":
				h, bh := yamlFields(n), yamlFields(b["healthcheck"])
				got, addr := withoutFlag(yamlStrings(h["test"]), "--bootstrap-server")
				want, _ := withoutFlag(yamlStrings(bh["test"]), "--bootstrap-server")
				if len(h) != 1 || !slices.Equal(got, want) || !strings.HasPrefix(addr, "127.0.0.1:") {
					p.add("%s: service %s: healthcheck: want docker-compose.yml's test with --bootstrap-server 127.0.0.1:PORT, nothing else", composeOverride, name)
				}
			default:
				p.add("%s: service %s changes %s: the override swaps images and networking only", composeOverride, name, key)
			}
		}
	}
	slices.Sort(p)
	return p
}

// TestComposeOverride holds the test override to its purpose, and shows that the check catches
// an override that changes more.
func TestComposeOverride(t *testing.T) {
	base, over := composeServices(t, "docker-compose.yml"), composeServices(t, composeOverride)
	for _, problem := range checkOverride(base, over) {
		t.Error(problem)
	}

	breaks := []struct {
		name, want string
		edit       func(over map[string]map[string]*yaml.Node)
	}{
		{"service left out", "is missing", func(o map[string]map[string]*yaml.Node) { delete(o, simService) }},
		{"bridge network", "want host", func(o map[string]map[string]*yaml.Node) {
			o[kafkaService]["network_mode"] = &yaml.Node{Kind: yaml.ScalarNode, Value: "bridge"}
		}},
		{"other setting", "swaps images and networking only", func(o map[string]map[string]*yaml.Node) {
			o[followpubService]["restart"] = &yaml.Node{Kind: yaml.ScalarNode, Value: "no"}
		}},
		{"other variable", "not an address", func(o map[string]map[string]*yaml.Node) {
			o[followpubService]["environment"] = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Value: "FOLLOWPUB_POLL_INTERVAL"}, {Kind: yaml.ScalarNode, Value: "1s"}}}
		}},
		{"sim flags changed", "with --addr", func(o map[string]map[string]*yaml.Node) {
			c := *o[simService]["command"]
			c.Content = append(slices.Clone(c.Content), &yaml.Node{Kind: yaml.ScalarNode, Value: "--fault-500"},
				&yaml.Node{Kind: yaml.ScalarNode, Value: "0.5"})
			o[simService]["command"] = &c
		}},
		{"ports kept", "maps none", func(o map[string]map[string]*yaml.Node) { delete(o[followpubService], "ports") }},
	}
	for _, b := range breaks {
		t.Run(b.name, func(t *testing.T) {
			o := composeServices(t, composeOverride)
			b.edit(o)
			got := checkOverride(base, o)
			if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, b.want) }) {
				t.Errorf("want a problem saying %q, got %q", b.want, got)
			}
		})
	}
}
