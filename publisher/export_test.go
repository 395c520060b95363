package publisher

import (
	"testing"
	"time"
)

// WithMetadataTTL returns cfg with kafka-go's metadata refreshed every d instead of
// DefaultMetadataTTL, for tests that need a refresh to happen at a given moment.
func WithMetadataTTL(cfg Config, d time.Duration) Config {
	cfg.metadataTTL = d
	return cfg
}

// TopicMetadata is topicMetadata, for the external tests.
var TopicMetadata = topicMetadata

// NewTestPublisher returns a Publisher for cfg,
// closed when the test ends: the one constructor of the package's tests, inside and outside.
func NewTestPublisher(t testing.TB, cfg Config) *Publisher {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("publisher.New: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}
