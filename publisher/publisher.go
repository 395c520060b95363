package publisher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/followpub/followpub/internal/retry"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/schema"
)

const (
	// writerMaxAttempts is how often kafka-go sends one batch: once. Its own retries re-send a
	// batch whose first attempt may have been appended, which duplicates it in the topic; a failed
	// write is settled by ReadBack instead, and only what did not land is sent again (by the
	// caller).
	writerMaxAttempts = 1
	// requestTimeoutMax bounds one produce or metadata request, so that a hung connection is
	// given up well within WriteTimeout.
	requestTimeoutMax = 10 * time.Second
)

// Publisher writes records to Kafka. Create it with New; its methods are safe for concurrent use.
type Publisher struct {
	cfg       Config
	log       *slog.Logger
	transport *kafka.Transport
	client    *kafka.Client

	// wmu guards w, which settle replaces after a failed write; settled is closed once the
	// writer settle closed has finished every write it held (nil: none pending).
	wmu     sync.RWMutex
	w       *kafka.Writer
	settled chan struct{}

	topicMu    sync.Mutex
	topicReady bool

	source []byte // cfg.Source, the ce_source value of every message
	tenant []byte // cfg.Tenant, the ce_tenant value of every message
	shared bool   // the transport is cfg.Transport, another's to close

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
	transport, shared := cfg.Transport, cfg.Transport != nil
	if !shared {
		var err error
		if transport, _, err = newTransport(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.SASL.Mechanism == MechanismPlain && !cfg.TLS.Enabled {
		log.Warn("SASL PLAIN without TLS sends the password in clear text", "brokers", cfg.Brokers)
	}
	p := &Publisher{
		source:    []byte(cfg.Source),
		tenant:    []byte(cfg.Tenant),
		shared:    shared,
		cfg:       cfg,
		log:       log,
		transport: transport,
		client: &kafka.Client{
			Addr:      kafka.TCP(cfg.Brokers...),
			Transport: transport,
			Timeout:   cfg.WriteTimeout,
		},
	}
	p.w = p.newWriter()
	return p, nil
}

// newWriter returns the kafka-go Writer of p's configuration.
func (p *Publisher) newWriter() *kafka.Writer {
	cfg := p.cfg
	reqTimeout := min(cfg.WriteTimeout, requestTimeoutMax)
	kafkaLog := p.log.With("source", "kafka-go")
	return &kafka.Writer{
		Addr:  kafka.TCP(cfg.Brokers...),
		Topic: cfg.Topic,
		// The same partition for a key as the Java client's default partitioner and librdkafka's
		// murmur2(_random): consumers and tools in any language agree where a key lives.
		// kafka-go's default (round-robin) ignores keys.
		Balancer: &kafka.Murmur2Balancer{},
		// Acknowledged means written to every in-sync replica: the watermark may then move past
		// the record. kafka-go's default (RequireNone) acknowledges nothing.
		RequiredAcks: kafka.RequireAll,
		// Each batch is sent once: no blind retries (see writerMaxAttempts).
		MaxAttempts: writerMaxAttempts,
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
		Transport:              p.transport,
	}
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
	// partition and offset are where Kafka appended the message; set before acked.
	partition int
	offset    int64
}

// call is the state of one Publish call shared with complete: its messages, what they hold, and
// their slots.
type call struct {
	msgs    []kafka.Message
	headers []kafka.Header // schema.NumHeaders per message
	buf     []byte         // every message's key (also its ce_id) and ce_time
	slots   []slot
	lastErr atomic.Pointer[error] // the last batch error reported by kafka-go
}

// calls holds calls whose every message Kafka acknowledged, for Publish to build its next
// messages in their memory (about 0.5 KB a record) instead of allocating it again.
var calls sync.Pool

// newCall returns a released call, or a new one.
func newCall() *call {
	if c, ok := calls.Get().(*call); ok {
		return c
	}
	return new(call)
}

// reserve makes c hold n messages (and n slots when ack is set), reusing its memory where it is
// large enough, with no error reported yet.
func (c *call) reserve(n int, ack bool) {
	c.msgs = resize(c.msgs, n)
	c.headers = resize(c.headers, n*schema.NumHeaders)
	if cap(c.buf) < n*keyAndTimeLen {
		c.buf = make([]byte, 0, n*keyAndTimeLen)
	}
	c.buf = c.buf[:0]
	if ack {
		c.slots = resize(c.slots, n)
	}
	c.lastErr.Store(nil)
}

// resize returns s with length n: s itself when its capacity allows, or a new slice.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// release hands c to the next Publish. Only a call whose every message Kafka acknowledged may be
// released: kafka-go has then finished with them, as it calls Completion before WriteMessages
// returns (see kafka.Writer.Completion), while an unacknowledged batch may still be in flight.
// The messages are cleared so that the pool keeps no record alive.
func (c *call) release() {
	clear(c.msgs)
	calls.Put(c)
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
			s.partition, s.offset = msgs[i].Partition, msgs[i].Offset
			s.acked.Store(true)
		} else {
			s.call.lastErr.Store(&err)
		}
	}
}

// Publish writes recs, in order, once, and blocks until Kafka acknowledged or failed each of
// them, WriteTimeout passed, or ctx is done. It returns a nil error when every record was
// acknowledged, with Written.Next the offset after the last record acknowledged in each partition
// written. Otherwise Written.Acked[i] reports whether Kafka acknowledged recs[i] (Acked is nil
// when none was), and the error says why the others were not.
//
// Nothing that may have landed is re-sent: kafka-go sends each batch once (writerMaxAttempts),
// and Publish sends again only batches the brokers refused before appending them (notAppended),
// within WriteTimeout. A record that was not acknowledged may still have landed (a lost
// acknowledgement, a timeout), so the caller settles the failed write with ReadBack before it
// publishes again; Publish first waits for the batches
// still in flight (settle), so that nothing of the call lands after the read-back. An error that
// may succeed when the records are sent again (a leader election, brokers restarting, a network
// failure) has Temporary() true. A failure that may mean the brokers are down is checked by
// dialling them (at most probeTimeout more): when none answers, the error wraps
// ErrBrokersUnreachable.
//
// A record larger than Config.BatchBytes is not sent: the records before it are, and the error
// wraps ErrRecordTooLarge. Before the first write Publish makes sure the topic exists, as
// EnsureTopic does.
func (p *Publisher) Publish(ctx context.Context, recs []schema.Record) (written poller.Written, err error) {
	if len(recs) == 0 {
		return written, nil
	}
	start := time.Now()
	defer func() {
		if p.cfg.Metrics != nil {
			p.cfg.Metrics.ObserveWrite(len(recs), time.Since(start), err)
		}
	}()
	if p.closed.Load() {
		return written, fmt.Errorf("publishing %d records to topic %s: %w", len(recs), p.cfg.Topic, ErrClosed)
	}
	for i := range recs {
		if len(recs[i].Raw) == 0 {
			return written, fmt.Errorf("publishing %d records to topic %s: record %d (id %d) has no value; refusing to write a tombstone",
				len(recs), p.cfg.Topic, i, recs[i].ID)
		}
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
	defer cancel()

	c := newCall()
	msgs := p.messages(c, recs, true)

	werr := p.ensureTopicOnce(ctx)
	if werr == nil {
		p.wmu.RLock()
		werr = p.write(ctx, p.w, msgs)
		p.wmu.RUnlock()
	}
	acked, n := c.acked()
	if n < len(recs) {
		// Batches cut short by the deadline may still land: wait for them, so that what Kafka
		// acknowledged meanwhile is reported and nothing lands after the caller's read-back.
		if serr := p.settle(); serr != nil {
			werr = errors.Join(werr, serr)
		}
		acked, n = c.acked()
	}
	if n == len(recs) {
		written.Acked, written.Next = acked, c.next()
		c.release()
		return written, nil
	}
	if n > 0 {
		written.Acked = acked
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
	temporary := parent.Err() == nil && (retriable(werr) || errors.Is(werr, context.DeadlineExceeded))
	if temporary && !isUnreachable(werr) {
		if perr := p.probeBrokers(parent); perr != nil && parent.Err() == nil {
			werr = fmt.Errorf("%w: tried %s: %w; the write failed with: %w",
				ErrBrokersUnreachable, strings.Join(p.cfg.Brokers, ","), perr, werr)
		}
	}
	werr = fmt.Errorf("publishing %d records to topic %s: %d acknowledged: %w", len(recs), p.cfg.Topic, n, p.explain(werr))
	if temporary {
		werr = temporaryError{werr}
	}
	return written, werr
}

// temporaryError marks an error after which sending the records again may succeed.
type temporaryError struct{ error }

func (e temporaryError) Unwrap() error { return e.error }

// Temporary reports true: see poller.Publisher.
func (temporaryError) Temporary() bool { return true }

// settleTimeout bounds how long settle waits for the batches in flight; each ends within one
// request timeout, as kafka-go sends it once.
func (p *Publisher) settleTimeout() time.Duration {
	return 2*min(p.cfg.WriteTimeout, requestTimeoutMax) + time.Second
}

// settle replaces the writer with a new one and closes the old, which waits for every batch it
// still holds to be written or to fail. It returns an error when that takes longer than
// settleTimeout; ReadBack then waits for the rest before it reads.
func (p *Publisher) settle() error {
	p.wmu.Lock()
	old := p.w
	p.w = p.newWriter()
	done := make(chan struct{})
	prev := p.settled
	p.settled = done
	p.wmu.Unlock()
	go func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		_ = old.Close()
	}()
	select {
	case <-done:
		return nil
	case <-time.After(p.settleTimeout()):
		return fmt.Errorf("writes of topic %s still in flight after %s", p.cfg.Topic, p.settleTimeout())
	}
}

// awaitSettled waits until no write of a replaced writer is in flight, or ctx is done.
func (p *Publisher) awaitSettled(ctx context.Context) error {
	p.wmu.RLock()
	done := p.settled
	p.wmu.RUnlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for writes of topic %s still in flight: %w", p.cfg.Topic, ctx.Err())
	}
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

// write sends msgs with w. A batch the broker refused before appending anything (notAppended:
// a leader moving, a topic still propagating, brokers not reachable) is sent again, with backoff,
// until ctx is done; a batch whose fate is unknown never is.
func (p *Publisher) write(ctx context.Context, w *kafka.Writer, msgs []kafka.Message) error {
	pending := msgs
	policy := retry.New(100*time.Millisecond, 2*time.Second)
	for attempt := 1; ; attempt++ {
		err := w.WriteMessages(ctx, pending...)
		var tooLarge kafka.MessageTooLargeError
		if errors.As(err, &tooLarge) {
			// Nothing was sent. Send the records before the large one, then report it.
			i := slices.IndexFunc(pending, func(m kafka.Message) bool { return m.WriterData == tooLarge.Message.WriterData })
			if i > 0 {
				if err := p.write(ctx, w, pending[:i]); err != nil {
					return err
				}
			}
			return fmt.Errorf("%w: record id %s has %d bytes of value, more than the %d bytes of a batch",
				ErrRecordTooLarge, tooLarge.Message.Key, len(tooLarge.Message.Value), p.cfg.BatchBytes)
		}
		err = brief(err)
		if err == nil {
			return nil
		}
		if pending = unacked(pending); len(pending) == 0 {
			return nil
		}
		if !notAppended(err) || ctx.Err() != nil {
			return err
		}
		delay := policy.Next()
		p.log.Debug("the brokers refused a write before appending it; sending it again",
			"attempt", attempt, "unacknowledged", len(pending), "delay", delay, "err", err)
		if serr := retry.Sleep(ctx, delay); serr != nil {
			return fmt.Errorf("%w (last error: %w)", serr, err)
		}
	}
}

// notAppended reports whether err says that the brokers appended none of the failed records, so
// that sending them again cannot duplicate them: the broker refused the request before its append
// (no leader here, an unknown partition, too few in-sync replicas), or kafka-go never sent it (no
// leader or partition in its metadata, a failed dial). A timeout, a connection that broke after
// the request went out, and NotEnoughReplicasAfterAppend leave the fate unknown.
func notAppended(err error) bool {
	if werrs, ok := writeErrors(err); ok {
		return everyFailure(werrs, notAppended)
	}
	var kerr kafka.Error
	switch {
	case errors.As(err, &kerr):
		switch kerr {
		case kafka.UnknownTopicOrPartition, kafka.LeaderNotAvailable, kafka.NotLeaderForPartition,
			kafka.NotEnoughReplicas, kafka.BrokerNotAvailable, kafka.ReplicaNotAvailable:
			return true
		}
		return false
	case errors.Is(err, protocol.ErrNoLeader), errors.Is(err, protocol.ErrNoPartition):
		return true
	}
	return isUnreachable(err)
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

// next returns, for each partition written, the offset after the last message acknowledged there.
func (c *call) next() map[int]int64 {
	// By partition, 0 for none: a slice, as a map access per message costs more (on the stack
	// up to 16 partitions).
	var small [16]int64
	ends := small[:0]
	for i := range c.slots {
		if s := &c.slots[i]; s.acked.Load() {
			if s.partition >= len(ends) {
				ends = append(ends, make([]int64, s.partition+1-len(ends))...)
			}
			ends[s.partition] = max(ends[s.partition], s.offset+1)
		}
	}
	out := map[int]int64{}
	for partition, end := range ends {
		if end > 0 {
			out[partition] = end
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

// Close flushes what kafka-go still holds (batches of calls cut short by their deadline) within
// WriteTimeout and releases the connections. Publish fails with ErrClosed afterwards.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		done := make(chan error, 1)
		p.wmu.Lock()
		w, settled := p.w, p.settled
		p.wmu.Unlock()
		go func() {
			if settled != nil {
				<-settled
			}
			done <- w.Close()
		}()
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
		if !p.shared {
			p.transport.CloseIdleConnections()
		}
	})
	return p.closeErr
}
