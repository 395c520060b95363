package publisher_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
	"github.com/followpub/followpub/schema"
	"github.com/followpub/followpub/schema/schematest"
)

// TestMain registers the publisher's codecs as followpub's main does, so the tests publish as it does.
func TestMain(m *testing.M) {
	publisher.RegisterCodecs()
	kafkatest.Main(m)
}

// testSource is the ce_source of the tests' publishers: the default, as they set none.
const testSource = schema.DefaultSource

// record builds a Record from JSON the way the API client does.
func record(t testing.TB, raw string) schema.Record {
	t.Helper()
	r, err := schema.ParseRecord([]byte(raw))
	if err != nil {
		t.Fatalf("ParseRecord(%s): %v", raw, err)
	}
	return r
}

// records returns n records with ids from base, shaped like the vendor's example.
func records(t testing.TB, base int64, n int) []schema.Record {
	out := make([]schema.Record, n)
	for i := range out {
		id := base + int64(i)*7919
		ft := int64(1707292800000) + int64(i)*1000
		out[i] = record(t, fmt.Sprintf(`{"id":%d,"follow_user_id":"user%d","content":"系统自动跟进:客户状态变更 %d","target":{"contact_id":"c%d","external_id":"e","company_id":"co","chat_id":"ch","clue_id":"cl","is_ai":%t},"business_type":1,"business_id":"b%d","title":"客户状态变更","follow_time":%d,"create_time":%d}`,
			id, i%13, i, i, i%2 == 0, i, ft, ft+5))
	}
	return out
}

// consume reads the topic from the start with franz-go, an implementation independent of
// kafka-go, until it has n records.
func consume(t *testing.T, brokers []string, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records from %s before the deadline", len(out), n, topic)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetching %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func mustPublish(t *testing.T, p *publisher.Publisher, recs []schema.Record) {
	t.Helper()
	written, err := p.Publish(context.Background(), recs)
	acked := written.Acked
	if err != nil {
		t.Fatalf("Publish: %v (acked %v)", err, acked)
	}
	if len(acked) != len(recs) {
		t.Fatalf("Publish succeeded with %d acknowledgements for %d records", len(acked), len(recs))
	}
	for i, a := range acked {
		if !a {
			t.Fatalf("Publish succeeded but record %d is not acknowledged", i)
		}
	}
}

// TestPublishRoundTrip publishes records and reads them back with franz-go: keys, values and
// headers are what was sent, values validate against the schema, a record with an id above
// 2^53 and an unknown field survives byte for byte, and each message is on the partition the
// Java client's murmur2 partitioner picks.
func TestPublishRoundTrip(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const partitions = 6
	topic := kafkatest.Topic(t, brokers, partitions)
	logs := newCaptureHandler()
	metrics := &countingMetrics{}
	p := publisher.NewTestPublisher(t, publisher.Config{Brokers: brokers, Topic: topic, Logger: slog.New(logs), Metrics: metrics})

	recs := records(t, 1234567890, 300)
	special := []string{
		`{"id":9007199254740993,"follow_time":1707292800001,"brand_new_field":{"n":123456789012345678901234567890,"f":1.50,"s":"\u00e9\ud83d\ude00"},"content":null}`,
		`{"id":9223372036854775807,"follow_user_id":"u","follow_time":1707292800002,"create_time":1707292800002,"x":[1,2,3]}`,
	}
	for _, s := range special {
		recs = append(recs, record(t, s))
	}
	before := time.Now().Add(-time.Second)
	mustPublish(t, p, recs)
	after := time.Now().Add(time.Second)

	got := consume(t, brokers, topic, len(recs))
	if len(got) != len(recs) {
		t.Fatalf("consumed %d records, published %d", len(got), len(recs))
	}
	byKey := map[string]*kgo.Record{}
	for _, r := range got {
		if _, dup := byKey[string(r.Key)]; dup {
			t.Errorf("key %s read twice", r.Key)
		}
		byKey[string(r.Key)] = r
	}
	javaPartitioner := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	perPartition := map[int32]int{}
	for _, want := range recs {
		key := strconv.FormatInt(want.ID, 10)
		r := byKey[key]
		if r == nil {
			t.Errorf("key %s not read back", key)
			continue
		}
		if !bytes.Equal(r.Value, want.Raw) {
			t.Errorf("key %s: value\n got  %s\n want %s", key, r.Value, want.Raw)
		}
		schematest.Check(t, r.Value)
		wantHeaders := schema.AppendHeaders(nil, want, testSource, schema.DefaultTenant)
		if len(r.Headers) != len(wantHeaders) {
			t.Errorf("key %s: %d headers, want %d", key, len(r.Headers), len(wantHeaders))
		} else {
			for i, h := range wantHeaders {
				if r.Headers[i].Key != h.Key || !bytes.Equal(r.Headers[i].Value, h.Value) {
					t.Errorf("key %s: header %d = %s=%q, want %s=%q", key, i, r.Headers[i].Key, r.Headers[i].Value, h.Key, h.Value)
				}
			}
		}
		if wantP := int32(javaPartitioner.Partition(&kgo.Record{Key: []byte(key)}, partitions)); r.Partition != wantP {
			t.Errorf("key %s on partition %d, the Java partitioner picks %d", key, r.Partition, wantP)
		}
		if r.Timestamp.Before(before) || r.Timestamp.After(after) {
			t.Errorf("key %s: timestamp %v is not the publishing time", key, r.Timestamp)
		}
		perPartition[r.Partition]++
	}
	if len(perPartition) != partitions {
		t.Errorf("300 keys used only partitions %v of %d", perPartition, partitions)
	}
	if calls, n, errs := metrics.get(); calls != 1 || n != len(recs) || errs != 0 {
		t.Errorf("metrics: %d calls, %d records, %d errors; want 1, %d, 0", calls, n, errs, len(recs))
	}
	if !logs.has(slog.LevelDebug, "source", "kafka-go") {
		t.Error("kafka-go's log lines did not reach the slog logger at debug level")
	}
	// The big id and the unknown field, explicitly.
	r := byKey["9007199254740993"]
	if r == nil || string(r.Value) != special[0] {
		t.Errorf("record above 2^53 changed: %s", r.Value)
	}
	hm := map[string]string{}
	for _, h := range r.Headers {
		hm[h.Key] = string(h.Value)
	}
	if hm["ce_id"] != "9007199254740993" || hm["ce_time"] != "2024-02-07T08:00:00.001Z" || hm["ce_specversion"] != "1.0" ||
		hm["ce_type"] != "com.wshoto.crm.follow.system" || hm["ce_source"] != testSource || hm["content-type"] != "application/json" {
		t.Errorf("headers of the record above 2^53: %v", hm)
	}
}

// TestPartitionsMatchJavaVectors publishes the keys of Kafka's own murmur2 test vectors and
// checks on the broker that each landed where Utils.toPositive(Utils.murmur2(key)) % n says.
func TestPartitionsMatchJavaVectors(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const partitions = 7
	topic := kafkatest.Topic(t, brokers, partitions)
	p := publisher.NewTestPublisher(t, publisher.Config{Brokers: brokers, Topic: topic})
	// Utils.murmur2 of decimal keys (known answers quoted from Kafka's Utils by other clients'
	// test suites), as Java ints.
	vectors := map[int64]int32{1: -1993445489, 12: 126087238, 123: -267702483, 1234: -1614185708, 12345: -1188365604, 21: -973932308}
	var recs []schema.Record
	for id := range vectors {
		recs = append(recs, record(t, fmt.Sprintf(`{"id":%d,"follow_time":1}`, id)))
	}
	mustPublish(t, p, recs)
	for _, r := range consume(t, brokers, topic, len(recs)) {
		id, _ := strconv.ParseInt(string(r.Key), 10, 64)
		want := int32(uint32(vectors[id])&0x7fffffff) % partitions
		if r.Partition != want {
			t.Errorf("key %s on partition %d, Java puts it on %d", r.Key, r.Partition, want)
		}
	}
}

// independentPartitions asks the broker for the topic's partition count with franz-go's raw
// protocol client.
func independentPartitions(t *testing.T, brokers []string, topic string) int {
	t.Helper()
	resp := publisher.TopicMetadata(t, brokers, topic)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("metadata of %s: %+v", topic, resp.Topics)
	}
	return len(resp.Topics[0].Partitions)
}

func uniqueTopic(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "followpub-test-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + hex.EncodeToString(b[:])
}

func TestEnsureTopic(t *testing.T) {
	brokers := kafkatest.Brokers(t)

	t.Run("created with the configured partitions before the first write", func(t *testing.T) {
		topic := uniqueTopic(t)
		p := publisher.NewTestPublisher(t, publisher.Config{Brokers: brokers, Topic: topic, CreateTopic: true, Partitions: 4, Replication: 1})
		if err := p.Check(context.Background()); err != nil {
			t.Errorf("Check before creation (CreateTopic set): %v", err)
		}
		// No EnsureTopic call: Publish creates the topic itself.
		mustPublish(t, p, records(t, 1, 20))
		if n := independentPartitions(t, brokers, topic); n != 4 {
			t.Errorf("created topic has %d partitions, want 4", n)
		}
		info, err := p.Describe(context.Background())
		if err != nil || !info.Exists || info.Partitions != 4 || len(info.Brokers) == 0 {
			t.Errorf("Describe = %+v, %v", info, err)
		}
		if got := consume(t, brokers, topic, 20); len(got) != 20 {
			t.Errorf("read %d records", len(got))
		}
	})

	t.Run("broker default replication", func(t *testing.T) {
		topic := uniqueTopic(t)
		p := publisher.NewTestPublisher(t, publisher.Config{Brokers: brokers, Topic: topic, CreateTopic: true}) // Replication -1
		if err := p.EnsureTopic(context.Background()); err != nil {
			t.Fatalf("EnsureTopic: %v", err)
		}
		if n := independentPartitions(t, brokers, topic); n != publisher.DefaultPartitions {
			t.Errorf("%d partitions, want %d", n, publisher.DefaultPartitions)
		}
	})

	t.Run("an existing topic is used as it is", func(t *testing.T) {
		topic := kafkatest.Topic(t, brokers, 2)
		p := publisher.NewTestPublisher(t, publisher.Config{Brokers: brokers, Topic: topic, CreateTopic: true, Partitions: 5})
		if err := p.EnsureTopic(context.Background()); err != nil {
			t.Fatalf("EnsureTopic: %v", err)
		}
		mustPublish(t, p, records(t, 1, 10))
		if n := independentPartitions(t, brokers, topic); n != 2 {
			t.Errorf("existing topic now has %d partitions, want its 2", n)
		}
	})

	t.Run("missing and not to be created", func(t *testing.T) {
		topic := uniqueTopic(t)
		p := publisher.NewTestPublisher(t, publisher.Config{Brokers: brokers, Topic: topic, CreateTopic: false, WriteTimeout: 5 * time.Second})
		for name, f := range map[string]func() error{
			"EnsureTopic": func() error { return p.EnsureTopic(context.Background()) },
			"Check":       func() error { return p.Check(context.Background()) },
			"Publish": func() error {
				written, err := p.Publish(context.Background(), records(t, 1, 1))
				acked := written.Acked
				if acked != nil {
					t.Errorf("acked = %v", acked)
				}
				return err
			},
		} {
			start := time.Now()
			err := f()
			if !errors.Is(err, publisher.ErrTopicNotFound) || !strings.Contains(err.Error(), topic) {
				t.Errorf("%s: %v; want ErrTopicNotFound naming %s", name, err, topic)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("%s took %s to report a missing topic", name, d)
			}
		}
		if info, err := p.Describe(context.Background()); err != nil || info.Exists {
			t.Errorf("Describe = %+v, %v; want a topic that does not exist", info, err)
		}
	})
}

// TestSASL publishes over the SASL_SSL listener with each mechanism it enables (SCRAM-SHA-512,
// SCRAM-SHA-256 and PLAIN on the broker of make test).
func TestSASL(t *testing.T) {
	s := kafkatest.SASL(t)
	for _, mechanism := range s.Mechanisms {
		t.Run(mechanism, func(t *testing.T) { testSASL(t, s, mechanism) })
	}
}

func testSASL(t *testing.T, s kafkatest.SASLBroker, mechanism string) {
	plain := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, plain, 3)
	cfg := publisher.Config{
		Brokers: s.Brokers,
		Topic:   topic,
		SASL:    publisher.SASLConfig{Mechanism: mechanism, Username: s.User, Password: s.Password},
		TLS:     publisher.TLSConfig{Enabled: true, CAFile: s.CAFile},
	}
	p := publisher.NewTestPublisher(t, cfg)
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("Check over SASL_SSL: %v", err)
	}
	recs := records(t, 42, 25)
	mustPublish(t, p, recs)
	got := consume(t, plain, topic, len(recs))
	for _, r := range got {
		schematest.Check(t, r.Value)
	}

	// The Dialer from NewTransport reaches the same listener (what followpub tail uses).
	_, dialer, err := publisher.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := dialer.DialContext(ctx, "tcp", s.Brokers[0])
	if err != nil {
		t.Fatalf("Dialer over SASL_SSL: %v", err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil || len(parts) != 3 {
		t.Errorf("ReadPartitions over the Dialer: %d, %v", len(parts), err)
	}
}

func TestSASLWrongPassword(t *testing.T) {
	s := kafkatest.SASL(t)
	for _, mechanism := range s.Mechanisms {
		t.Run(mechanism, func(t *testing.T) { testSASLWrongPassword(t, s, mechanism) })
	}
}

func testSASLWrongPassword(t *testing.T, s kafkatest.SASLBroker, mechanism string) {
	const wrong = "definitely-not-the-password"
	p := publisher.NewTestPublisher(t, publisher.Config{
		Brokers:      s.Brokers,
		Topic:        "whatever",
		SASL:         publisher.SASLConfig{Mechanism: mechanism, Username: s.User, Password: wrong},
		TLS:          publisher.TLSConfig{Enabled: true, CAFile: s.CAFile},
		WriteTimeout: 20 * time.Second,
	})
	check := func(name string, err error, took time.Duration) {
		t.Helper()
		if !errors.Is(err, publisher.ErrAuthentication) || !errors.Is(err, kafka.SASLAuthenticationFailed) {
			t.Errorf("%s: %v; want ErrAuthentication wrapping kafka.SASLAuthenticationFailed", name, err)
			return
		}
		msg := err.Error()
		if !strings.Contains(msg, "authentication failed") || !strings.Contains(msg, s.User) || !strings.Contains(msg, "password") {
			t.Errorf("%s: %q does not say that authentication failed for user %s", name, msg, s.User)
		}
		if strings.Contains(msg, wrong) || strings.Contains(msg, s.Password) {
			t.Errorf("%s: the error shows a password: %q", name, msg)
		}
		if took > 10*time.Second {
			t.Errorf("%s took %s: a wrong password is not worth retrying", name, took)
		}
		t.Logf("%s: %v", name, err)
	}
	start := time.Now()
	err := p.Check(context.Background())
	check("Check", err, time.Since(start))
	start = time.Now()
	written, err := p.Publish(context.Background(), records(t, 1, 3))
	acked := written.Acked
	check("Publish", err, time.Since(start))
	if acked != nil {
		t.Errorf("acked = %v", acked)
	}
}

func TestUntrustedCertificate(t *testing.T) {
	s := kafkatest.SASL(t)
	otherCA := writeUnrelatedCA(t)
	tests := []struct {
		name string
		tls  publisher.TLSConfig
		says []string
	}{
		{"another CA", publisher.TLSConfig{Enabled: true, CAFile: otherCA}, []string{"not trusted", otherCA}},
		{"system roots", publisher.TLSConfig{Enabled: true}, []string{"not trusted", "system", "KAFKA_TLS_CA_FILE"}},
		{"wrong server name", publisher.TLSConfig{Enabled: true, CAFile: s.CAFile, ServerName: "kafka.invalid"}, []string{"not trusted", "name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := publisher.NewTestPublisher(t, publisher.Config{
				Brokers: s.Brokers,
				Topic:   "whatever",
				SASL:    publisher.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: s.User, Password: s.Password},
				TLS:     tt.tls,
			})
			start := time.Now()
			err := p.Check(context.Background())
			if !errors.Is(err, publisher.ErrCertificateNotTrusted) {
				t.Fatalf("Check: %v; want ErrCertificateNotTrusted", err)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Check: %q does not say %q", err, s)
				}
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("Check took %s", d)
			}
			_, err = p.Publish(context.Background(), records(t, 1, 1))
			if !errors.Is(err, publisher.ErrCertificateNotTrusted) {
				t.Errorf("Publish: %v; want ErrCertificateNotTrusted", err)
			}
			t.Logf("%v", err)
		})
	}
}

// TestWrongListener connects with TLS to the PLAINTEXT listener, and without TLS to the SASL_SSL
// one: both fail without a hang, saying the connection was closed and what to check.
func TestWrongListener(t *testing.T) {
	s := kafkatest.SASL(t)
	plain := kafkatest.Brokers(t)
	for name, cfg := range map[string]publisher.Config{
		"TLS to PLAINTEXT": {Brokers: plain, TLS: publisher.TLSConfig{Enabled: true, CAFile: s.CAFile}},
		"plain to SASL_SSL": {Brokers: s.Brokers,
			SASL: publisher.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: s.User, Password: s.Password}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.WriteTimeout = 5 * time.Second
			p := publisher.NewTestPublisher(t, cfg)
			start := time.Now()
			err := p.Check(context.Background())
			if err == nil {
				t.Fatal("Check succeeded on the wrong listener")
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("Check took %s", d)
			}
			t.Logf("%v", err)
		})
	}
}

// TestBrokerOutage stops a dedicated broker: Publish fails within WriteTimeout, naming the
// brokers, with no record acknowledged; once the broker is back the records are published as the
// poller does it (a failed write, such as one on a connection the restart broke, is settled by a
// read-back before what is missing is sent again), and the topic holds each record once. kafka-go keeps the metadata it had while the broker is down:
// either the leader it knew before the shutdown (the write's dial is refused), or, when it
// refreshed during the shutdown, no leader at all (nothing is dialled; a refresh of the default
// TTL in that window failed CI on Kafka 3.9). A TTL of a minute makes the first case likely; one
// of 100 ms makes the second likely, not certain, so TestPublishWaitsOutNoLeader (kfake) proves
// that one on cue.
func TestBrokerOutage(t *testing.T) {
	for _, tt := range []struct {
		name string
		ttl  time.Duration
	}{
		{"metadata of before the outage", time.Minute},
		{"metadata refreshed during the outage", 100 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := kafkatest.StartDedicated(t)
			brokers := b.Addrs()
			const timeout = 5 * time.Second
			cfg := publisher.Config{Brokers: brokers, Topic: "outage", CreateTopic: true, Partitions: 3, Replication: 1, WriteTimeout: timeout}
			cfg = publisher.WithMetadataTTL(cfg, tt.ttl)
			p := publisher.NewTestPublisher(t, cfg)
			first := records(t, 1000, 30)
			mustPublish(t, p, first)
			rb, err := p.ReadBack(context.Background(), poller.Tail{})
			if err != nil {
				t.Fatalf("ReadBack: %v", err)
			}
			tail := rb.Tail

			b.Stop(t)
			start := time.Now()
			written, err := p.Publish(context.Background(), records(t, 5000, 30))
			acked := written.Acked
			took := time.Since(start)
			if err == nil {
				t.Fatal("Publish succeeded with the broker stopped")
			}
			t.Logf("with the broker down, after %s: %v", took.Round(time.Millisecond), err)
			if took > timeout+2*time.Second {
				t.Errorf("Publish returned after %s, WriteTimeout is %s", took, timeout)
			}
			if !errors.Is(err, publisher.ErrBrokersUnreachable) || !strings.Contains(err.Error(), brokers[0]) {
				t.Errorf("error is not ErrBrokersUnreachable naming the broker %s: %v", brokers[0], err)
			}
			// The broker was down for the whole call, so Kafka acknowledged none of the records,
			// and Publish reports that as a nil acked: the poller must commit nothing of this batch.
			if acked != nil {
				t.Errorf("acked = %v with the broker stopped, want nil (nothing acknowledged)", acked)
			}

			b.Start(t)
			second := records(t, 9000, 30)
			publishSettled(t, p, tail, second)
			// Both batches are there once; the one written while the broker was down is not.
			keysOnce(t, brokers, "outage", append(first, second...))
		})
	}
}

// publishSettled publishes recs as the poller does: after a failed write it reads the topic back
// from tail, takes what landed as published and sends the rest again, for at most 30 s.
func publishSettled(t *testing.T, p *publisher.Publisher, tail poller.Tail, recs []schema.Record) {
	t.Helper()
	pending := slices.Clone(recs)
	for deadline := time.Now().Add(30 * time.Second); ; {
		w, err := p.Publish(context.Background(), pending)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Publish: %v", err)
		}
		t.Logf("Publish failed, settling it: %v", err)
		rb, rerr := p.ReadBack(context.Background(), tail)
		if rerr != nil {
			t.Logf("ReadBack: %v", rerr)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		tail = rb.Tail
		landed := map[int64]bool{}
		for _, f := range rb.Found {
			landed[f.ID] = true
		}
		for i, a := range w.Acked {
			if a {
				landed[pending[i].ID] = true
			}
		}
		pending = slices.DeleteFunc(pending, func(r schema.Record) bool { return landed[r.ID] })
		if len(pending) == 0 {
			return
		}
	}
}

// TestRecordTooLarge: the records before a too-large one are written and acknowledged; the
// large one and those after it are not, and the error says which record.
func TestRecordTooLarge(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 1)
	p := publisher.NewTestPublisher(t, publisher.Config{Brokers: brokers, Topic: topic, BatchBytes: 4096})
	recs := records(t, 1, 6)
	recs[3] = record(t, fmt.Sprintf(`{"id":77,"follow_time":1,"content":"%s"}`, strings.Repeat("x", 8000)))
	written, err := p.Publish(context.Background(), recs)
	acked := written.Acked
	if !errors.Is(err, publisher.ErrRecordTooLarge) || !strings.Contains(err.Error(), "77") {
		t.Fatalf("Publish: %v; want ErrRecordTooLarge naming id 77", err)
	}
	want := []bool{true, true, true, false, false, false}
	if fmt.Sprint(acked) != fmt.Sprint(want) {
		t.Errorf("acked = %v, want %v", acked, want)
	}
	got := consume(t, brokers, topic, 3)
	for i, r := range got {
		if !bytes.Equal(r.Value, recs[i].Raw) {
			t.Errorf("record %d on the topic is %s, want %s", i, r.Value, recs[i].Raw)
		}
	}
}

// TestConcurrentPublish publishes from several goroutines at once, each call after the first
// building its messages in the memory of an earlier, acknowledged one: every record is read back
// once, with its own headers.
func TestConcurrentPublish(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 3)
	p := publisher.NewTestPublisher(t, publisher.Config{Brokers: brokers, Topic: topic, Source: testSource})
	const workers = 8
	sizes := []int{50, 20, 35} // calls of each worker, in turn
	var mu sync.Mutex
	sent := map[string]schema.Record{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i, n := range sizes {
				recs := records(t, int64(w)*1_000_000_000+int64(i)*1_000_000, n)
				mu.Lock()
				for _, r := range recs {
					sent[string(r.Key())] = r
				}
				mu.Unlock()
				written, err := p.Publish(context.Background(), recs)
				if err != nil {
					t.Errorf("worker %d, call %d: %v (acked %v)", w, i, err, written.Acked)
				}
			}
		})
	}
	wg.Wait()
	got := consume(t, brokers, topic, len(sent))
	keys := map[string]bool{}
	for _, r := range got {
		keys[string(r.Key)] = true
		want, ok := sent[string(r.Key)]
		if !ok {
			t.Errorf("key %s was not published", r.Key)
			continue
		}
		wantHeaders := schema.AppendHeaders(nil, want, testSource, schema.DefaultTenant)
		if len(r.Headers) != len(wantHeaders) {
			t.Errorf("key %s: %d headers, want %d", r.Key, len(r.Headers), len(wantHeaders))
			continue
		}
		for i, h := range wantHeaders {
			if r.Headers[i].Key != h.Key || !bytes.Equal(r.Headers[i].Value, h.Value) {
				t.Errorf("key %s: header %d = %s=%q, want %s=%q", r.Key, i, r.Headers[i].Key, r.Headers[i].Value, h.Key, h.Value)
			}
		}
		if !bytes.Equal(r.Value, want.Raw) {
			t.Errorf("key %s: value %s, want %s", r.Key, r.Value, want.Raw)
		}
	}
	if len(keys) != len(sent) || len(got) != len(sent) {
		t.Errorf("%d records with %d distinct keys, want %d", len(got), len(keys), len(sent))
	}
}

func TestCompressionCodecsOnBroker(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := kafkatest.Topic(t, brokers, 1)
			p := publisher.NewTestPublisher(t, publisher.Config{Brokers: brokers, Topic: topic, Compression: codec})
			recs := records(t, 5, 40)
			mustPublish(t, p, recs)
			for i, r := range consume(t, brokers, topic, len(recs)) {
				if !bytes.Equal(r.Value, recs[i].Raw) {
					t.Errorf("record %d: %s", i, r.Value)
				}
			}
		})
	}
}

// captureHandler is a slog.Handler that keeps every record, at every level, with its attributes.
type captureHandler struct {
	attrs []slog.Attr
	store *captureStore
}

type captureStore struct {
	mu   sync.Mutex
	recs []capturedRecord
}

type capturedRecord struct {
	level slog.Level
	attrs []slog.Attr
}

func newCaptureHandler() *captureHandler { return &captureHandler{store: &captureStore{}} }

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := append([]slog.Attr(nil), h.attrs...)
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	h.store.recs = append(h.store.recs, capturedRecord{r.Level, attrs})
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{attrs: append(append([]slog.Attr(nil), h.attrs...), as...), store: h.store}
}

func (h *captureHandler) WithGroup(string) slog.Handler { return h }

// has reports whether a record at level carried the attribute key=value.
func (h *captureHandler) has(level slog.Level, key, value string) bool {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	for _, r := range h.store.recs {
		if r.level != level {
			continue
		}
		for _, a := range r.attrs {
			if a.Key == key && a.Value.String() == value {
				return true
			}
		}
	}
	return false
}

type countingMetrics struct {
	mu             sync.Mutex
	calls, n, errs int
}

func (m *countingMetrics) ObserveReadBack(time.Duration, error) {}

func (m *countingMetrics) ObserveWrite(n int, _ time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	m.n += n
	if err != nil {
		m.errs++
	}
}

func (m *countingMetrics) get() (calls, n, errs int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls, m.n, m.errs
}

// writeUnrelatedCA writes a CA certificate that signed nothing the broker has.
func writeUnrelatedCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "unrelated CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "unrelated-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
