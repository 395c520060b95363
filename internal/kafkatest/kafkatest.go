package kafkatest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// The environment contract between scripts/kafka/start.sh (and make test) and the tests.
const (
	// EnvBrokers is the PLAINTEXT bootstrap list, comma-separated host:port.
	EnvBrokers = "FOLLOWPUB_TEST_KAFKA_BROKERS"
	// EnvSASLBrokers is the SASL_SSL listener of the same broker.
	EnvSASLBrokers = "FOLLOWPUB_TEST_KAFKA_SASL_BROKERS"
	// EnvSASLMechanisms lists the SASL mechanisms the listener enables, comma-separated.
	// Default: SCRAM-SHA-512 (scripts/kafka/start.sh enables SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN).
	EnvSASLMechanisms = "FOLLOWPUB_TEST_KAFKA_SASL_MECHANISMS"
	// EnvSASLUser is the SASL user name.
	EnvSASLUser = "FOLLOWPUB_TEST_KAFKA_SASL_USER"
	// EnvSASLPassword is the SASL user's password.
	EnvSASLPassword = "FOLLOWPUB_TEST_KAFKA_SASL_PASSWORD"
	// EnvCAFile is the PEM certificate clients trust for the SASL_SSL listener.
	EnvCAFile = "FOLLOWPUB_TEST_KAFKA_CA_FILE"
	// EnvVersion is the broker's Apache Kafka version, e.g. 4.4.0.
	EnvVersion = "FOLLOWPUB_TEST_KAFKA_VERSION"
)

// howTo tells a reader of a skip message how to get a broker.
const howTo = "run `make test` (it starts Apache Kafka from Maven Central jars), or start one with " +
	"scripts/kafka/start.sh DIR and `. DIR/env`, or set " + EnvBrokers + "=127.0.0.1:PORT"

// opTimeout bounds each administrative call this package makes to a broker.
const opTimeout = 30 * time.Second

// Brokers returns the PLAINTEXT bootstrap addresses of a running broker: from
// FOLLOWPUB_TEST_KAFKA_BROKERS when set, otherwise from a testcontainers Kafka container where a
// Docker daemon answers. Without either the test is skipped, or fails when CI is set.
func Brokers(t testing.TB) []string {
	t.Helper()
	skipShort(t)
	if v := os.Getenv(EnvBrokers); v != "" {
		addrs := splitAddrs(v)
		mustLoopback(t, EnvBrokers, addrs)
		return addrs
	}
	addrs, err := containerBrokers(t)
	switch {
	case err == nil:
		return addrs
	case errors.Is(err, errNoDocker):
		unavailable(t, fmt.Sprintf("kafkatest: no Kafka broker: %s is unset and %v; %s", EnvBrokers, err, howTo))
	default:
		t.Fatalf("kafkatest: starting a Kafka container: %v", err)
	}
	return nil
}

// SASLBroker is a SASL_SSL listener with SASL authentication (SCRAM-SHA-512 at least).
type SASLBroker struct {
	// Brokers is the bootstrap list of the SASL_SSL listener.
	Brokers []string
	// Mechanisms are the SASL mechanisms the listener enables for User.
	Mechanisms []string
	// User and Password are credentials the broker accepts with every mechanism of Mechanisms.
	User, Password string
	// CAFile is a PEM file holding the certificate that signs the broker's TLS certificate.
	CAFile string
}

// SASL returns the SASL_SSL listener described by the FOLLOWPUB_TEST_KAFKA_SASL_* variables. Without
// them the test is skipped, or fails when CI is set.
func SASL(t testing.TB) SASLBroker {
	t.Helper()
	skipShort(t)
	s := SASLBroker{
		Brokers:    splitAddrs(os.Getenv(EnvSASLBrokers)),
		Mechanisms: mechanisms(os.Getenv(EnvSASLMechanisms)),
		User:       os.Getenv(EnvSASLUser),
		Password:   os.Getenv(EnvSASLPassword),
		CAFile:     os.Getenv(EnvCAFile),
	}
	if len(s.Brokers) == 0 || s.User == "" || s.Password == "" || s.CAFile == "" {
		unavailable(t, fmt.Sprintf("kafkatest: no SASL_SSL broker: set %s, %s, %s and %s; %s",
			EnvSASLBrokers, EnvSASLUser, EnvSASLPassword, EnvCAFile, howTo))
	}
	mustLoopback(t, EnvSASLBrokers, s.Brokers)
	return s
}

// mechanisms splits a comma-separated list of SASL mechanisms; empty means SCRAM-SHA-512.
func mechanisms(list string) []string {
	var out []string
	for _, m := range strings.Split(list, ",") {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return []string{"SCRAM-SHA-512"}
	}
	return out
}

// TLSConfig returns a client TLS configuration that trusts only s.CAFile.
func (s SASLBroker) TLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatalf("kafkatest: reading the CA file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("kafkatest: %s holds no PEM certificate", s.CAFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// Mechanism returns the SCRAM-SHA-512 mechanism for s.User and s.Password.
func (s SASLBroker) Mechanism(t testing.TB) sasl.Mechanism {
	t.Helper()
	m, err := scram.Mechanism(scram.SHA512, s.User, s.Password)
	if err != nil {
		t.Fatalf("kafkatest: scram mechanism: %v", err)
	}
	return m
}

// Topic creates a topic with a unique name and the given number of partitions (one replica each)
// on the cluster behind brokers, waits until every partition has a leader, and returns the name.
func Topic(t testing.TB, brokers []string, partitions int) string {
	t.Helper()
	if len(brokers) == 0 {
		t.Fatal("kafkatest: Topic: no brokers")
	}
	if partitions < 1 {
		t.Fatalf("kafkatest: Topic: %d partitions", partitions)
	}
	mustLoopback(t, "brokers", brokers)
	name := topicName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := createTopic(ctx, brokers[0], name, partitions); err != nil {
		t.Fatalf("kafkatest: creating topic %s: %v", name, err)
	}
	if err := waitLeaders(ctx, brokers[0], name, partitions); err != nil {
		t.Fatalf("kafkatest: waiting for leaders of topic %s: %v", name, err)
	}
	return name
}

// createTopic asks the controller, found through bootstrap, to create the topic.
func createTopic(ctx context.Context, bootstrap, name string, partitions int) error {
	conn, err := dial(ctx, bootstrap)
	if err != nil {
		return err
	}
	ctrl, err := conn.Controller()
	_ = conn.Close()
	if err != nil {
		return fmt.Errorf("finding the controller: %w", err)
	}
	addr := net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port))
	if !isLoopback(addr) {
		return fmt.Errorf("controller address %s is not a loopback address", addr)
	}
	cc, err := dial(ctx, addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	return cc.CreateTopics(kafka.TopicConfig{Topic: name, NumPartitions: partitions, ReplicationFactor: 1})
}

// waitLeaders polls the topic's metadata until it has the partitions, each with a leader.
func waitLeaders(ctx context.Context, bootstrap, name string, partitions int) error {
	var last error
	for {
		last = leadersReady(ctx, bootstrap, name, partitions)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func leadersReady(ctx context.Context, bootstrap, name string, partitions int) error {
	conn, err := dial(ctx, bootstrap)
	if err != nil {
		return err
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(name)
	if err != nil {
		return err
	}
	if len(parts) != partitions {
		return fmt.Errorf("%d of %d partitions in the metadata", len(parts), partitions)
	}
	for _, p := range parts {
		if p.Error != nil {
			return fmt.Errorf("partition %d: %w", p.ID, p.Error)
		}
		if p.Leader.Host == "" {
			return fmt.Errorf("partition %d has no leader", p.ID)
		}
	}
	return nil
}

// dial connects to a broker with ctx's deadline on the dial and on every later request.
func dial(ctx context.Context, addr string) (*kafka.Conn, error) {
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dialling %s: %w", addr, err)
	}
	if d, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(d); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

// topicName makes a valid, unique topic name that shows which test made it.
func topicName(testName string) string {
	var b strings.Builder
	for _, r := range testName {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	base := b.String()
	if len(base) > 120 {
		base = base[:120]
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return "kafkatest-" + base + "-" + hex.EncodeToString(rnd[:])
}

// splitAddrs splits a comma-separated address list, dropping blanks.
func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// isLoopback reports whether addr (host:port) names a loopback host.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// mustLoopback fails the test unless every address is a loopback address.
func mustLoopback(t testing.TB, what string, addrs []string) {
	t.Helper()
	for _, a := range addrs {
		if !isLoopback(a) {
			t.Fatalf("kafkatest: %s: %q is not a loopback host:port; tests only dial 127.0.0.1 or ::1", what, a)
		}
	}
}

// skipShort skips the test under go test -short, or fails it when the CI variable is set: CI must
// run the tests that need a broker, and a -short run there would pass without them.
func skipShort(t testing.TB) {
	t.Helper()
	skipIfShort(t, testing.Short())
}

// skipIfShort is skipShort with the -short flag given.
func skipIfShort(t testing.TB, short bool) {
	t.Helper()
	if !short {
		return
	}
	if inCI() {
		t.Fatal("kafkatest: -short with CI set: this test needs a Kafka broker and CI must not pass by " +
			"skipping it; run without -short (make test starts a broker), or unset CI for a fast local loop")
	}
	t.Skip("kafkatest: -short: skipping a test that needs a Kafka broker")
}

// unavailable skips the test, or fails it when the CI variable is set: CI must never pass by
// skipping the tests that need a broker.
func unavailable(t testing.TB, msg string) {
	t.Helper()
	if inCI() {
		t.Fatal(msg + " (CI is set, so a missing broker is a failure)")
	}
	t.Skip(msg)
}

func inCI() bool { return os.Getenv("CI") != "" }
