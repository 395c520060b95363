package publisher

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/schema"
)

func TestNewFillsDefaults(t *testing.T) {
	p, err := New(Config{Brokers: []string{"127.0.0.1:9092"}})
	if err != nil {
		t.Fatal(err)
	}
	c := p.cfg
	if c.Topic != DefaultTopic || c.Partitions != 3 || c.Replication != -1 || c.Compression != DefaultCompression ||
		c.WriteTimeout != 30*time.Second || c.BatchSize != DefaultBatchSize || c.BatchBytes != DefaultBatchBytes ||
		c.BatchTimeout != DefaultBatchTimeout || c.Source != schema.DefaultSource || c.ClientID != "followpub" {
		t.Errorf("defaults not filled: %+v", c)
	}
	if c.BatchTimeout >= 100*time.Millisecond {
		t.Errorf("BatchTimeout %s: a synchronous write would stall; want milliseconds", c.BatchTimeout)
	}
	w := p.w
	if w.RequiredAcks != kafka.RequireAll {
		t.Errorf("RequiredAcks = %v, want RequireAll", w.RequiredAcks)
	}
	if _, ok := w.Balancer.(*kafka.Murmur2Balancer); !ok {
		t.Errorf("Balancer = %T, want *kafka.Murmur2Balancer", w.Balancer)
	}
	if w.Compression != kafka.Lz4 || w.AllowAutoTopicCreation || w.Async {
		t.Errorf("writer: compression %v, auto-create %v, async %v", w.Compression, w.AllowAutoTopicCreation, w.Async)
	}
	if w.WriteTimeout <= 0 || w.WriteTimeout > c.WriteTimeout || w.ReadTimeout <= 0 {
		t.Errorf("writer request timeouts %s/%s not within WriteTimeout %s", w.ReadTimeout, w.WriteTimeout, c.WriteTimeout)
	}
	if p.transport.TLS != nil || p.transport.SASL != nil {
		t.Error("TLS or SASL on without configuration")
	}
}

func TestNewDoesNotShareCallerSlices(t *testing.T) {
	brokers := []string{"127.0.0.1:9092"}
	p, err := New(Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	brokers[0] = "changed:1"
	if p.cfg.Brokers[0] != "127.0.0.1:9092" {
		t.Error("Publisher kept the caller's Brokers slice")
	}
}

func TestCompressionNames(t *testing.T) {
	for name, want := range map[string]kafka.Compression{
		"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "LZ4": kafka.Lz4, " zstd ": kafka.Zstd, "": kafka.Lz4,
	} {
		p, err := New(Config{Brokers: []string{"127.0.0.1:9092"}, Compression: name})
		if err != nil {
			t.Errorf("Compression %q: %v", name, err)
			continue
		}
		if p.w.Compression != want {
			t.Errorf("Compression %q = %v, want %v", name, p.w.Compression, want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := func(c Config) Config {
		if c.Brokers == nil {
			c.Brokers = []string{"127.0.0.1:9092"}
		}
		return c
	}
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no brokers", Config{Brokers: []string{}}, "Brokers"},
		{"broker without port", Config{Brokers: []string{"localhost"}}, "Brokers"},
		{"bad topic chars", ok(Config{Topic: "a/b"}), "Topic"},
		{"topic dot", ok(Config{Topic: ".."}), "Topic"},
		{"topic too long", ok(Config{Topic: strings.Repeat("a", 250)}), "Topic"},
		{"zero-ish partitions", ok(Config{Partitions: -2}), "Partitions"},
		{"bad replication", ok(Config{Replication: -3}), "Replication"},
		{"huge replication", ok(Config{Replication: 40000}), "Replication"},
		{"unknown codec", ok(Config{Compression: "brotli"}), "Compression"},
		{"unknown mechanism", ok(Config{SASL: SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: "p"}}), "SASL.Mechanism"},
		{"user without mechanism", ok(Config{SASL: SASLConfig{Username: "u"}}), "SASL.Mechanism"},
		{"mechanism without user", ok(Config{SASL: SASLConfig{Mechanism: "PLAIN", Password: "p"}}), "SASL.Username"},
		{"mechanism without password", ok(Config{SASL: SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u"}}), "SASL.Password"},
		{"CA file without TLS", ok(Config{TLS: TLSConfig{CAFile: "ca.pem"}}), "TLS.CAFile"},
		{"skip verify without TLS", ok(Config{TLS: TLSConfig{InsecureSkipVerify: true}}), "TLS.InsecureSkipVerify"},
		{"cert without key", ok(Config{TLS: TLSConfig{Enabled: true, CertFile: "c.pem"}}), "TLS.CertFile"},
		{"missing CA file", ok(Config{TLS: TLSConfig{Enabled: true, CAFile: filepath.Join(dir, "nope.pem")}}), "TLS.CAFile"},
		{"CA file not PEM", ok(Config{TLS: TLSConfig{Enabled: true, CAFile: notPEM}}), "TLS.CAFile"},
		{"missing client cert", ok(Config{TLS: TLSConfig{Enabled: true, CertFile: notPEM, KeyFile: notPEM}}), "TLS.CertFile"},
		{"negative write timeout", ok(Config{WriteTimeout: -time.Second}), "WriteTimeout"},
		{"negative batch size", ok(Config{BatchSize: -1}), "BatchSize"},
		{"negative batch bytes", ok(Config{BatchBytes: -1}), "BatchBytes"},
		{"negative batch timeout", ok(Config{BatchTimeout: -1}), "BatchTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New: err = %v, want a *ConfigError", err)
			}
			if ce.Field != tt.field {
				t.Errorf("Field = %q, want %q (err: %v)", ce.Field, tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name %s", err, tt.field)
			}
			if _, _, err2 := NewTransport(tt.cfg); err2 == nil {
				t.Error("NewTransport accepted what New refused")
			}
		})
	}
}

func TestConfigErrorsNeverShowThePassword(t *testing.T) {
	const secret = "s3cret-Password"
	for _, cfg := range []Config{
		{Brokers: []string{"127.0.0.1:9092"}, SASL: SASLConfig{Mechanism: "BOGUS", Username: "u", Password: secret}},
		{Brokers: []string{"127.0.0.1:9092"}, SASL: SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "u\u0007", Password: secret + "\u0007"}},
	} {
		_, err := New(cfg)
		if err == nil {
			t.Fatal("no error")
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestNewTransportSASLAndTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeTestCA(t, dir)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "scram-sha-512"} {
		t.Run(mech, func(t *testing.T) {
			tr, d, err := NewTransport(Config{
				Brokers: []string{"127.0.0.1:9093"},
				SASL:    SASLConfig{Mechanism: mech, Username: "u", Password: "p"},
				TLS: TLSConfig{Enabled: true, CAFile: caFile, CertFile: certFile, KeyFile: keyFile,
					ServerName: "kafka.test"},
				ClientID: "me",
			})
			if err != nil {
				t.Fatal(err)
			}
			if tr.SASL == nil || tr.SASL.Name() != strings.ToUpper(mech) || d.SASLMechanism != tr.SASL {
				t.Errorf("SASL mechanism: transport %v, dialer %v", tr.SASL, d.SASLMechanism)
			}
			if tr.TLS == nil || d.TLS != tr.TLS || tr.TLS.RootCAs == nil || len(tr.TLS.Certificates) != 1 ||
				tr.TLS.ServerName != "kafka.test" || tr.TLS.InsecureSkipVerify {
				t.Errorf("TLS config wrong: %+v", tr.TLS)
			}
			if tr.ClientID != "me" || d.ClientID != "me" || tr.DialTimeout <= 0 || d.Timeout <= 0 {
				t.Errorf("client id or dial timeouts wrong: %q %q %s %s", tr.ClientID, d.ClientID, tr.DialTimeout, d.Timeout)
			}
		})
	}
}

func TestNewTransportTLSWithSystemRoots(t *testing.T) {
	tr, _, err := NewTransport(Config{Brokers: []string{"127.0.0.1:9093"}, TLS: TLSConfig{Enabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	if tr.TLS == nil || tr.TLS.RootCAs != nil || tr.TLS.MinVersion < 0x0303 {
		t.Errorf("TLS = %+v, want system roots and TLS 1.2+", tr.TLS)
	}
}

// writeTestCA writes a self-signed CA certificate and, signed by it, a client certificate and
// key, all PEM, into dir.
func writeTestCA(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "followpub test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("client.pem", "CERTIFICATE", der), write("client-key.pem", "EC PRIVATE KEY", keyDER)
}
