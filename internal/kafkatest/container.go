package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

const (
	// EnvImage names the Kafka image the testcontainers path runs. Default: DefaultImage.
	// make test-docker sets it to the image it builds locally (scripts/docker/base-images.sh).
	EnvImage = "FOLLOWPUB_TEST_KAFKA_IMAGE"
	// DefaultImage is the public Apache Kafka image, at the version scripts/kafka runs. Any image
	// configured the same way (KAFKA_* variables, CLUSTER_ID) will do.
	DefaultImage = "apache/kafka:4.4.0"
	// EnvDockerPromised, when non-empty, says a Docker daemon is there (make test-docker sets it):
	// a test that then finds none fails instead of skipping.
	EnvDockerPromised = "FOLLOWPUB_TEST_DOCKER"
)

// errNoDocker means no Docker daemon answered; the caller skips (or fails in CI).
var errNoDocker = errors.New("no Docker daemon answers")

var (
	// mainRuns is set by Main: the container is then shared by the whole test binary.
	mainRuns atomic.Bool

	dockerOnce sync.Once
	dockerErr  error

	shared struct {
		once  sync.Once
		ctr   testcontainers.Container
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

// ContainerBrokers returns the bootstrap addresses of a Kafka container started through
// testcontainers, whatever FOLLOWPUB_TEST_KAFKA_BROKERS says: for tests of this path itself.
// Without a Docker daemon the test is skipped, or fails when FOLLOWPUB_TEST_DOCKER promised one.
func ContainerBrokers(t testing.TB) []string {
	t.Helper()
	skipShort(t)
	addrs, err := containerBrokers(t)
	switch {
	case err == nil:
		return addrs
	case errors.Is(err, errNoDocker) && os.Getenv(EnvDockerPromised) == "":
		t.Skipf("kafkatest: %v; make test-docker starts a daemon and runs this test", err)
	case errors.Is(err, errNoDocker):
		t.Fatalf("kafkatest: %v, but %s is set: the daemon make test-docker started is gone (DOCKER_HOST=%s)",
			err, EnvDockerPromised, os.Getenv("DOCKER_HOST"))
	default:
		t.Fatalf("kafkatest: starting a Kafka container: %v", err)
	}
	return nil
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

// runContainer starts one single-node KRaft broker and returns its bootstrap address. The
// container shares the host's network and every listener binds 127.0.0.1 on a port picked free
// here: no port mapping, no bridge, nothing reachable from outside this machine.
func runContainer() (testcontainers.Container, []string, error) {
	image := os.Getenv(EnvImage)
	if image == "" {
		image = DefaultImage
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, nil, err
	}
	plain := "127.0.0.1:" + strconv.Itoa(ports[0])
	ctrl := "127.0.0.1:" + strconv.Itoa(ports[1])
	// The provider is told that the default network is the host's: otherwise it attaches every
	// container to a bridge network of its own, which it creates when there is no "bridge".
	p, err := testcontainers.NewDockerProvider(testcontainers.WithDefaultBridgeNetwork("host"))
	if err != nil {
		return nil, nil, fmt.Errorf("%w (%v)", errNoDocker, err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ctr, err := p.RunContainer(ctx, testcontainers.ContainerRequest{
		Image: image,
		Env: map[string]string{
			"KAFKA_NODE_ID":                                          "1",
			"KAFKA_PROCESS_ROLES":                                    "broker,controller",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                         "1@" + ctrl,
			"KAFKA_CONTROLLER_LISTENER_NAMES":                        "CONTROLLER",
			"KAFKA_LISTENERS":                                        "PLAINTEXT://" + plain + ",CONTROLLER://" + ctrl,
			"KAFKA_ADVERTISED_LISTENERS":                             "PLAINTEXT://" + plain,
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":                   "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
			"KAFKA_INTER_BROKER_LISTENER_NAME":                       "PLAINTEXT",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":                 "1",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR":         "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":                    "1",
			"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
			"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR":            "1",
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":                 "0",
			"KAFKA_LOG_DIRS":                                         "/tmp/kraft-combined-logs",
			"CLUSTER_ID":                                             clusterID(),
			"KAFKA_HEAP_OPTS":                                        "-Xmx512m -Xms512m",
		},
		HostConfigModifier: func(hc *container.HostConfig) { hc.NetworkMode = "host" },
		WaitingFor:         wait.ForLog("Kafka Server started").WithStartupTimeout(2 * time.Minute),
	})
	if err != nil {
		return ctr, nil, fmt.Errorf("running %s (%s names the image): %w", image, EnvImage, err)
	}
	return ctr, []string{plain}, nil
}

// clusterID returns a new Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not
// starting with '-' (what kafka-storage.sh random-uuid prints).
func clusterID() string {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:])
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
