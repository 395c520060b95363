package publisher

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/produce"

	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/schema"
)

var _ poller.Publisher = (*Publisher)(nil)

// TestRetriable is the table of the publisher's two retry decisions: whether a failure may pass
// when tried again (retriable), and whether Publish may send the batch again itself (notAppended).
func TestRetriable(t *testing.T) {
	dialRefused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		// want is retriable's answer, notAppended notAppended's: whether Publish itself may send
		// the batch again (the brokers cannot have appended it).
		want, notAppended bool
	}{
		{"nil", nil, false, false},
		{"leader not available", kafka.LeaderNotAvailable, true, true},
		{"not leader", kafka.NotLeaderForPartition, true, true},
		{"unknown topic (metadata still propagating)", kafka.UnknownTopicOrPartition, true, true},
		{"not enough replicas", kafka.NotEnoughReplicas, true, true},
		{"request timed out", kafka.RequestTimedOut, true, false},
		{"not enough replicas after append", kafka.NotEnoughReplicasAfterAppend, true, false},
		{"broker not available", kafka.BrokerNotAvailable, true, true},
		{"no leader in kafka-go's metadata", produce.NewError(protocol.NewErrNoLeader("t", 1)), true, true},
		{"no partition in kafka-go's metadata", protocol.NewErrNoPartition("t", 1), true, true},
		{"write errors no leader", kafka.WriteErrors{produce.NewError(protocol.NewErrNoLeader("t", 1))}, true, true},
		{"wrapped temporary", fmt.Errorf("x: %w", kafka.LeaderNotAvailable), true, true},
		{"connection refused", dialRefused, true, true},
		{"connection reset", syscall.ECONNRESET, true, false},
		{"broken pipe", syscall.EPIPE, true, false},
		{"unexpected EOF", io.ErrUnexpectedEOF, true, false},
		{"i/o timeout", os.ErrDeadlineExceeded, true, false},
		{"write errors all temporary", kafka.WriteErrors{nil, kafka.LeaderNotAvailable, dialRefused}, true, true},
		{"write errors one final", kafka.WriteErrors{kafka.LeaderNotAvailable, kafka.TopicAuthorizationFailed}, false, false},
		{"write errors none", kafka.WriteErrors{nil, nil}, false, false},
		{"brief write errors temporary", brief(kafka.WriteErrors{nil, kafka.LeaderNotAvailable}), true, true},
		{"brief write errors final", brief(kafka.WriteErrors{kafka.TopicAuthorizationFailed, nil}), false, false},
		{"sasl failed", kafka.SASLAuthenticationFailed, false, false},
		{"sasl mechanism", kafka.UnsupportedSASLMechanism, false, false},
		{"topic authorization", kafka.TopicAuthorizationFailed, false, false},
		{"invalid topic", kafka.InvalidTopic, false, false},
		{"message too large", kafka.MessageTooLargeError{}, false, false},
		{"message size too large (broker)", kafka.MessageSizeTooLarge, false, false},
		{"unknown authority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, false, false},
		{"not TLS", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, false, false},
		{"deadline", context.DeadlineExceeded, false, false},
		{"canceled", context.Canceled, false, false},
		{"closed", ErrClosed, false, false},
		{"other", errors.New("boom"), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retriable(tt.err); got != tt.want {
				t.Errorf("retriable(%v) = %v, want %v", tt.err, got, tt.want)
			}
			if got := notAppended(tt.err); got != tt.notAppended {
				t.Errorf("notAppended(%v) = %v, want %v", tt.err, got, tt.notAppended)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	p, err := New(Config{
		Brokers: []string{"127.0.0.1:1", "127.0.0.1:2"},
		SASL:    SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "alice", Password: "hunter2"},
		TLS:     TLSConfig{Enabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.cfg.TLS.CAFile = "/etc/kafka/ca.pem" // as if it had been read
	dialRefused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name     string
		err      error
		sentinel error
		says     []string
	}{
		{"wrong password", kafka.SASLAuthenticationFailed, ErrAuthentication,
			[]string{"authentication failed", "alice", "SCRAM-SHA-512", "127.0.0.1:1,127.0.0.1:2", "password"}},
		{"mechanism off", kafka.UnsupportedSASLMechanism, ErrAuthentication, []string{"SCRAM-SHA-512"}},
		{"unknown CA", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, ErrCertificateNotTrusted,
			[]string{"not trusted", "/etc/kafka/ca.pem", "KAFKA_TLS_CA_FILE"}},
		{"bare unknown CA", x509.UnknownAuthorityError{}, ErrCertificateNotTrusted, []string{"/etc/kafka/ca.pem"}},
		{"wrong host", x509.HostnameError{Host: "kafka.example"}, ErrCertificateNotTrusted, []string{"server name"}},
		{"refused", dialRefused, ErrBrokersUnreachable, []string{"unreachable", "tried 127.0.0.1:1,127.0.0.1:2", "refused"}},
		{"dns", fmt.Errorf("x: %w", &net.DNSError{Err: "no such host", Name: "kafka"}), ErrBrokersUnreachable, []string{"tried"}},
		{"too large", kafka.MessageTooLargeError{}, ErrRecordTooLarge, []string{"too large"}},
		{"closed by broker", io.ErrUnexpectedEOF, nil, []string{"closed the connection", "TLS", "SASL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.explain(tt.err)
			if reflect.TypeOf(tt.err).Comparable() && !errors.Is(got, tt.err) {
				t.Errorf("explain lost the cause %v: %v", tt.err, got)
			}
			if tt.sentinel != nil && !errors.Is(got, tt.sentinel) {
				t.Errorf("explain(%v) = %v, want it to wrap %v", tt.err, got, tt.sentinel)
			}
			for _, s := range tt.says {
				if !strings.Contains(got.Error(), s) {
					t.Errorf("explain(%v) = %q, want it to say %q", tt.err, got, s)
				}
			}
			if strings.Contains(got.Error(), "hunter2") {
				t.Errorf("the password shows: %v", got)
			}
			if again := p.explain(got); again.Error() != got.Error() {
				t.Errorf("explain is not idempotent: %q then %q", got, again)
			}
		})
	}
	if e := errors.New("other"); p.explain(e) != e {
		t.Error("explain changed an error it cannot explain")
	}
}

func TestExplainSystemRoots(t *testing.T) {
	p, err := New(Config{Brokers: []string{"127.0.0.1:1"}, TLS: TLSConfig{Enabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	got := p.explain(x509.UnknownAuthorityError{})
	if !strings.Contains(got.Error(), "system") || !strings.Contains(got.Error(), "KAFKA_TLS_CA_FILE") {
		t.Errorf("explain = %q, want it to mention the system roots and KAFKA_TLS_CA_FILE", got)
	}
}

func TestBrief(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	werrs := kafka.WriteErrors{nil, refused, refused, kafka.LeaderNotAvailable}
	err := brief(werrs)
	if got, want := err.Error(), "3 of 4 messages failed: "+refused.Error(); got != want {
		t.Errorf("brief = %q, want %q", got, want)
	}
	var back kafka.WriteErrors
	if !errors.As(err, &back) || len(back) != 4 || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("brief lost the WriteErrors or the first cause: %v", err)
	}
	if brief(kafka.WriteErrors{nil}) != nil {
		t.Error("brief of no failure is not nil")
	}
	other := errors.New("x")
	if brief(other) != other {
		t.Error("brief changed an error that is not WriteErrors")
	}
}

func TestMessages(t *testing.T) {
	p, err := New(Config{Brokers: []string{"127.0.0.1:9092"}, Source: "urn:test"})
	if err != nil {
		t.Fatal(err)
	}
	recs := []schema.Record{
		{ID: 9007199254740993, FollowTime: 1707292800000, Raw: []byte(`{"id":9007199254740993,"follow_time":1707292800000,"x":1}`)},
		{ID: 7, FollowTime: 1707292800123, Raw: []byte(`{"id":7,"follow_time":1707292800123}`)},
	}
	c := new(call)
	before := time.Now()
	msgs := p.messages(c, recs, true)
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	for i, m := range msgs {
		r := recs[i]
		if string(m.Key) != string(r.Key()) || string(m.Value) != string(r.Raw) || m.Topic != "" || m.Partition != 0 {
			t.Errorf("message %d: key %q value %s topic %q", i, m.Key, m.Value, m.Topic)
		}
		if m.Time.Before(before) || time.Since(m.Time) > time.Minute {
			t.Errorf("message %d: time %v is not the publishing time", i, m.Time)
		}
		want := schema.AppendHeaders(nil, r, "urn:test", schema.DefaultTenant)
		if len(m.Headers) != len(want) {
			t.Fatalf("message %d: %d headers", i, len(m.Headers))
		}
		for j := range want {
			if m.Headers[j].Key != want[j].Key || string(m.Headers[j].Value) != string(want[j].Value) {
				t.Errorf("message %d header %d = %s=%q, want %s=%q", i, j, m.Headers[j].Key, m.Headers[j].Value, want[j].Key, want[j].Value)
			}
		}
		if cap(m.Headers) != schema.NumHeaders {
			t.Errorf("message %d: headers may be appended into the next message's (cap %d)", i, cap(m.Headers))
		}
		if s, ok := m.WriterData.(*slot); !ok || s != &c.slots[i] || s.call != c {
			t.Errorf("message %d: WriterData is not its slot", i)
		}
	}
	msgs[1].Partition, msgs[1].Offset = 2, 41 // as kafka-go sets them before Completion
	complete(msgs[1:], nil)
	complete(msgs[:1], kafka.LeaderNotAvailable)
	acked, n := c.acked()
	if n != 1 || acked[0] || !acked[1] {
		t.Errorf("acked = %v (%d)", acked, n)
	}
	if last := c.lastErr.Load(); last == nil || !errors.Is(*last, kafka.LeaderNotAvailable) {
		t.Errorf("lastErr = %v", last)
	}
	if got := c.next(); len(got) != 1 || got[2] != 42 {
		t.Errorf("next = %v, want partition 2 at offset 42", got)
	}
}

// TestCallNext: the offset after the last acknowledged message of each partition, whatever the
// order of the acknowledgements, for partitions past the first 16 too; no entry for a partition
// without one.
func TestCallNext(t *testing.T) {
	c := &call{slots: make([]slot, 7)}
	for i, s := range []struct {
		partition int
		offset    int64
		acked     bool
	}{{2, 41, true}, {2, 7, true}, {0, 0, true}, {20, 9, true}, {20, 99, false}, {5, 3, false}, {20, 10, true}} {
		c.slots[i].partition, c.slots[i].offset = s.partition, s.offset
		c.slots[i].acked.Store(s.acked)
	}
	if got, want := c.next(), map[int]int64{0: 1, 2: 42, 20: 11}; !reflect.DeepEqual(got, want) {
		t.Errorf("next = %v, want %v", got, want)
	}
	if got := (&call{slots: make([]slot, 3)}).next(); len(got) != 0 {
		t.Errorf("next of a call without acknowledgements = %v, want empty", got)
	}
}

func TestMessagesAllocations(t *testing.T) {
	p, err := New(Config{Brokers: []string{"127.0.0.1:9092"}})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]schema.Record, 100)
	for i := range recs {
		recs[i] = schema.Record{ID: int64(1e12) + int64(i), FollowTime: 1707292800000 + int64(i)*997, Raw: []byte(`{"id":1}`)}
	}
	c := new(call)
	if allocs := testing.AllocsPerRun(20, func() { p.messages(new(call), recs, true) }); allocs > 5 {
		// The call, its messages, their headers, one buffer of keys and times, and the slots; none
		// per record.
		t.Errorf("%v allocations building %d messages in a new call, want at most 5", allocs, len(recs))
	}
	if allocs := testing.AllocsPerRun(20, func() { p.messages(c, recs, true) }); allocs != 0 {
		t.Errorf("%v allocations building %d messages in a reused call, want none", allocs, len(recs))
	}
}

// TestMessagesInAReusedCall builds messages in the memory of a call that held more, different,
// acknowledged and failed messages: they are those of a new call, none acknowledged, no error
// reported, and the call's memory was reused.
func TestMessagesInAReusedCall(t *testing.T) {
	p, err := New(Config{Brokers: []string{"127.0.0.1:9092"}, Source: "urn:test", Tenant: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]schema.Record, 50)
	for i := range recs {
		recs[i] = schema.Record{ID: math.MinInt64 + int64(i), FollowTime: -62135596800000 + int64(i)*86_400_007, Raw: []byte(`{"before":1}`)}
	}
	c := new(call)
	before := p.messages(c, recs, true)
	complete(before[:30], nil)
	complete(before[30:], kafka.NotEnoughReplicas)

	recs = recs[:20]
	for i := range recs {
		recs[i] = schema.Record{ID: 1e15 + int64(i), FollowTime: 1707292800000 + int64(i)*997, Raw: []byte(`{"after":1}`)}
	}
	msgs := p.messages(c, recs, true)
	if &msgs[0] != &before[0] || &msgs[0].Headers[0] != &before[0].Headers[0] {
		t.Error("the call's memory was not reused")
	}
	want := p.Messages(recs)
	if len(msgs) != len(want) {
		t.Fatalf("%d messages, want %d", len(msgs), len(want))
	}
	for i := range msgs {
		m, w := msgs[i], want[i]
		if !bytes.Equal(m.Key, w.Key) || !bytes.Equal(m.Value, w.Value) || m.Topic != "" || m.Partition != 0 || m.Offset != 0 {
			t.Errorf("message %d: key %q value %s topic %q partition %d offset %d, want key %q value %s",
				i, m.Key, m.Value, m.Topic, m.Partition, m.Offset, w.Key, w.Value)
		}
		if len(m.Headers) != len(w.Headers) || cap(m.Headers) != schema.NumHeaders {
			t.Fatalf("message %d: %d headers (cap %d), want %d", i, len(m.Headers), cap(m.Headers), len(w.Headers))
		}
		for j := range w.Headers {
			if m.Headers[j].Key != w.Headers[j].Key || !bytes.Equal(m.Headers[j].Value, w.Headers[j].Value) {
				t.Errorf("message %d header %d = %s=%q, want %s=%q", i, j, m.Headers[j].Key, m.Headers[j].Value, w.Headers[j].Key, w.Headers[j].Value)
			}
		}
		if s, ok := m.WriterData.(*slot); !ok || s != &c.slots[i] || s.call != c {
			t.Errorf("message %d: WriterData is not its slot", i)
		}
	}
	if acked, n := c.acked(); n != 0 || len(acked) != len(recs) {
		t.Errorf("acked = %v (%d), want %d unacknowledged", acked, n, len(recs))
	}
	if last := c.lastErr.Load(); last != nil {
		t.Errorf("lastErr = %v, want none", *last)
	}
}

// TestMessagesHeadersMatchSchema holds the publisher's own header building to
// schema.AppendHeaders, the definition, over ids and times of every shape: negative, extreme,
// before 1970, around midnight and across days in any order.
func TestMessagesHeadersMatchSchema(t *testing.T) {
	p, err := New(Config{Brokers: []string{"127.0.0.1:9092"}, Source: "urn:test:source"})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const day = 86_400_000
	times := []int64{0, -1, 1, day - 1, day, -day, -day - 1, 1707292800000, 1707292800000 - 1,
		253402300799999, 253402300800000, -62135596800000, -62135596800001, 1 << 62, -1 << 62, math.MaxInt64 / 2}
	ids := []int64{0, -1, 1, math.MaxInt64, math.MinInt64, 9007199254740993}
	var recs []schema.Record
	for i := 0; i < 5000; i++ {
		var ft, id int64
		switch {
		case i < len(times)*len(ids):
			ft, id = times[i%len(times)], ids[i/len(times)]
		case i%3 == 0:
			ft, id = rng.Int64N(4e12)-1e12, rng.Int64()
		default: // sorted, within a few days, as the poller publishes them
			ft, id = 1707292800000+int64(i)*rng.Int64N(200_000), 1e15+int64(i)
		}
		recs = append(recs, schema.Record{ID: id, FollowTime: ft, Raw: []byte(`{}`)})
	}
	for i, m := range p.Messages(recs) {
		want := schema.AppendHeaders(nil, recs[i], "urn:test:source", schema.DefaultTenant)
		if string(m.Key) != string(recs[i].Key()) {
			t.Fatalf("record %d: key %q, want %q", i, m.Key, recs[i].Key())
		}
		for j := range want {
			if m.Headers[j].Key != want[j].Key || string(m.Headers[j].Value) != string(want[j].Value) {
				t.Fatalf("record %d (id %d, follow_time %d) header %d = %s=%q, want %s=%q",
					i, recs[i].ID, recs[i].FollowTime, j, m.Headers[j].Key, m.Headers[j].Value, want[j].Key, want[j].Value)
			}
		}
	}
}

func TestPublishNothing(t *testing.T) {
	p, err := New(Config{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	written, err := p.Publish(context.Background(), nil)
	acked := written.Acked
	if err != nil || acked != nil {
		t.Errorf("Publish(nil) = %v, %v", acked, err)
	}
}

func TestPublishRefusesTombstones(t *testing.T) {
	p, err := New(Config{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	written, err := p.Publish(context.Background(), []schema.Record{{ID: 1, Raw: []byte(`{}`)}, {ID: 2}})
	acked := written.Acked
	if err == nil || acked != nil || !strings.Contains(err.Error(), "id 2") {
		t.Errorf("Publish = %v, %v; want an error naming id 2", acked, err)
	}
}

func TestPublishAfterClose(t *testing.T) {
	p, err := New(Config{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err = p.Publish(context.Background(), []schema.Record{{ID: 1, Raw: []byte(`{}`)}})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestUnreachableBrokers(t *testing.T) {
	a, b := closedPort(t), closedPort(t)
	metrics := &recordingMetrics{}
	p, err := New(Config{Brokers: []string{a, b}, WriteTimeout: 2 * time.Second, CreateTopic: true, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	start := time.Now()
	written, err := p.Publish(context.Background(), []schema.Record{{ID: 1, FollowTime: 1, Raw: []byte(`{"id":1,"follow_time":1}`)}})
	acked := written.Acked
	took := time.Since(start)
	if err == nil || acked != nil {
		t.Fatalf("Publish = %v, %v; want an error", acked, err)
	}
	if took > 4*time.Second {
		t.Errorf("Publish took %s with WriteTimeout 2s", took)
	}
	if !errors.Is(err, ErrBrokersUnreachable) || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
		t.Errorf("err = %v; want ErrBrokersUnreachable naming %s and %s", err, a, b)
	}
	if n, e := metrics.get(); n != 1 || e == nil {
		t.Errorf("metrics saw %d calls, last err %v", n, e)
	}
	for name, f := range map[string]func(context.Context) error{"Check": p.Check, "EnsureTopic": p.EnsureTopic} {
		err := f(context.Background())
		if !errors.Is(err, ErrBrokersUnreachable) || !strings.Contains(err.Error(), a) {
			t.Errorf("%s: err = %v; want ErrBrokersUnreachable naming the brokers", name, err)
		}
	}
}

func TestPublishHonoursContext(t *testing.T) {
	p, err := New(Config{Brokers: []string{closedPort(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = p.Publish(ctx, []schema.Record{{ID: 1, Raw: []byte(`{}`)}})
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("Publish = %v after %s; want an error soon after the context's deadline", err, time.Since(start))
	}
}

type recordingMetrics struct {
	mu    sync.Mutex
	n     int
	total int
	last  error
}

func (m *recordingMetrics) ObserveReadBack(time.Duration, error) {}

func (m *recordingMetrics) ObserveWrite(n int, d time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	m.total += n
	m.last = err
}

func (m *recordingMetrics) get() (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n, m.last
}

// TestSilentBroker: a broker that accepts connections but never answers makes every call fail
// within WriteTimeout instead of hanging, and Close does not hang either.
func TestSilentBroker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	const timeout = time.Second
	p, err := New(Config{Brokers: []string{l.Addr().String()}, WriteTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"Publish": func() error {
			_, err := p.Publish(context.Background(), []schema.Record{{ID: 1, Raw: []byte(`{}`)}})
			return err
		},
		"Check":       func() error { return p.Check(context.Background()) },
		"EnsureTopic": func() error { return p.EnsureTopic(context.Background()) },
	} {
		start := time.Now()
		err := f()
		if d := time.Since(start); err == nil || d > timeout+time.Second {
			t.Errorf("%s = %v after %s; want an error within %s", name, err, d, timeout)
		}
		if !strings.Contains(err.Error(), l.Addr().String()) {
			t.Errorf("%s: %v does not name the broker", name, err)
		}
	}
	start := time.Now()
	_ = p.Close()
	if d := time.Since(start); d > timeout+time.Second {
		t.Errorf("Close took %s", d)
	}
}

func BenchmarkMessages(b *testing.B) {
	p, err := New(Config{Brokers: []string{"127.0.0.1:9092"}})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]schema.Record, 500)
	for i := range recs {
		recs[i] = schema.Record{ID: int64(1e12) + int64(i), FollowTime: 1707292800000, Raw: []byte(`{"id":1}`)}
	}
	b.ReportAllocs()
	for b.Loop() { // as Publish does, when every message was acknowledged
		c := newCall()
		p.messages(c, recs, true)
		c.release()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}

// BenchmarkAcknowledgements measures what Publish does with the acknowledgements of 3,000
// messages (poller.DefaultBatchSize) over three partitions: complete, once per batch, then
// acked and next.
func BenchmarkAcknowledgements(b *testing.B) {
	p, err := New(Config{Brokers: []string{"127.0.0.1:9092"}})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]schema.Record, poller.DefaultBatchSize)
	for i := range recs {
		recs[i] = schema.Record{ID: int64(1e12) + int64(i), FollowTime: 1707292800000, Raw: []byte(`{"id":1}`)}
	}
	c := new(call)
	msgs := p.messages(c, recs, true)
	const partitions = 3
	batches := make([][]kafka.Message, partitions)
	for i := range msgs {
		m := msgs[i]
		m.Partition, m.Offset = i%partitions, int64(i/partitions)
		batches[i%partitions] = append(batches[i%partitions], m)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, batch := range batches {
			complete(batch, nil)
		}
		if _, n := c.acked(); n != len(recs) {
			b.Fatal(n)
		}
		if next := c.next(); len(next) != partitions {
			b.Fatal(next)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}
