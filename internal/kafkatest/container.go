package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"
)

// containerImage is the only image family the testcontainers Kafka module supports.
const containerImage = "confluentinc/confluent-local:7.5.0"

// errNoDocker means no Docker daemon answered; the caller skips (or fails in CI).
var errNoDocker = errors.New("no Docker daemon answers")

var (
	// mainRuns is set by Main: the container is then shared by the whole test binary.
	mainRuns atomic.Bool

	dockerOnce sync.Once
	dockerErr  error

	shared struct {
		once  sync.Once
		ctr   *tckafka.KafkaContainer
		addrs []string
		err   error
	}
)

// Main runs the package's tests and then removes the Kafka container they shared, if one was
// started. Use it as the package's TestMain:
//
//	func TestMain(m *testing.M) { kafkatest.Main(m) }
//
// Without Main, each test that falls back to testcontainers gets a container of its own, removed
// when the test ends. Main is not needed when FOLLOWPUB_TEST_KAFKA_BROKERS is set.
func Main(m *testing.M) {
	mainRuns.Store(true)
	code := m.Run()
	if shared.ctr != nil {
		if err := testcontainers.TerminateContainer(shared.ctr); err != nil {
			fmt.Fprintf(os.Stderr, "kafkatest: removing the Kafka container: %v\n", err)
		}
	}
	os.Exit(code)
}

// containerBrokers returns the bootstrap addresses of a testcontainers Kafka container, or an
// error wrapping errNoDocker when no Docker daemon answers.
func containerBrokers(t testing.TB) ([]string, error) {
	t.Helper()
	if err := dockerReady(); err != nil {
		return nil, err
	}
	if mainRuns.Load() {
		shared.once.Do(func() {
			shared.ctr, shared.addrs, shared.err = runContainer()
		})
		return shared.addrs, shared.err
	}
	ctr, addrs, err := runContainer()
	if ctr != nil {
		t.Cleanup(func() {
			if err := testcontainers.TerminateContainer(ctr); err != nil {
				t.Errorf("kafkatest: removing the Kafka container: %v", err)
			}
		})
	}
	return addrs, err
}

// dockerReady configures testcontainers for this workplace (once) and checks that a Docker daemon
// answers. Ryuk, a helper image that would have to be pulled, stays off; the container is reached
// on localhost, never on the default gateway testcontainers would pick inside a container.
func dockerReady() error {
	dockerOnce.Do(func() {
		for k, want := range map[string]string{
			"TESTCONTAINERS_RYUK_DISABLED": "true",
			"TESTCONTAINERS_HOST_OVERRIDE": "localhost",
		} {
			switch v, ok := os.LookupEnv(k); {
			case !ok || v == "":
				_ = os.Setenv(k, want)
			case k == "TESTCONTAINERS_HOST_OVERRIDE" && !isLoopback(net.JoinHostPort(v, "0")):
				dockerErr = fmt.Errorf("%w: %s=%s is not a loopback host", errNoDocker, k, v)
				return
			case k == "TESTCONTAINERS_RYUK_DISABLED" && v != want:
				dockerErr = fmt.Errorf("%w: %s must be true here", errNoDocker, k)
				return
			}
		}
		dockerErr = pingDocker()
	})
	return dockerErr
}

// pingDocker asks the default provider for its health within a few seconds.
func pingDocker() (err error) {
	defer func() { // testcontainers may panic when no daemon is configured
		if r := recover(); r != nil {
			err = fmt.Errorf("%w (%v)", errNoDocker, r)
		}
	}()
	p, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return fmt.Errorf("%w (%v)", errNoDocker, err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Health(ctx); err != nil {
		return fmt.Errorf("%w (%v)", errNoDocker, err)
	}
	return nil
}

// runContainer starts one Kafka container and returns its loopback bootstrap address.
func runContainer() (*tckafka.KafkaContainer, []string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ctr, err := tckafka.Run(ctx, containerImage, tckafka.WithClusterID("followpub-kafkatest"))
	if err != nil {
		return ctr, nil, fmt.Errorf("running %s: %w", containerImage, err)
	}
	addrs, err := ctr.Brokers(ctx)
	if err != nil {
		return ctr, nil, fmt.Errorf("reading the container's broker address: %w", err)
	}
	for i, a := range addrs { // "localhost:PORT" → "127.0.0.1:PORT": never resolve to anything else
		if host, port, err := net.SplitHostPort(a); err == nil && host == "localhost" {
			addrs[i] = net.JoinHostPort("127.0.0.1", port)
		}
		if !isLoopback(addrs[i]) {
			return ctr, nil, fmt.Errorf("container broker address %s is not a loopback address", a)
		}
	}
	return ctr, addrs, nil
}
