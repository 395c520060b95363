package kafkastate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/retry"
)

// SegmentAge is the segment.ms a created state topic gets: the cleaner compacts only rolled
// segments, so with the broker's default (7 days) every load would read a week of commits.
const SegmentAge = 10 * time.Minute

// EnsureTopic makes sure topic exists with cleanup.policy=compact and returns its partition
// count. A missing topic is created compacted, with segments of SegmentAge (segment.ms), partitions and
// replication (-1: the broker's default); an existing one is used as it is, unless its cleanup.policy is not exactly compact
// (delete, or compact,delete: retention would delete a state that was not written for a while),
// which is refused with ErrNotCompacted.
func EnsureTopic(ctx context.Context, client *kafka.Client, topic string, partitions, replication int, log *slog.Logger) (int, error) {
	n, err := partitionCount(ctx, client, topic)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
			Topic: topic, NumPartitions: partitions, ReplicationFactor: replication,
			ConfigEntries: []kafka.ConfigEntry{
				{ConfigName: "cleanup.policy", ConfigValue: "compact"},
				{ConfigName: "segment.ms", ConfigValue: strconv.FormatInt(SegmentAge.Milliseconds(), 10)},
			},
		}}})
		if err == nil {
			err = res.Errors[topic]
		}
		switch {
		case err == nil:
			log.Info("state topic created", "partitions", partitions, "cleanup_policy", "compact", "segment_ms", SegmentAge.Milliseconds())
		case errors.Is(err, kafka.TopicAlreadyExists):
		default:
			return 0, fmt.Errorf("creating the state topic %s (compacted, %d partitions): %w", topic, partitions, err)
		}
		for policy := retry.New(50*time.Millisecond, time.Second); n == 0; {
			if err := retry.Sleep(ctx, policy.Next()); err != nil {
				return 0, fmt.Errorf("waiting for the state topic %s to appear in the metadata: %w", topic, err)
			}
			if n, err = partitionCount(ctx, client, topic); err != nil {
				return 0, err
			}
		}
	}
	res, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"cleanup.policy"},
	}}})
	if err != nil {
		return 0, fmt.Errorf("reading the configuration of the state topic %s: %w", topic, err)
	}
	for _, r := range res.Resources {
		if r.Error != nil {
			return 0, fmt.Errorf("reading the configuration of the state topic %s: %w", topic, r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "cleanup.policy" && e.ConfigValue != "compact" {
				return 0, fmt.Errorf("%w: topic %s has cleanup.policy=%s, which would delete a state not written for a while; "+
					"set cleanup.policy=compact on it (kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact) "+
					"or name another topic in FOLLOWPUB_STATE_TOPIC", ErrNotCompacted, topic, e.ConfigValue, topic)
			}
		}
	}
	return n, nil
}

// partitionCount returns how many partitions topic has, 0 when it does not exist.
func partitionCount(ctx context.Context, client *kafka.Client, topic string) (int, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("reading the metadata of the state topic %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		switch {
		case t.Name != topic:
		case errors.Is(t.Error, kafka.UnknownTopicOrPartition), errors.Is(t.Error, kafka.LeaderNotAvailable):
			return 0, nil
		case t.Error != nil:
			return 0, fmt.Errorf("reading the metadata of the state topic %s: %w", topic, t.Error)
		default:
			for _, p := range t.Partitions {
				if p.Leader.Host == "" {
					return 0, nil // just created: not every partition has a leader yet
				}
			}
			return len(t.Partitions), nil
		}
	}
	return 0, nil
}
