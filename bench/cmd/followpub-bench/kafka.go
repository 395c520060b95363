package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/followpub/followpub/publisher"
)

// broker is the Kafka cluster the driver measures against, with an admin client (franz-go, an
// implementation independent of the kafka-go producer being measured).
type broker struct {
	addrs []string
	admin *kgo.Client
}

func newBroker(addrs []string) (*broker, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RequestTimeoutOverhead(30*time.Second))
	if err != nil {
		return nil, err
	}
	return &broker{addrs: addrs, admin: cl}, nil
}

func (b *broker) close() { b.admin.Close() }

// version asks the broker for its Apache Kafka version (best effort, from ApiVersions).
func (b *broker) version(ctx context.Context) string {
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "followpub-bench", "1"
	resp, err := req.RequestWith(ctx, b.admin)
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("ApiVersions: Produce v%d, Fetch v%d (broker log says the release)", maxVersion(resp, 0), maxVersion(resp, 1))
}

func maxVersion(resp *kmsg.ApiVersionsResponse, key int16) int16 {
	for _, k := range resp.ApiKeys {
		if k.ApiKey == key {
			return k.MaxVersion
		}
	}
	return -1
}

// topicName returns a fresh topic name for one measurement.
func topicName(what string) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("bench-%s-%d-%s", what, time.Now().Unix(), hex.EncodeToString(r[:]))
}

// createTopic creates topic with the given partitions, one replica, and configs, and waits until
// every partition has a leader.
func (b *broker) createTopic(ctx context.Context, topic string, partitions int32, configs map[string]string) error {
	return b.createTopics(ctx, []string{topic}, partitions, configs)
}

// createTopics creates topics, each with the given partitions, one replica, and configs, in one
// request, and waits until every partition of each has a leader.
func (b *broker) createTopics(ctx context.Context, topics []string, partitions int32, configs map[string]string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range topics {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = name, partitions, 1
		for k, v := range configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			t.Configs = append(t.Configs, c)
		}
		req.Topics = append(req.Topics, t)
	}
	req.TimeoutMillis = 60_000
	resp, err := req.RequestWith(ctx, b.admin)
	if err != nil {
		return fmt.Errorf("creating topics %v: %w", shortList(topics), err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("creating topic %s: %w", t.Topic, err)
		}
	}
	for _, name := range topics {
		for {
			if n, err := b.partitions(ctx, name); err == nil && n == int(partitions) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for topic %s: %w", name, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// shortList names the first topics of a long list, for an error.
func shortList(topics []string) string {
	if len(topics) <= 3 {
		return strings.Join(topics, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(topics[:3], ", "), len(topics)-3)
}

// partitions returns the number of partitions of topic that have a leader.
func (b *broker) partitions(ctx context.Context, topic string) (int, error) {
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, mt)
	resp, err := req.RequestWith(ctx, b.admin)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return 0, err
		}
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 && p.Leader >= 0 {
				n++
			}
		}
	}
	return n, nil
}

// deleteTopic deletes topic (best effort: it frees the broker's disk between measurements).
func (b *broker) deleteTopic(ctx context.Context, topic string) {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{topic}
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, dt)
	req.TimeoutMillis = 30_000
	_, _ = req.RequestWith(ctx, b.admin)
}

// count returns the number of records in topic (a fresh topic: the sum of the end offsets).
func (b *broker) count(ctx context.Context, topic string) (int64, error) {
	offs, err := b.endOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, o := range offs {
		n += o
	}
	return n, nil
}

func (b *broker) endOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	n, err := b.partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for p := range int32(n) {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = p, -1 // latest
		lt.Partitions = append(lt.Partitions, lp)
	}
	req.Topics = append(req.Topics, lt)
	resp, err := req.RequestWith(ctx, b.admin)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	return out, nil
}

// logBytes returns the size of topic's log segments on the broker, all partitions: the bytes on
// disk, after compression.
func (b *broker) logBytes(ctx context.Context, topic string) (int64, error) {
	req := kmsg.NewPtrDescribeLogDirsRequest()
	n, err := b.partitions(ctx, topic)
	if err != nil {
		return 0, err
	}
	dt := kmsg.NewDescribeLogDirsRequestTopic()
	dt.Topic = topic
	for p := range int32(n) {
		dt.Partitions = append(dt.Partitions, p)
	}
	req.Topics = append(req.Topics, dt)
	resp, err := req.RequestWith(ctx, b.admin)
	if err != nil {
		return 0, err
	}
	var size int64
	for _, d := range resp.Dirs {
		if err := kerr.ErrorForCode(d.ErrorCode); err != nil {
			return 0, err
		}
		for _, t := range d.Topics {
			for _, p := range t.Partitions {
				size += p.Size
			}
		}
	}
	return size, nil
}

// consume reads every record of topic, up to the end offsets of the moment of the call.
func (b *broker) consume(ctx context.Context, topic string) ([]*kgo.Record, error) {
	ends, err := b.endOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	want := int64(0)
	for _, o := range ends {
		want += o
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := make([]*kgo.Record, 0, want)
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, fmt.Errorf("consumed %d of %d records of %s: %w", len(out), want, topic, ctx.Err())
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) { ferr = errors.Join(ferr, fmt.Errorf("partition %d: %w", p, err)) })
		if ferr != nil {
			return out, ferr
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out, nil
}

// codecs maps KAFKA_COMPRESSION names to kafka-go codecs, as the publisher does.
var codecs = map[string]kafka.Compression{
	"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd,
}

// producerLimit writes msgs to topic with a plain kafka-go Writer configured as the publisher
// configures its own (murmur2, acks=all, the publisher's batch size, bytes and timeout, codec, its
// transport), in one WriteMessages call, and returns the time it took: the producer limit.
func producerLimit(ctx context.Context, brokers []string, topic, codec string, msgs []kafka.Message) (time.Duration, error) {
	tr, _, err := publisher.NewTransport(publisher.Config{Brokers: brokers, Topic: topic, Compression: codec})
	if err != nil {
		return 0, err
	}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    publisher.DefaultBatchSize,
		BatchBytes:   publisher.DefaultBatchBytes,
		BatchTimeout: publisher.DefaultBatchTimeout,
		Compression:  codecs[codec],
		Transport:    tr,
	}
	start := time.Now()
	err = w.WriteMessages(ctx, msgs...)
	took := time.Since(start)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("producer limit (%s): %w", codec, err)
	}
	return took, nil
}
