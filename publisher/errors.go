package publisher

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// Sentinel errors that callers may branch on with errors.Is. The errors returned wrap one of them
// when it applies, and the underlying kafka-go or network error too.
var (
	// ErrAuthentication: the brokers rejected the SASL credentials or mechanism.
	ErrAuthentication = errors.New("kafka authentication failed")
	// ErrCertificateNotTrusted: the brokers' TLS certificate did not verify.
	ErrCertificateNotTrusted = errors.New("kafka broker TLS certificate is not trusted")
	// ErrBrokersUnreachable: no connection to any broker could be made.
	ErrBrokersUnreachable = errors.New("kafka brokers unreachable")
	// ErrTopicNotFound: the topic does not exist and is not to be created.
	ErrTopicNotFound = errors.New("kafka topic not found")
	// ErrRecordTooLarge: a record is larger than Config.BatchBytes or the broker's limit.
	ErrRecordTooLarge = errors.New("record too large for kafka")
	// ErrClosed: the Publisher was closed.
	ErrClosed = errors.New("publisher closed")
)

// explain wraps err with the sentinel and the hint that fit it, naming the brokers, the user or
// the CA file involved. Errors that fit none are returned as they are.
func (p *Publisher) explain(err error) error {
	if err == nil {
		return nil
	}
	var done explained
	if errors.As(err, &done) {
		return err
	}
	if e := p.hint(err); e != nil {
		return explained{e}
	}
	return err
}

// explained marks an error that explain already wrapped with its hint.
type explained struct{ error }

func (e explained) Unwrap() error { return e.error }

// hint returns err wrapped with its sentinel and hint, or nil when none fits.
func (p *Publisher) hint(err error) error {
	brokers := strings.Join(p.cfg.Brokers, ",")
	var (
		unknownCA  x509.UnknownAuthorityError
		unknownCAP *x509.UnknownAuthorityError
		hostname   x509.HostnameError
		hostnameP  *x509.HostnameError
		invalid    x509.CertificateInvalidError
		invalidP   *x509.CertificateInvalidError
		verify     *tls.CertificateVerificationError
		record     tls.RecordHeaderError
		tooLarge   kafka.MessageTooLargeError
	)
	switch {
	case errors.Is(err, ErrAuthentication), errors.Is(err, ErrCertificateNotTrusted),
		errors.Is(err, ErrBrokersUnreachable), errors.Is(err, ErrRecordTooLarge):
		return nil // already explained
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return fmt.Errorf("%w: brokers %s rejected SASL %s for user %q: check the user name and password: %w",
			ErrAuthentication, brokers, p.cfg.SASL.Mechanism, p.cfg.SASL.Username, err)
	case errors.Is(err, kafka.UnsupportedSASLMechanism), errors.Is(err, kafka.IllegalSASLState):
		return fmt.Errorf("%w: brokers %s do not accept SASL mechanism %s on this listener: %w",
			ErrAuthentication, brokers, p.cfg.SASL.Mechanism, err)
	case errors.As(err, &hostname), errors.As(err, &hostnameP):
		return fmt.Errorf("%w: the certificate of brokers %s is not valid for the name dialled: dial a name the certificate lists, or set the TLS server name to one: %w",
			ErrCertificateNotTrusted, brokers, err)
	case errors.As(err, &unknownCA), errors.As(err, &unknownCAP), errors.As(err, &invalid), errors.As(err, &invalidP), errors.As(err, &verify):
		return fmt.Errorf("%w: the certificate of brokers %s does not verify against %s: %w",
			ErrCertificateNotTrusted, brokers, p.trustSource(), err)
	case errors.As(err, &record):
		return fmt.Errorf("brokers %s did not answer TLS: is this listener plain TCP? (KAFKA_TLS): %w", brokers, err)
	case errors.As(err, &tooLarge), errors.Is(err, kafka.MessageSizeTooLarge):
		return fmt.Errorf("%w (limits: %d bytes per record here, and the topic's max.message.bytes on the broker): %w",
			ErrRecordTooLarge, p.cfg.BatchBytes, err)
	case isUnreachable(err):
		return fmt.Errorf("%w: tried %s: %w", ErrBrokersUnreachable, brokers, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("brokers %s closed the connection: check that TLS (%v) and SASL (%q) match the listener: %w",
			brokers, p.cfg.TLS.Enabled, p.cfg.SASL.Mechanism, err)
	}
	return nil
}

// trustSource names what the client trusts, for error messages.
func (p *Publisher) trustSource() string {
	if p.cfg.TLS.CAFile != "" {
		return "the CA file " + p.cfg.TLS.CAFile + " (KAFKA_TLS_CA_FILE): check that it holds the CA that signed the brokers' certificate"
	}
	return "the system's trusted CAs: set KAFKA_TLS_CA_FILE to the CA that signed the brokers' certificate"
}

// isUnreachable reports whether err is a failure to connect (refused, no route, DNS, dial
// timeout).
func isUnreachable(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.As(err, &dns):
		return true
	case errors.As(err, &op):
		return op.Op == "dial"
	}
	return false
}

// writeErrors finds kafka.WriteErrors in err's chain.
func writeErrors(err error) (kafka.WriteErrors, bool) {
	var werrs kafka.WriteErrors
	return werrs, errors.As(err, &werrs)
}

// everyFailure reports whether werrs holds at least one error and f holds for each.
func everyFailure(werrs kafka.WriteErrors, f func(error) bool) bool {
	n := 0
	for _, e := range werrs {
		if e == nil {
			continue
		}
		if !f(e) {
			return false
		}
		n++
	}
	return n > 0
}

// retriable reports whether a failed write may succeed when tried again: kafka's temporary
// errors (leader elections, a topic still being created), broker unavailability and network
// failures. Authentication, certificate, size and configuration errors are final.
func retriable(err error) bool {
	if err == nil {
		return false
	}
	if werrs, ok := writeErrors(err); ok {
		return everyFailure(werrs, retriable)
	}
	var (
		tooLarge kafka.MessageTooLargeError
		unknown  x509.UnknownAuthorityError
		unknownP *x509.UnknownAuthorityError
		verify   *tls.CertificateVerificationError
		hostname x509.HostnameError
		record   tls.RecordHeaderError
		kerr     kafka.Error
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrClosed):
		return false
	case errors.Is(err, kafka.SASLAuthenticationFailed), errors.Is(err, kafka.UnsupportedSASLMechanism),
		errors.Is(err, kafka.IllegalSASLState), errors.As(err, &tooLarge), errors.As(err, &unknown), errors.As(err, &unknownP),
		errors.As(err, &verify), errors.As(err, &hostname), errors.As(err, &record):
		return false
	case errors.As(err, &kerr):
		return kerr.Temporary() || kerr == kafka.BrokerNotAvailable
	case errors.Is(err, protocol.ErrNoLeader), errors.Is(err, protocol.ErrNoPartition):
		// kafka-go's own: its cached metadata has no leader for a partition, or not the
		// partition yet (an election, a broker that shut down, a topic still propagating).
		return true
	case isUnreachable(err), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, os.ErrDeadlineExceeded):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// probeTimeout bounds probeBrokers.
const probeTimeout = time.Second

// probeBrokers opens a TCP connection to each broker, concurrently, within probeTimeout: nil as
// soon as one answers, otherwise every dial error. A write to brokers that are down does not
// always fail with a dial error: kafka-go keeps the metadata it had, so it fails with "no
// leader" (cached from the broker's shutdown) or runs out of time. This tells those apart.
func (p *Publisher) probeBrokers(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	errs := make(chan error, len(p.cfg.Brokers))
	for _, addr := range p.cfg.Brokers {
		go func() {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				_ = c.Close()
			}
			errs <- err
		}()
	}
	var all []error
	for range p.cfg.Brokers {
		err := <-errs
		if err == nil {
			return nil
		}
		all = append(all, err)
	}
	return errors.Join(all...)
}
