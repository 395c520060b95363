package kafkatest

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestMain(m *testing.M) { Main(m) }

// newWriter returns a producer with the settings followpub relies on: acknowledged by all in-sync
// replicas, murmur2 partitioning like the Java client, and a short batch timeout so a synchronous
// write does not wait a second for a batch to fill.
func newWriter(brokers []string, topic string, tr *kafka.Transport) *kafka.Writer {
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		RequiredAcks: kafka.RequireAll,
		Balancer:     &kafka.Murmur2Balancer{},
		BatchTimeout: 5 * time.Millisecond,
	}
	if tr != nil {
		w.Transport = tr
	}
	return w
}

func headerMap(hs []kafka.Header) map[string]string {
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		m[h.Key] = string(h.Value)
	}
	return m
}

// TestRoundTrip writes a keyed message with headers and reads it back through a consumer group
// (JoinGroup is what old kafka-go versions got wrong on Kafka 4) and through a partition Conn.
func TestRoundTrip(t *testing.T) { roundTrip(t, Brokers(t)) }

// TestContainerRoundTrip does the same through the testcontainers path, whatever
// FOLLOWPUB_TEST_KAFKA_BROKERS says: a broker in a container of FOLLOWPUB_TEST_KAFKA_IMAGE on the
// host's network. make test-docker runs it against its locally built Kafka image.
func TestContainerRoundTrip(t *testing.T) {
	brokers := ContainerBrokers(t)
	if len(brokers) != 1 || !isLoopback(brokers[0]) {
		t.Fatalf("container brokers = %v, want one loopback address", brokers)
	}
	t.Logf("Kafka container of %s at %s", cmp.Or(os.Getenv(EnvImage), DefaultImage), brokers[0])
	roundTrip(t, brokers)
}

func roundTrip(t *testing.T, brokers []string) {
	const partitions = 3
	topic := Topic(t, brokers, partitions)

	msg := kafka.Message{
		Key:   []byte("1234567890123456789"),
		Value: []byte(`{"id":1234567890123456789,"title":"跟进"}`),
		Headers: []kafka.Header{
			{Key: "ce_specversion", Value: []byte("1.0")},
			{Key: "ce_id", Value: []byte("1234567890123456789")},
			{Key: "content-type", Value: []byte("application/json")},
		},
	}
	w := newWriter(brokers, topic, nil)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msg); err != nil {
		t.Fatalf("writing: %v", err)
	}
	wantPart := (&kafka.Murmur2Balancer{}).Balance(msg, 0, 1, 2)

	check := func(t *testing.T, got kafka.Message) {
		t.Helper()
		if string(got.Key) != string(msg.Key) {
			t.Errorf("key = %q, want %q", got.Key, msg.Key)
		}
		if string(got.Value) != string(msg.Value) {
			t.Errorf("value = %q, want %q", got.Value, msg.Value)
		}
		if got.Partition != wantPart {
			t.Errorf("partition = %d, want %d (murmur2 of the key)", got.Partition, wantPart)
		}
		gh, wh := headerMap(got.Headers), headerMap(msg.Headers)
		if len(gh) != len(wh) {
			t.Errorf("headers = %v, want %v", gh, wh)
		}
		for k, v := range wh {
			if gh[k] != v {
				t.Errorf("header %s = %q, want %q", k, gh[k], v)
			}
		}
	}

	t.Run("reader", func(t *testing.T) {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:     brokers,
			Topic:       topic,
			GroupID:     topic + "-group",
			StartOffset: kafka.FirstOffset,
			MaxWait:     100 * time.Millisecond,
		})
		defer r.Close()
		got, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("reading through a consumer group: %v", err)
		}
		check(t, got)
	})

	t.Run("conn", func(t *testing.T) {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, wantPart)
		if err != nil {
			t.Fatalf("dialling the leader: %v", err)
		}
		defer conn.Close()
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		got, err := conn.ReadMessage(1 << 20)
		if err != nil {
			t.Fatalf("reading from the partition: %v", err)
		}
		got.Partition = wantPart // a Conn does not fill it in
		check(t, got)
		if got.Offset != 0 {
			t.Errorf("offset = %d, want 0 on a fresh topic", got.Offset)
		}
	})
}

// TestSASLSCRAM publishes over SASL_SSL with SCRAM-SHA-512 and reads the message back, and shows
// that a wrong password is refused as an authentication failure.
func TestSASLSCRAM(t *testing.T) {
	s := SASL(t)
	topic := Topic(t, Brokers(t), 1)
	tlsConf := s.TLSConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tr := &kafka.Transport{TLS: tlsConf, SASL: s.Mechanism(t)}
	defer tr.CloseIdleConnections() // Writer.Close leaves a Transport it did not make open
	w := newWriter(s.Brokers, topic, tr)
	defer w.Close()
	want := kafka.Message{Key: []byte("42"), Value: []byte(`{"id":42}`)}
	if err := w.WriteMessages(ctx, want); err != nil {
		t.Fatalf("writing over SASL_SSL: %v", err)
	}

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   s.Brokers,
		Topic:     topic,
		Partition: 0,
		MaxWait:   100 * time.Millisecond,
		Dialer:    &kafka.Dialer{Timeout: 10 * time.Second, TLS: tlsConf, SASLMechanism: s.Mechanism(t)},
	})
	defer r.Close()
	got, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("reading over SASL_SSL: %v", err)
	}
	if string(got.Key) != "42" || string(got.Value) != `{"id":42}` {
		t.Errorf("read %q=%q, want 42={\"id\":42}", got.Key, got.Value)
	}

	t.Run("wrong password", func(t *testing.T) {
		bad := s
		bad.Password = s.Password + "-wrong"
		d := &kafka.Dialer{Timeout: 10 * time.Second, TLS: tlsConf, SASLMechanism: bad.Mechanism(t)}
		conn, err := d.DialContext(ctx, "tcp", s.Brokers[0])
		if err == nil {
			_ = conn.Close()
			t.Fatal("dialling with a wrong password succeeded")
		}
		if !errors.Is(err, kafka.SASLAuthenticationFailed) {
			t.Errorf("dial error = %v, want SASL Authentication Failed", err)
		}

		btr := &kafka.Transport{TLS: tlsConf, SASL: bad.Mechanism(t)}
		defer btr.CloseIdleConnections()
		bw := newWriter(s.Brokers, topic, btr)
		bw.MaxAttempts = 1
		defer bw.Close()
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		err = bw.WriteMessages(wctx, want)
		if err == nil {
			t.Fatal("writing with a wrong password succeeded")
		}
		if !errors.Is(err, kafka.SASLAuthenticationFailed) &&
			!strings.Contains(strings.ToLower(err.Error()), "authentication") {
			t.Errorf("write error = %v, want an authentication failure", err)
		}
		t.Logf("write with a wrong password: %v", err)
	})

	t.Run("untrusted certificate", func(t *testing.T) {
		// Without the CA file the broker's self-signed certificate must be refused.
		d := &kafka.Dialer{Timeout: 10 * time.Second, TLS: &tls.Config{RootCAs: x509.NewCertPool()},
			SASLMechanism: s.Mechanism(t)}
		conn, err := d.DialContext(ctx, "tcp", s.Brokers[0])
		if err == nil {
			_ = conn.Close()
			t.Fatal("TLS accepted a certificate from an untrusted issuer")
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("dial error = %v, want x509.UnknownAuthorityError", err)
		}
	})
}

// TestDedicatedOutage takes a private broker down and brings it back: writes fail while it is down
// and succeed, with the same Writer, once it is back on the same ports.
func TestDedicatedOutage(t *testing.T) {
	b := StartDedicated(t)
	topic := Topic(t, b.Addrs(), 1)
	w := newWriter(b.Addrs(), topic, nil)
	defer w.Close()
	write := func(timeout time.Duration, value string) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte(value)})
	}
	if err := write(30*time.Second, "before"); err != nil {
		t.Fatalf("writing before the outage: %v", err)
	}

	addrs := b.Addrs()
	b.Stop(t)
	began := time.Now()
	if err := write(3*time.Second, "during"); err == nil {
		t.Fatal("a write succeeded while the broker was stopped")
	} else {
		t.Logf("write during the outage failed after %v: %v", time.Since(began).Round(time.Millisecond), err)
	}

	b.Start(t)
	if got := b.Addrs(); strings.Join(got, ",") != strings.Join(addrs, ",") {
		t.Fatalf("restarted broker listens on %v, want the same %v", got, addrs)
	}
	// The broker may need a moment to lead its partitions again: retry as a service would.
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for attempt := 1; ; attempt++ {
		if err = write(10*time.Second, "after"); err == nil {
			t.Logf("write after the restart succeeded on attempt %d", attempt)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writing after the restart: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Both acknowledged messages are there, in order. The write that returned an error may have
	// been delivered all the same: kafka-go keeps retrying a batch after the caller's context
	// expires, which is one reason delivery is at-least-once.
	conn, err := kafka.DialLeader(context.Background(), "tcp", b.Addrs()[0], topic, 0)
	if err != nil {
		t.Fatalf("dialling the leader: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	last, err := conn.ReadLastOffset()
	if err != nil {
		t.Fatalf("reading the last offset: %v", err)
	}
	var values []string
	for range last {
		m, err := conn.ReadMessage(1 << 20)
		if err != nil {
			t.Fatalf("reading back: %v", err)
		}
		values = append(values, string(m.Value))
	}
	switch got := strings.Join(values, ","); got {
	case "before,after":
	case "before,during,after":
		t.Log("the write reported as failed during the outage was delivered after the restart")
	default:
		t.Errorf("topic holds %v, want [before after] or [before during after]", values)
	}
}

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9092", true},
		{"127.3.2.1:9092", true},
		{"[::1]:9092", true},
		{"localhost:9092", true},
		{"10.0.0.5:9092", false},
		{"192.168.1.2:9092", false},
		{"kafka:9092", false},
		{"[::ffff:10.0.0.1]:9092", false},
		{"127.0.0.1", false}, // no port
	} {
		if got := isLoopback(tc.addr); got != tc.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestTopicName(t *testing.T) {
	a, b := topicName("TestX/sub case:1"), topicName("TestX/sub case:1")
	if a == b {
		t.Errorf("two topic names are equal: %s", a)
	}
	if !strings.HasPrefix(a, "kafkatest-TestX-sub-case-1-") {
		t.Errorf("topic name %q does not show the test", a)
	}
	for _, r := range topicName(strings.Repeat("é/", 300)) {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' {
			t.Fatalf("invalid rune %q in a topic name", r)
		}
	}
	if n := len(topicName(strings.Repeat("x", 400))); n > 249 {
		t.Errorf("topic name is %d long, Kafka allows 249", n)
	}
}

// fakeTB records whether a helper skipped or failed; it stops the goroutine like testing does.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Skip(args ...any)  { f.skipped, f.msg = true, fmt.Sprint(args...); panic(f) }
func (f *fakeTB) Fatal(args ...any) { f.failed, f.msg = true, fmt.Sprint(args...); panic(f) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	panic(f)
}

func TestUnavailableFailsInCI(t *testing.T) {
	for _, tc := range []struct {
		ci          string
		skip, fatal bool
	}{
		{ci: "", skip: true},
		{ci: "true", fatal: true},
		{ci: "1", fatal: true},
	} {
		t.Setenv("CI", tc.ci)
		f := &fakeTB{}
		func() {
			defer func() { _ = recover() }()
			unavailable(f, "no broker")
		}()
		if f.skipped != tc.skip || f.failed != tc.fatal {
			t.Errorf("CI=%q: skipped=%v failed=%v, want skipped=%v failed=%v", tc.ci, f.skipped, f.failed, tc.skip, tc.fatal)
		}
	}
}

func TestShortFailsInCI(t *testing.T) {
	for _, tc := range []struct {
		short       bool
		ci          string
		skip, fatal bool
	}{
		{short: false, ci: ""},
		{short: false, ci: "true"},
		{short: true, ci: "", skip: true},
		{short: true, ci: "true", fatal: true},
		{short: true, ci: "1", fatal: true},
	} {
		t.Setenv("CI", tc.ci)
		f := &fakeTB{}
		func() {
			defer func() { _ = recover() }()
			skipIfShort(f, tc.short)
		}()
		if f.skipped != tc.skip || f.failed != tc.fatal {
			t.Errorf("short=%v CI=%q: skipped=%v failed=%v, want skipped=%v failed=%v",
				tc.short, tc.ci, f.skipped, f.failed, tc.skip, tc.fatal)
		}
		if tc.fatal && (!strings.Contains(f.msg, "-short") || !strings.Contains(f.msg, "CI")) {
			t.Errorf("short=%v CI=%q: message %q does not say that -short under CI is the fault", tc.short, tc.ci, f.msg)
		}
	}
}

func TestReadEnvFile(t *testing.T) {
	path := t.TempDir() + "/env"
	content := "export FOLLOWPUB_TEST_KAFKA_BROKERS='127.0.0.1:20001'\n" +
		"export FOLLOWPUB_TEST_KAFKA_SASL_PASSWORD='a=b'\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	env, err := readEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if env[EnvBrokers] != "127.0.0.1:20001" || env[EnvSASLPassword] != "a=b" {
		t.Errorf("env = %v", env)
	}
}
