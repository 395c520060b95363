package poller

import "time"

// Metrics receives the poller's measurements. A nil Metrics in Config means none are recorded.
// Implementations must be safe for concurrent use.
type Metrics interface {
	// RecordsFetched counts records the source returned.
	RecordsFetched(n int)
	// RecordsPublished counts records Kafka acknowledged.
	RecordsPublished(n int)
	// DuplicatesSkipped counts records skipped because their id was already published.
	DuplicatesSkipped(n int)
	// LateDropped counts records skipped because their follow_time is below the floor.
	LateDropped(n int)
	// OutOfWindow counts records the source returned for days it was not asked for.
	OutOfWindow(n int)
	// CycleDone records one cycle's result ("ok", "failed" or "interrupted") and duration.
	CycleDone(result string, d time.Duration)
	// StateCommitted reports the watermark after a commit, and the commit's duration.
	StateCommitted(watermark time.Time, d time.Duration)
}

type noMetrics struct{}

func (noMetrics) RecordsFetched(int)                      {}
func (noMetrics) RecordsPublished(int)                    {}
func (noMetrics) DuplicatesSkipped(int)                   {}
func (noMetrics) LateDropped(int)                         {}
func (noMetrics) OutOfWindow(int)                         {}
func (noMetrics) CycleDone(string, time.Duration)         {}
func (noMetrics) StateCommitted(time.Time, time.Duration) {}
