package publisher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/listoffsets"

	"github.com/followpub/followpub/internal/retry"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/schema"
)

// replicationWait bounds how long ReadBack waits for records the leader appended to become
// visible (below the high watermark). With acks=all a follower that lags longer than the broker's
// replica.lag.time.max.ms (30 s by default) leaves the in-sync set and the high watermark moves on
// without it, so the wait ends within that unless the leader changes.
const replicationWait = 45 * time.Second

// fetchMaxBytes bounds one fetch response of the read-back.
const fetchMaxBytes = 16 << 20

// ReadBack reads each partition of the topic from the offset recorded in from to its end and
// returns the records of this publisher's source found there, with the new tail: it settles every
// write whose fate is unknown (a crash, a lost acknowledgement, a timeout), so that nothing is
// re-sent that is already in the topic. It first waits for this publisher's writes still in flight
// to end.
//
// The end of a partition is the leader's log end, not only the high watermark: a record the
// leader appended but the followers have not replicated yet is invisible to a reader, so ReadBack
// asks the leader for its log end (OffsetForLeaderEpoch) and waits until the high watermark
// reaches it (at most replicationWait, then it fails: nothing is settled as missing meanwhile).
//
// A record is this publisher's when its ce_source header is Config.Source and its value parses
// as a record with the id of its ce_id header and the follow_time of its ce_time header (the
// tenant's header, once there are tenants, will be checked here too). Records without our
// ce_source are another producer's (counted in Foreign); records with it that do not parse are
// counted in Unrecognised and logged, never taken as ours.
//
// When from is of another topic or empty (a new state, or one from before tails were recorded),
// nothing is read: the tail starts at the ends found now (Fresh). A partition missing from from
// (the topic grew) is read from its start. A partition whose end is below from (the topic was
// deleted and re-created) is read from its start and counted in Rewound; records deleted before
// they could be read (retention, DeleteRecords) are counted in Removed and logged with their
// range: their fate is unknown, so a record among them may be published again.
func (p *Publisher) ReadBack(ctx context.Context, from poller.Tail) (rb poller.ReadBack, err error) {
	start := time.Now()
	defer func() {
		if p.cfg.Metrics != nil {
			p.cfg.Metrics.ObserveReadBack(time.Since(start), err)
		}
	}()
	// Reaching the brokers gets WriteTimeout, as a write does; waiting out the replication
	// window and reading get replicationWait more.
	ctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout+replicationWait)
	defer cancel()
	reach, cancelReach := context.WithTimeout(ctx, p.cfg.WriteTimeout)
	defer cancelReach()
	if err := p.awaitSettled(reach); err != nil {
		return rb, err
	}
	if err := p.ensureTopicOnce(reach); err != nil {
		return rb, fmt.Errorf("reading topic %s back: %w", p.cfg.Topic, p.explain(err))
	}
	info, err := p.Describe(reach)
	if err != nil {
		return rb, err
	}
	if !info.Exists {
		return rb, fmt.Errorf("reading topic %s back: %w", p.cfg.Topic, ErrTopicNotFound)
	}
	parts := make([]int, info.Partitions)
	for i := range parts {
		parts[i] = i
	}
	ends, err := p.visibleEnds(ctx, parts)
	// A leader moving, or a topic just created or re-created, answers with temporary errors for
	// a moment: wait them out while the brokers may be reached.
	for policy := retry.New(50*time.Millisecond, time.Second); err != nil && retriable(err); {
		if retry.Sleep(reach, policy.Next()) != nil {
			break
		}
		ends, err = p.visibleEnds(ctx, parts)
	}
	if err != nil {
		return rb, fmt.Errorf("reading topic %s back: finding the end of each partition: %w", p.cfg.Topic, p.explain(err))
	}
	rb.Tail = poller.Tail{Topic: p.cfg.Topic, Next: make(map[int]int64, len(parts))}
	if from.Topic != p.cfg.Topic || len(from.Next) == 0 {
		rb.Fresh = true
		for _, part := range parts {
			rb.Tail.Next[part] = ends[part].end
		}
		if from.Topic != "" && from.Topic != p.cfg.Topic {
			p.log.Warn("the state's tail is of another topic: starting this topic's tail at its end",
				"tail_topic", from.Topic)
		}
		return rb, nil
	}
	for _, part := range parts {
		e := ends[part]
		start, known := from.Next[part]
		switch {
		case !known:
			start = e.first // a partition added since: read it all
		case e.end < start:
			rb.Rewound++
			p.log.Warn("the partition ends below the offset recorded for it: the topic was deleted and re-created, or truncated; reading it from its start",
				"partition", part, "recorded", start, "end", e.end, "start", e.first)
			start = e.first
		case e.first > start:
			rb.Removed += e.first - start
			p.log.Warn("records were deleted before they could be read back (retention or DeleteRecords): a record of ours among them cannot be recognised and may be published again",
				"partition", part, "from_offset", start, "to_offset", e.first-1, "records", e.first-start)
			start = e.first
		}
		if err := p.readPartition(ctx, part, start, e.end, &rb); err != nil {
			return rb, fmt.Errorf("reading partition %d of topic %s back from offset %d to %d: %w", part, p.cfg.Topic, start, e.end, p.explain(err))
		}
		rb.Tail.Next[part] = e.end
	}
	if rb.Unrecognised > 0 {
		p.log.Warn("records with this ce_source that are not followpub's records were read back and left alone",
			"records", rb.Unrecognised, "ce_source", p.cfg.Source)
	}
	return rb, nil
}

// partitionEnd is where a partition starts and where its records visible to a reader end.
type partitionEnd struct{ first, end int64 }

// visibleEnds returns, for each partition, its log start and an end offset below which every
// record the leader had appended when it was asked is visible. It waits until the high watermark
// reaches the leader's log end for the current leader epoch; a new leader starts over.
func (p *Publisher) visibleEnds(ctx context.Context, parts []int) (map[int]partitionEnd, error) {
	out := make(map[int]partitionEnd, len(parts))
	firsts, err := p.listOffsets(ctx, parts, -2)
	if err != nil {
		return nil, err
	}
	waitUntil := time.Now().Add(replicationWait)
	for _, part := range parts {
		policy := retry.New(20*time.Millisecond, 500*time.Millisecond)
		for {
			hw, err := p.listOffsets(ctx, []int{part}, -1)
			if err != nil {
				return nil, err
			}
			leo, err := p.logEnd(ctx, part, hw[part].epoch)
			if err != nil {
				return nil, err
			}
			if leo <= hw[part].offset {
				out[part] = partitionEnd{first: firsts[part].offset, end: hw[part].offset}
				break
			}
			if time.Now().After(waitUntil) {
				return nil, fmt.Errorf("partition %d: the leader holds records up to offset %d that are not replicated yet (high watermark %d) after %s; not settling them as missing",
					part, leo, hw[part].offset, replicationWait)
			}
			if err := retry.Sleep(ctx, policy.Next()); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

type offsetEpoch struct {
	offset int64
	epoch  int32
}

// listOffsets asks each partition's leader for the offset at timestamp ts (-1: the high
// watermark, -2: the log start) and the leader epoch.
func (p *Publisher) listOffsets(ctx context.Context, parts []int, ts int64) (map[int]offsetEpoch, error) {
	req := &listoffsets.Request{ReplicaID: -1, Topics: []listoffsets.RequestTopic{{Topic: p.cfg.Topic}}}
	for _, part := range parts {
		req.Topics[0].Partitions = append(req.Topics[0].Partitions,
			listoffsets.RequestPartition{Partition: int32(part), CurrentLeaderEpoch: -1, Timestamp: ts})
	}
	m, err := p.transport.RoundTrip(ctx, kafka.TCP(p.cfg.Brokers...), req)
	if err != nil {
		return nil, err
	}
	res, ok := m.(*listoffsets.Response)
	if !ok {
		return nil, fmt.Errorf("listing offsets: unexpected response %T", m)
	}
	out := make(map[int]offsetEpoch, len(parts))
	for _, t := range res.Topics {
		for _, rp := range t.Partitions {
			if rp.ErrorCode != 0 {
				return nil, fmt.Errorf("listing the offsets of partition %d: %w", rp.Partition, kafka.Error(rp.ErrorCode))
			}
			out[int(rp.Partition)] = offsetEpoch{offset: rp.Offset, epoch: rp.LeaderEpoch}
		}
	}
	for _, part := range parts {
		if _, ok := out[part]; !ok {
			return nil, fmt.Errorf("listing offsets: no answer for partition %d", part)
		}
	}
	return out, nil
}

// logEnd asks the leader of part for its log end offset in epoch (OffsetForLeaderEpoch): for the
// current leader epoch, the offset after the last record it appended, replicated or not.
func (p *Publisher) logEnd(ctx context.Context, part int, epoch int32) (int64, error) {
	req := &leaderEpochRequest{ReplicaID: -1, Topics: []leaderEpochRequestTopic{{
		Topic:      p.cfg.Topic,
		Partitions: []leaderEpochRequestPartition{{Partition: int32(part), CurrentLeaderEpoch: -1, LeaderEpoch: epoch}},
	}}}
	m, err := p.transport.RoundTrip(ctx, kafka.TCP(p.cfg.Brokers...), req)
	if err != nil {
		return 0, fmt.Errorf("asking the leader of partition %d for its log end: %w", part, err)
	}
	res, ok := m.(*leaderEpochResponse)
	if !ok || len(res.Topics) != 1 || len(res.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("asking the leader of partition %d for its log end: unexpected response %T", part, m)
	}
	rp := res.Topics[0].Partitions[0]
	if rp.ErrorCode != 0 {
		return 0, fmt.Errorf("asking the leader of partition %d for its log end: %w", part, kafka.Error(rp.ErrorCode))
	}
	return rp.EndOffset, nil
}

// readPartition reads part from start up to end and sorts each record into rb.
func (p *Publisher) readPartition(ctx context.Context, part int, start, end int64, rb *poller.ReadBack) error {
	for off, empty := start, 0; off < end; {
		res, err := p.client.Fetch(ctx, &kafka.FetchRequest{
			Topic: p.cfg.Topic, Partition: part, Offset: off,
			MinBytes: 1, MaxBytes: fetchMaxBytes, MaxWait: 100 * time.Millisecond,
		})
		if err != nil {
			return err
		}
		if res.Error != nil {
			return res.Error
		}
		n := 0
		for {
			r, err := res.Records.ReadRecord()
			if err != nil {
				break // io.EOF at the end of the response; a damaged batch ends it too, and is fetched again
			}
			if r.Offset < off {
				continue // a batch may start before the offset asked for
			}
			if r.Offset >= end {
				break
			}
			off = r.Offset + 1
			n++
			rb.Read++
			p.sort(part, r, rb)
		}
		if n > 0 {
			empty = 0
			continue
		}
		// Nothing below end came back: only control records (transaction markers, never ours) or
		// gaps of a compacted topic are left.
		if empty++; empty >= 3 {
			p.log.Warn("the read-back got no more records before the partition's end; taking the rest as not ours",
				"partition", part, "offset", off, "end", end)
			return nil
		}
	}
	return nil
}

// sort counts r as ours (rb.Found), another producer's (rb.Foreign) or unrecognised.
func (p *Publisher) sort(part int, r *kafka.Record, rb *poller.ReadBack) {
	var source, id, ceTime, tenant []byte
	for _, h := range r.Headers {
		switch h.Key {
		case schema.HeaderTenant:
			tenant = h.Value
		case schema.HeaderSource:
			source = h.Value
		case schema.HeaderID:
			id = h.Value
		case schema.HeaderTime:
			ceTime = h.Value
		}
	}
	// Another tenant's record is someone else's, though its source be ours. A record without
	// ce_tenant was written before tenants existed, by the one tenant there was then.
	if tenant == nil {
		tenant = []byte(schema.DefaultTenant)
	}
	if string(source) != p.cfg.Source || string(tenant) != p.cfg.Tenant {
		rb.Foreign++
		return
	}
	pub, err := ours(r, id, ceTime)
	if err != nil {
		rb.Unrecognised++
		p.log.Debug("a record with this ce_source is not one of followpub's records; left alone",
			"partition", part, "offset", r.Offset, "err", err)
		return
	}
	rb.Found = append(rb.Found, pub)
}

// ours checks that r is a followpub record: the ce_id header is its key and a decimal id, the
// value parses as a record of that id, and ce_time is its follow_time.
func ours(r *kafka.Record, id, ceTime []byte) (poller.Published, error) {
	n, err := strconv.ParseInt(string(id), 10, 64)
	if err != nil {
		return poller.Published{}, fmt.Errorf("ce_id %q is not an id", id)
	}
	var key []byte
	if r.Key != nil {
		if key, err = protocol.ReadAll(r.Key); err != nil {
			return poller.Published{}, err
		}
	}
	if string(key) != string(id) {
		return poller.Published{}, fmt.Errorf("key %q is not the ce_id %q", key, id)
	}
	if r.Value == nil {
		return poller.Published{}, errors.New("no value")
	}
	value, err := protocol.ReadAll(r.Value)
	if err != nil {
		return poller.Published{}, err
	}
	rec, err := schema.ParseRecord(value)
	if err != nil {
		return poller.Published{}, err
	}
	if rec.ID != n {
		return poller.Published{}, fmt.Errorf("the value's id %d is not the ce_id %d", rec.ID, n)
	}
	if ceTime != nil && !slices.Equal(schema.AppendTime(nil, rec.FollowTime), ceTime) {
		return poller.Published{}, fmt.Errorf("ce_time %q is not the value's follow_time %d", ceTime, rec.FollowTime)
	}
	return poller.Published{ID: rec.ID, FollowTime: rec.FollowTime}, nil
}
