package kafkatest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followpub/followpub/internal/modroot"
)

// startTimeout bounds start.sh, including a first download of the jars from Maven Central.
const startTimeout = 5 * time.Minute

// Broker is a private single-node Apache Kafka started by [StartDedicated]. Its methods are safe
// for concurrent use, though a test normally drives it from one goroutine.
type Broker struct {
	dir  string // start.sh's work dir: configuration, data, env, pid
	root string // repository root, where scripts/kafka lives

	mu  sync.Mutex
	env map[string]string // the last env file start.sh wrote
}

// StartDedicated starts a private broker with scripts/kafka/start.sh in t.TempDir() and stops it
// when the test ends. The broker listens on free loopback ports (PLAINTEXT and SASL_SSL), which stay
// the same across [Broker.Stop] and [Broker.Start]. KAFKA_VERSION, else
// FOLLOWPUB_TEST_KAFKA_VERSION, picks the version (default: start.sh's). Without Java or the jars
// the test is skipped, or fails when CI is set.
func StartDedicated(t testing.TB) *Broker {
	t.Helper()
	skipShort(t)
	if _, err := exec.LookPath("java"); err != nil {
		unavailable(t, "kafkatest: StartDedicated needs Java 17+ (java is not on PATH); "+howTo)
	}
	root, err := modroot.Dir()
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	b := &Broker{dir: t.TempDir(), root: root}
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		if err := b.stop(); err != nil {
			t.Errorf("kafkatest: stopping the dedicated broker: %v", err)
		}
	})
	b.Start(t)
	return b
}

// Addrs returns the PLAINTEXT bootstrap addresses.
func (b *Broker) Addrs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return splitAddrs(b.env[EnvBrokers])
}

// SASL returns the broker's SASL_SSL listener and credentials.
func (b *Broker) SASL() SASLBroker {
	b.mu.Lock()
	defer b.mu.Unlock()
	return SASLBroker{
		Brokers:    splitAddrs(b.env[EnvSASLBrokers]),
		Mechanisms: mechanisms(b.env[EnvSASLMechanisms]),
		User:       b.env[EnvSASLUser],
		Password:   b.env[EnvSASLPassword],
		CAFile:     b.env[EnvCAFile],
	}
}

// Dir returns the broker's work directory (configuration, data, kafka.log).
func (b *Broker) Dir() string { return b.dir }

// Stop shuts the broker down cleanly (SIGTERM, then SIGKILL after 30 s), keeping its data and
// ports for [Broker.Start]. Stopping a stopped broker does nothing.
func (b *Broker) Stop(t testing.TB) {
	t.Helper()
	if err := b.stop(); err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
}

// Kill stops the broker at once, as a crash would: SIGKILL right after SIGTERM, so requests in
// flight get no answer. Its data (in the page cache) and ports stay for [Broker.Start].
func (b *Broker) Kill(t testing.TB) {
	t.Helper()
	if err := b.stopWithin(0); err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
}

// Start starts the broker, or restarts it on the same ports and data after [Broker.Stop], and
// returns once it reports that it is started.
func (b *Broker) Start(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(b.root, "scripts", "kafka", "start.sh"), b.dir)
	cmd.Env = append(os.Environ(), "FOLLOWPUB_KAFKA_PARENT_PID="+strconv.Itoa(os.Getpid()))
	if os.Getenv("KAFKA_VERSION") == "" {
		if v := os.Getenv(EnvVersion); v != "" {
			cmd.Env = append(cmd.Env, "KAFKA_VERSION="+v)
		}
	}
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	began := time.Now()
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == 3:
		unavailable(t, "kafkatest: StartDedicated: Java or the Kafka jars are unavailable:\n"+out.String())
	case err != nil:
		t.Fatalf("kafkatest: scripts/kafka/start.sh: %v\n%s", err, out.String())
	}
	env, err := readEnvFile(filepath.Join(b.dir, "env"))
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	mustLoopback(t, "dedicated broker", splitAddrs(env[EnvBrokers]))
	b.env = env
	t.Logf("kafkatest: dedicated Kafka %s ready at %s in %v", env[EnvVersion], env[EnvBrokers],
		time.Since(began).Round(time.Millisecond))
}

func (b *Broker) stop() error { return b.stopWithin(-1) }

// stopWithin runs stop.sh, which sends SIGTERM and then SIGKILL after seconds (stop.sh's
// default when negative).
func (b *Broker) stopWithin(seconds int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(b.root, "scripts", "kafka", "stop.sh"), b.dir)
	if seconds >= 0 {
		cmd.Env = append(os.Environ(), "KAFKA_STOP_TIMEOUT="+strconv.Itoa(seconds))
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("scripts/kafka/stop.sh: %w\n%s", err, out)
	}
	return nil
}

// readEnvFile parses the `export NAME='value'` lines start.sh writes.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the broker's env file: %w", err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		name, value, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		env[name] = strings.Trim(value, "'")
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if env[EnvBrokers] == "" {
		return nil, fmt.Errorf("%s has no %s", path, EnvBrokers)
	}
	return env, nil
}
