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
	// CycleSucceeded reports the end of a cycle that completed, by Config.Clock.
	CycleSucceeded(end time.Time)
	// StateCommitted reports the watermark after a commit, and the commit's duration.
	StateCommitted(watermark time.Time, d time.Duration)
	// StateCommitFailed counts a state write the store refused (not one abandoned because ctx
	// ended).
	StateCommitFailed()
	// ReadBackDone reports one read-back of the topic: the records of ours it found that the state
	// did not have (committed as published), and how long it took.
	ReadBackDone(found int, d time.Duration)
	// AmbiguousWritesSettled counts failed writes whose fate a read-back settled.
	AmbiguousWritesSettled(n int)
	// ReadBackAnomalies counts what a read-back could not account for: records deleted before they
	// were read (retention), partitions whose end went back (the topic re-created), and records
	// with this ce_source that are not ours. Records among the first may be published again.
	ReadBackAnomalies(removed int64, rewound, unrecognised int)
}

type noMetrics struct{}

func (noMetrics) RecordsFetched(int)                      {}
func (noMetrics) RecordsPublished(int)                    {}
func (noMetrics) DuplicatesSkipped(int)                   {}
func (noMetrics) LateDropped(int)                         {}
func (noMetrics) OutOfWindow(int)                         {}
func (noMetrics) CycleDone(string, time.Duration)         {}
func (noMetrics) CycleSucceeded(time.Time)                {}
func (noMetrics) StateCommitted(time.Time, time.Duration) {}
func (noMetrics) StateCommitFailed()                      {}
func (noMetrics) ReadBackDone(int, time.Duration)         {}
func (noMetrics) AmbiguousWritesSettled(int)              {}
func (noMetrics) ReadBackAnomalies(int64, int, int)       {}
