package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/schema"
)

// Retry pacing of Publish when a whole write failed with a temporary error. kafka-go retries each
// batch itself first (writerMaxAttempts).
const (
	retryBackoffMin = 100 * time.Millisecond
	retryBackoffMax = 2 * time.Second
	// writerMaxAttempts is how often kafka-go tries one batch before it reports it failed. Kept
	// small: a failed batch holds up its partition's queue while it is retried, and Publish
	// retries what is still unacknowledged within WriteTimeout anyway.
	writerMaxAttempts = 5
	// requestTimeoutMax bounds one produce or metadata request, so that a hung connection is
	// given up and retried well within WriteTimeout.
	requestTimeoutMax = 10 * time.Second
)

// Publisher writes records to Kafka. Create it with New; its methods are safe for concurrent use.
type Publisher struct {
	cfg       Config
	log       *slog.Logger
	transport *kafka.Transport
	client    *kafka.Client
	w         *kafka.Writer

	topicMu    sync.Mutex
	topicReady bool

	source []byte // cfg.Source, the ce_source value of every message

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// New returns a Publisher for cfg after filling defaults and validating. It reads the TLS files
// but does not touch the network: call EnsureTopic or Check to reach the brokers early.
// Configuration errors are *ConfigError.
func New(cfg Config) (*Publisher, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Brokers = append([]string(nil), cfg.Brokers...)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "publisher", "topic", cfg.Topic)
	transport, _, err := newTransport(&cfg)
	if err != nil {
		return nil, err
	}
	if cfg.SASL.Mechanism == MechanismPlain && !cfg.TLS.Enabled {
		log.Warn("SASL PLAIN without TLS sends the password in clear text", "brokers", cfg.Brokers)
	}
	reqTimeout := min(cfg.WriteTimeout, requestTimeoutMax)
	p := &Publisher{
		source:    []byte(cfg.Source),
		cfg:       cfg,
		log:       log,
		transport: transport,
		client: &kafka.Client{
			Addr:      kafka.TCP(cfg.Brokers...),
			Transport: transport,
			Timeout:   cfg.WriteTimeout,
		},
	}
	kafkaLog := log.With("source", "kafka-go")
	p.w = &kafka.Writer{
		Addr:  kafka.TCP(cfg.Brokers...),
		Topic: cfg.Topic,
		// The same partition for a key as the Java client's default partitioner and librdkafka's
		// murmur2(_random): consumers and tools in any language agree where a key lives.
		// kafka-go's default (round-robin) ignores keys.
		Balancer: &kafka.Murmur2Balancer{},
		// Acknowledged means written to every in-sync replica: the watermark may then move past
		// the record. kafka-go's default (RequireNone) acknowledges nothing.
		RequiredAcks: kafka.RequireAll,
		// kafka-go's own retries of one batch, for temporary errors (leader moves, a broker
		// restarting), with its quadratic backoff between the bounds.
		MaxAttempts:     writerMaxAttempts,
		WriteBackoffMin: 100 * time.Millisecond,
		WriteBackoffMax: time.Second,
		// Publish writes synchronously, so a partial batch costs BatchTimeout on every call: it
		// is a millisecond, not kafka-go's 1 s default (see DefaultBatchTimeout).
		BatchSize:    cfg.BatchSize,
		BatchBytes:   cfg.BatchBytes,
		BatchTimeout: cfg.BatchTimeout,
		// Deadlines of one request; Publish bounds the whole call with WriteTimeout.
		ReadTimeout:  reqTimeout,
		WriteTimeout: reqTimeout,
		Compression:  compressions[cfg.Compression],
		// Per-record acknowledgement, including batches that complete after a deadline cut
		// WriteMessages short (see Publish).
		Completion: complete,
		// The topic is created by EnsureTopic with our partitions and replication, never by the
		// broker's auto-creation (whose first write kafka-go does not retry).
		AllowAutoTopicCreation: false,
		Logger:                 kafka.LoggerFunc(debugf(kafkaLog)),
		ErrorLogger:            kafka.LoggerFunc(debugf(kafkaLog.With("kafka_error", true))),
		Transport:              transport,
	}
	return p, nil
}

// debugf routes a printf-style kafka-go logger to log at debug level.
func debugf(log *slog.Logger) func(string, ...any) {
	return func(format string, args ...any) {
		if log.Enabled(context.Background(), slog.LevelDebug) {
			log.Debug(fmt.Sprintf(format, args...))
		}
	}
}

// slot tracks one message of one Publish call; kafka-go hands it back to complete through
// Message.WriterData.
type slot struct {
	acked atomic.Bool
	call  *call
}

// call is the state of one Publish call shared with complete.
type call struct {
	slots   []slot
	lastErr atomic.Pointer[error] // the last batch error reported by kafka-go
}

// complete is the Writer's Completion: it runs once per batch, on kafka-go's goroutines, possibly
// after the Publish call that wrote the batch has returned.
func complete(msgs []kafka.Message, err error) {
	for i := range msgs {
		s, ok := msgs[i].WriterData.(*slot)
		if !ok {
			continue
		}
		if err == nil {
			s.acked.Store(true)
		} else {
			s.call.lastErr.Store(&err)
		}
	}
}

// Publish writes recs, in order, and blocks until Kafka acknowledged each of them, the write
// failed for good, WriteTimeout passed, or ctx is done. It returns a nil error when every record
// was acknowledged. Otherwise acked[i] reports whether Kafka acknowledged recs[i] (acked is nil
// when none was), and the error says why the others were not.
//
// Temporary failures (a leader election, a broker restarting, a topic whose metadata is still
// propagating) are retried with backoff within WriteTimeout, each time with the records still
// unacknowledged; a retried record may land after records that followed it in recs. A record not
// acknowledged may still have reached Kafka: delivery is at-least-once. A failure that may mean
// the brokers are down is checked by dialling them (at most probeTimeout more): when none answers,
// the error wraps ErrBrokersUnreachable.
//
// A record larger than Config.BatchBytes is not sent: the records before it are, and the error
// wraps ErrRecordTooLarge. Before the first write Publish makes sure the topic exists, as
// EnsureTopic does.
func (p *Publisher) Publish(ctx context.Context, recs []schema.Record) (acked []bool, err error) {
	if len(recs) == 0 {
		return nil, nil
	}
	start := time.Now()
	defer func() {
		if p.cfg.Metrics != nil {
			p.cfg.Metrics.ObserveWrite(len(recs), time.Since(start), err)
		}
	}()
	if p.closed.Load() {
		return nil, fmt.Errorf("publishing %d records to topic %s: %w", len(recs), p.cfg.Topic, ErrClosed)
	}
	for i := range recs {
		if len(recs[i].Raw) == 0 {
			return nil, fmt.Errorf("publishing %d records to topic %s: record %d (id %d) has no value; refusing to write a tombstone",
				len(recs), p.cfg.Topic, i, recs[i].ID)
		}
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
	defer cancel()

	c := &call{slots: make([]slot, len(recs))}
	msgs := p.messages(recs, c)

	werr := p.ensureTopicOnce(ctx)
	if werr == nil {
		werr = p.write(ctx, msgs, c)
	}
	acked, n := c.acked()
	if n == len(recs) {
		return acked, nil
	}
	if n == 0 {
		acked = nil
	}
	if werr == nil || werr == context.DeadlineExceeded || werr == context.Canceled {
		// The deadline cut kafka-go short: say what it was failing on meanwhile.
		if last := c.lastErr.Load(); last != nil {
			werr = fmt.Errorf("%w (last error: %w)", werr, *last)
		}
	}
	if errors.Is(werr, context.DeadlineExceeded) && parent.Err() == nil {
		werr = fmt.Errorf("no acknowledgement within the write timeout of %s (KAFKA_WRITE_TIMEOUT): %w", p.cfg.WriteTimeout, werr)
	}
	if parent.Err() == nil && (retriable(werr) || errors.Is(werr, context.DeadlineExceeded)) && !isUnreachable(werr) {
		if perr := p.probeBrokers(parent); perr != nil && parent.Err() == nil {
			werr = fmt.Errorf("%w: tried %s: %w; the write failed with: %w",
				ErrBrokersUnreachable, strings.Join(p.cfg.Brokers, ","), perr, werr)
		}
	}
	return acked, fmt.Errorf("publishing %d records to topic %s: %d acknowledged: %w", len(recs), p.cfg.Topic, n, p.explain(werr))
}

// writeFailure is kafka.WriteErrors told briefly: how many messages failed, and the first error.
// errors.As still finds the WriteErrors.
type writeFailure struct {
	errs   kafka.WriteErrors
	first  error
	failed int
}

func (w *writeFailure) Error() string {
	return fmt.Sprintf("%d of %d messages failed: %v", w.failed, len(w.errs), w.first)
}

func (w *writeFailure) Unwrap() []error { return []error{w.first, w.errs} }

// brief turns kafka.WriteErrors into a writeFailure; other errors are returned as they are.
func brief(err error) error {
	werrs, ok := err.(kafka.WriteErrors)
	if !ok {
		return err
	}
	f := &writeFailure{errs: werrs}
	for _, e := range werrs {
		if e != nil {
			f.failed++
			if f.first == nil {
				f.first = e
			}
		}
	}
	if f.first == nil {
		return nil
	}
	return f
}

// write sends the unacknowledged messages of c until all are acknowledged, a final error, or ctx
// is done.
func (p *Publisher) write(ctx context.Context, msgs []kafka.Message, c *call) error {
	pending := msgs
	for attempt := 0; ; attempt++ {
		err := p.w.WriteMessages(ctx, pending...)
		var tooLarge kafka.MessageTooLargeError
		if errors.As(err, &tooLarge) {
			// Nothing was sent. Send the records before the large one, then report it.
			i := slices.IndexFunc(pending, func(m kafka.Message) bool { return m.WriterData == tooLarge.Message.WriterData })
			if i > 0 {
				if err := p.write(ctx, pending[:i], c); err != nil {
					return err
				}
			}
			return fmt.Errorf("%w: record id %s has %d bytes of value, more than the %d bytes of a batch",
				ErrRecordTooLarge, tooLarge.Message.Key, len(tooLarge.Message.Value), p.cfg.BatchBytes)
		}
		if err == nil {
			return nil
		}
		err = brief(err)
		pending = unacked(pending)
		if len(pending) == 0 || err == nil {
			return nil
		}
		if !retriable(err) || ctx.Err() != nil {
			return err
		}
		delay := backoff(attempt)
		p.log.Debug("retrying kafka write", "attempt", attempt+1, "unacknowledged", len(pending), "delay", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// unacked returns the messages of msgs not yet acknowledged, in order.
func unacked(msgs []kafka.Message) []kafka.Message {
	var out []kafka.Message
	for i := range msgs {
		if s, ok := msgs[i].WriterData.(*slot); !ok || !s.acked.Load() {
			out = append(out, msgs[i])
		}
	}
	return out
}

// acked returns which messages were acknowledged so far, and how many.
func (c *call) acked() ([]bool, int) {
	out := make([]bool, len(c.slots))
	n := 0
	for i := range c.slots {
		if c.slots[i].acked.Load() {
			out[i] = true
			n++
		}
	}
	return out, n
}

// backoff returns the pause before retry attempt+1: exponential from retryBackoffMin, at most
// retryBackoffMax, with ±25 % jitter.
func backoff(attempt int) time.Duration {
	d := retryBackoffMin << min(attempt, 10)
	if d > retryBackoffMax || d <= 0 {
		d = retryBackoffMax
	}
	return d - d/4 + rand.N(d/2+1)
}

// Close flushes what kafka-go still holds (batches of calls cut short by their deadline) within
// WriteTimeout and releases the connections. Publish fails with ErrClosed afterwards.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		done := make(chan error, 1)
		go func() { done <- p.w.Close() }()
		t := time.NewTimer(p.cfg.WriteTimeout)
		defer t.Stop()
		select {
		case err := <-done:
			if err != nil {
				p.closeErr = fmt.Errorf("closing the kafka writer: %w", p.explain(err))
			}
		case <-t.C:
			p.closeErr = fmt.Errorf("closing the kafka writer: pending writes not flushed within %s", p.cfg.WriteTimeout)
		}
		p.transport.CloseIdleConnections()
	})
	return p.closeErr
}
