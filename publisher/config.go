package publisher

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/followpub/followpub/schema"
)

// Defaults applied by New to zero fields of Config.
const (
	// DefaultTopic is the output topic (KAFKA_TOPIC).
	DefaultTopic = "wshoto.crm.follow.system"
	// DefaultPartitions is the partition count of a topic the publisher creates.
	DefaultPartitions = 3
	// DefaultReplication asks the broker for its default.replication.factor.
	DefaultReplication = -1
	// DefaultCompression is the codec of produced batches, chosen by measurement
	// (docs/BENCHMARKS.md): of the codecs, lz4 keeps the most throughput for the bytes it saves.
	DefaultCompression = "lz4"
	// DefaultWriteTimeout bounds one Publish call (KAFKA_WRITE_TIMEOUT).
	DefaultWriteTimeout = 30 * time.Second
	// DefaultBatchSize is the most messages sent to one partition in one produce request.
	DefaultBatchSize = 1000
	// DefaultBatchBytes is the most bytes (uncompressed) sent to one partition in one produce
	// request; the broker's default message.max.bytes is slightly above it.
	DefaultBatchBytes = 1 << 20
	// DefaultBatchTimeout is how long a partial batch waits for messages of other Publish calls.
	// It never splits the records of one call: kafka-go queues a call's messages for a partition
	// under that partition's lock, before the batch timer can take the batch. The poller publishes
	// one call at a time, so every call waits this long for its last batch per partition and
	// nothing joins it: kafka-go's default of one second would stall every cycle, and every
	// millisecond more slows a backfill (docs/BENCHMARKS.md).
	DefaultBatchTimeout = time.Millisecond
	// DefaultClientID is the client id the brokers see.
	DefaultClientID = "followpub"
	// DefaultMetadataTTL is how often the cached cluster metadata is refreshed (at a random
	// moment within it): a leader that moved, or a broker back from a restart, is seen within it.
	// kafka-go's 6 s would make a restarted broker's first write wait that long. kafka-go also
	// gives each metadata request this long to answer, so it is not shorter than a slow
	// cluster's round trip.
	DefaultMetadataTTL = 2 * time.Second
	// DefaultDialTimeout bounds connecting to a broker, TLS handshake and SASL included.
	DefaultDialTimeout = 10 * time.Second
)

// SASL mechanisms accepted in SASLConfig.Mechanism.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// Config configures a Publisher. New fills the zero fields with the defaults documented on each
// field, then validates.
type Config struct {
	// Brokers are the bootstrap servers, host:port (KAFKA_BROKERS). Required.
	Brokers []string
	// Topic is the output topic (KAFKA_TOPIC). Default: DefaultTopic.
	Topic string
	// CreateTopic creates Topic before the first write when it does not exist
	// (KAFKA_CREATE_TOPIC). When false, a missing topic is an error (ErrTopicNotFound).
	CreateTopic bool
	// Partitions is the partition count of a created topic (KAFKA_TOPIC_PARTITIONS).
	// Default (0): DefaultPartitions. -1 asks for the broker's num.partitions.
	Partitions int
	// Replication is the replication factor of a created topic (KAFKA_TOPIC_REPLICATION).
	// Default (0): -1, the broker's default.replication.factor.
	Replication int
	// Compression is the codec of produced batches: none, gzip, snappy, lz4 or zstd
	// (KAFKA_COMPRESSION). Default (""): DefaultCompression.
	Compression string
	// SASL configures authentication. Zero: none.
	SASL SASLConfig
	// TLS configures TLS to the brokers. Zero: plain TCP.
	TLS TLSConfig
	// WriteTimeout bounds one Publish call, retries included, and EnsureTopic, Check and Close
	// (KAFKA_WRITE_TIMEOUT). Default: DefaultWriteTimeout.
	WriteTimeout time.Duration
	// BatchSize is the most messages per partition in one produce request.
	// Default: DefaultBatchSize.
	BatchSize int
	// BatchBytes is the most bytes per partition in one produce request; a single record larger
	// than this is refused with ErrRecordTooLarge. Default: DefaultBatchBytes.
	BatchBytes int64
	// BatchTimeout is how long a partial batch waits for more messages before it is sent.
	// Default: DefaultBatchTimeout.
	BatchTimeout time.Duration
	// Source is the CloudEvents source, the ce_source header (EVENT_SOURCE).
	// Default: schema.DefaultSource.
	Source string
	// Tenant is the tenant id, the ce_tenant header (docs/DESIGN.md §7). A read-back counts a
	// record of another tenant as someone else's. Default: schema.DefaultTenant.
	Tenant string
	// Transport, when not nil, is the kafka-go Transport to write and read through, shared with
	// other publishers (one connection pool for every tenant); it must fetch the metadata of
	// Topic (NewTransport's MetadataTopics), and Close leaves its connections open. Nil: a
	// Transport of the publisher's own, from Brokers, TLS and SASL.
	Transport *kafka.Transport
	// ClientID is the Kafka client id. Default: DefaultClientID.
	ClientID string
	// Logger receives the publisher's logs, and kafka-go's own at debug level. Nil: silent.
	Logger *slog.Logger
	// Metrics observes every Publish call. Nil: none.
	Metrics Metrics

	// metadataTTL overrides DefaultMetadataTTL; tests shorten it (export_test.go).
	metadataTTL time.Duration
}

// SASLConfig configures SASL authentication.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (KAFKA_SASL_MECHANISM), in any case.
	// Empty: no SASL.
	Mechanism string
	// Username and Password are the credentials (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD).
	// The password never appears in logs or errors.
	Username string
	Password string
}

// TLSConfig configures TLS to the brokers.
type TLSConfig struct {
	// Enabled turns TLS on (KAFKA_TLS). The other fields require it.
	Enabled bool
	// CAFile is a PEM file of the CAs to trust (KAFKA_TLS_CA_FILE). Empty: the system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for brokers that require
	// client authentication (KAFKA_TLS_CERT_FILE, KAFKA_TLS_KEY_FILE). Both or neither.
	CertFile string
	KeyFile  string
	// ServerName is the name checked against the brokers' certificates. Empty: each broker's
	// host as dialled.
	ServerName string
	// InsecureSkipVerify accepts any certificate (KAFKA_TLS_INSECURE_SKIP_VERIFY). For tests
	// only: it makes TLS worthless against an active attacker.
	InsecureSkipVerify bool
}

// Metrics observes the publisher. Implementations must be safe for concurrent use.
type Metrics interface {
	// ObserveWrite is called once per Publish call with at least one record: n records were to
	// be written, the call took d, and err is what it returned (nil when all were acknowledged).
	ObserveWrite(n int, d time.Duration, err error)
	// ObserveReadBack is called once per ReadBack call: it took d, and err is what it returned.
	ObserveReadBack(d time.Duration, err error)
}

// ErrInvalidConfig is wrapped by every *ConfigError.
var ErrInvalidConfig = errors.New("invalid publisher configuration")

// ConfigError is a configuration error. Field names the Config field at fault (for example
// "TLS.CAFile") and Related, when set, the other field the broken rule ties it to (for example
// "TLS.Enabled"), so a caller can name its own flags or variables instead.
type ConfigError struct {
	Field   string
	Related string
	Err     error
}

func (e *ConfigError) Error() string {
	msg := "invalid kafka configuration: " + e.Field + ": " + e.Err.Error()
	if e.Related != "" {
		msg += " (see " + e.Related + ")"
	}
	return msg
}

// Unwrap returns ErrInvalidConfig and the cause.
func (e *ConfigError) Unwrap() []error { return []error{ErrInvalidConfig, e.Err} }

func configErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

func relatedErr(field, related, format string, args ...any) error {
	return &ConfigError{Field: field, Related: related, Err: fmt.Errorf(format, args...)}
}

// compressions maps KAFKA_COMPRESSION values to kafka-go codecs.
var compressions = map[string]kafka.Compression{
	"none":   0,
	"gzip":   kafka.Gzip,
	"snappy": kafka.Snappy,
	"lz4":    kafka.Lz4,
	"zstd":   kafka.Zstd,
}

// setDefaults fills the zero fields of c.
func (c *Config) setDefaults() {
	c.Topic = cmp.Or(c.Topic, DefaultTopic)
	c.Partitions = cmp.Or(c.Partitions, DefaultPartitions)
	c.Replication = cmp.Or(c.Replication, DefaultReplication)
	c.Compression = cmp.Or(strings.ToLower(strings.TrimSpace(c.Compression)), DefaultCompression)
	c.SASL.Mechanism = strings.ToUpper(strings.TrimSpace(c.SASL.Mechanism))
	c.WriteTimeout = cmp.Or(c.WriteTimeout, DefaultWriteTimeout)
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.BatchBytes = cmp.Or(c.BatchBytes, DefaultBatchBytes)
	c.BatchTimeout = cmp.Or(c.BatchTimeout, DefaultBatchTimeout)
	c.Source = cmp.Or(c.Source, schema.DefaultSource)
	c.Tenant = cmp.Or(c.Tenant, schema.DefaultTenant)
	c.ClientID = cmp.Or(c.ClientID, DefaultClientID)
}

// Validate reports what New would refuse in c, after filling the same defaults, without reading
// the TLS files or touching the network: a caller can check a configuration at start-up, before
// it builds anything. Errors are *ConfigError.
func (c Config) Validate() error {
	c.setDefaults()
	return c.validate()
}

// validate reports the first invalid field of a defaulted c.
func (c *Config) validate() error {
	if len(c.Brokers) == 0 {
		return configErr("Brokers", "no bootstrap server given")
	}
	for _, b := range c.Brokers {
		if !validBroker(b) {
			return configErr("Brokers", "%q is not host:port with a port from 1 to 65535", b)
		}
	}
	if err := validTopic(c.Topic); err != nil {
		return &ConfigError{Field: "Topic", Err: err}
	}
	if c.Partitions < 1 && c.Partitions != -1 {
		return configErr("Partitions", "%d: want at least 1, or -1 for the broker's default", c.Partitions)
	}
	if c.Replication < 1 && c.Replication != -1 || c.Replication > 32767 {
		return configErr("Replication", "%d: want 1 to 32767, or -1 for the broker's default", c.Replication)
	}
	if _, ok := compressions[c.Compression]; !ok {
		return configErr("Compression", "%q: want none, gzip, snappy, lz4 or zstd", c.Compression)
	}
	switch c.SASL.Mechanism {
	case "":
		if c.SASL.Username != "" || c.SASL.Password != "" {
			return configErr("SASL.Mechanism", "empty, but a SASL user name or password is set: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
	case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		if c.SASL.Username == "" {
			return relatedErr("SASL.Username", "SASL.Mechanism", "empty, but SASL mechanism %s needs one", c.SASL.Mechanism)
		}
		if c.SASL.Password == "" {
			return relatedErr("SASL.Password", "SASL.Mechanism", "empty, but SASL mechanism %s needs one", c.SASL.Mechanism)
		}
	default:
		return configErr("SASL.Mechanism", "%q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASL.Mechanism)
	}
	if !c.TLS.Enabled {
		for _, f := range []struct{ field, value string }{{"TLS.CAFile", c.TLS.CAFile}, {"TLS.CertFile", c.TLS.CertFile},
			{"TLS.KeyFile", c.TLS.KeyFile}, {"TLS.ServerName", c.TLS.ServerName}} {
			if f.value != "" {
				return relatedErr(f.field, "TLS.Enabled", "set, but TLS is not enabled")
			}
		}
		if c.TLS.InsecureSkipVerify {
			return relatedErr("TLS.InsecureSkipVerify", "TLS.Enabled", "set, but TLS is not enabled")
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return relatedErr("TLS.CertFile", "TLS.KeyFile", "a client certificate needs both a certificate file and a key file")
	}
	if c.WriteTimeout < 0 {
		return configErr("WriteTimeout", "%s is negative", c.WriteTimeout)
	}
	if c.BatchSize < 1 {
		return configErr("BatchSize", "%d: want at least 1", c.BatchSize)
	}
	if c.BatchBytes < 1 {
		return configErr("BatchBytes", "%d: want at least 1", c.BatchBytes)
	}
	if c.BatchTimeout < 0 {
		return configErr("BatchTimeout", "%s is negative", c.BatchTimeout)
	}
	return nil
}

// validBroker reports whether b is host:port with a host and a port from 1 to 65535.
func validBroker(b string) bool {
	host, port, err := net.SplitHostPort(b)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// validTopic applies Kafka's rules for topic names.
func validTopic(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%q is not allowed", name)
	}
	if len(name) > 249 {
		return fmt.Errorf("%d characters: at most 249", len(name))
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '.' && r != '_' && r != '-' {
			return fmt.Errorf("%q: only ASCII letters, digits, '.', '_' and '-' are allowed", name)
		}
	}
	return nil
}

// NewTransport returns a kafka-go Transport (for Writer and Client) and a Dialer (for Reader and
// Conn) that connect to cfg.Brokers with cfg's TLS, SASL, client id and timeouts, so every
// followpub client (the publisher, followpub tail) connects the same way. It fills defaults and
// validates cfg as New does; it reads the TLS files but does not touch the network. The
// Transport caches the metadata of cfg.Topic only (Transport.MetadataTopics): set that field to
// use it for other topics. A Writer over it compresses as the Publisher does, with the writers of
// kafka-go's codec table (see RegisterCodecs).
func NewTransport(cfg Config) (*kafka.Transport, *kafka.Dialer, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	return newTransport(&cfg)
}

func newTransport(cfg *Config) (*kafka.Transport, *kafka.Dialer, error) {
	tlsConfig, err := buildTLS(cfg.TLS)
	if err != nil {
		return nil, nil, err
	}
	mech, err := buildSASL(cfg.SASL)
	if err != nil {
		return nil, nil, err
	}
	nd := &net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second}
	t := &kafka.Transport{
		Dial:        nd.DialContext,
		DialTimeout: DefaultDialTimeout,
		// Only our topic's metadata is fetched and cached; the metadata request never asks the
		// broker to auto-create it.
		MetadataTopics: []string{cfg.Topic},
		// kafka-go refreshes metadata on this timer only, never because a write failed, and
		// keeps what it had while the brokers are down: a broker that shut down leaves "no
		// leader" cached, and Publish retries that until the next refresh after it is back.
		MetadataTTL: cmp.Or(cfg.metadataTTL, DefaultMetadataTTL),
		ClientID:    cfg.ClientID,
		TLS:         tlsConfig,
		SASL:        mech,
	}
	d := &kafka.Dialer{
		ClientID:      cfg.ClientID,
		Timeout:       DefaultDialTimeout,
		DualStack:     true,
		KeepAlive:     30 * time.Second,
		TLS:           tlsConfig,
		SASLMechanism: mech,
	}
	return t, d, nil
}

// buildTLS returns the client TLS configuration, nil when TLS is off.
func buildTLS(c TLSConfig) (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // opt-in, documented as tests only
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, &ConfigError{Field: "TLS.CAFile", Err: fmt.Errorf("reading the CA file: %w", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, configErr("TLS.CAFile", "%s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, &ConfigError{Field: "TLS.CertFile", Err: fmt.Errorf("loading the client certificate %s and key %s: %w", c.CertFile, c.KeyFile, err)}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// buildSASL returns the SASL mechanism, nil when SASL is off.
func buildSASL(c SASLConfig) (sasl.Mechanism, error) {
	var algo scram.Algorithm
	switch c.Mechanism {
	case "":
		return nil, nil
	case MechanismPlain:
		return plain.Mechanism{Username: c.Username, Password: c.Password}, nil
	case MechanismSCRAMSHA256:
		algo = scram.SHA256
	case MechanismSCRAMSHA512:
		algo = scram.SHA512
	default:
		return nil, configErr("SASL.Mechanism", "%q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.Mechanism)
	}
	m, err := scram.Mechanism(algo, c.Username, c.Password)
	if err != nil {
		// The error is about the user name or password (SASLprep); it never contains them.
		return nil, &ConfigError{Field: "SASL.Username", Err: fmt.Errorf("preparing SCRAM credentials: %w", err)}
	}
	return m, nil
}
