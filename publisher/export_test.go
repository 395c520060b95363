package publisher

import "time"

// WithMetadataTTL returns cfg with kafka-go's metadata refreshed every d instead of
// DefaultMetadataTTL, for tests that need a refresh to happen at a given moment.
func WithMetadataTTL(cfg Config, d time.Duration) Config {
	cfg.metadataTTL = d
	return cfg
}

// TopicMetadata is topicMetadata, for the external tests.
var TopicMetadata = topicMetadata
