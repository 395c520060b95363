package publisher

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/retry"
)

// TopicInfo describes the topic as the brokers see it.
type TopicInfo struct {
	// Name is the topic.
	Name string
	// Exists is false when the brokers do not know the topic.
	Exists bool
	// Partitions is its partition count (0 when it does not exist).
	Partitions int
	// Brokers are the addresses the cluster advertises.
	Brokers []string
}

// Describe asks the brokers about the topic. A missing topic is not an error (Exists is false);
// failing to reach or authenticate to the brokers is. It waits at most WriteTimeout.
func (p *Publisher) Describe(ctx context.Context) (TopicInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
	defer cancel()
	info := TopicInfo{Name: p.cfg.Topic}
	md, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{p.cfg.Topic}})
	if err != nil {
		return info, fmt.Errorf("reading metadata of topic %s from brokers %s: %w",
			p.cfg.Topic, strings.Join(p.cfg.Brokers, ","), p.explain(err))
	}
	for _, b := range md.Brokers {
		info.Brokers = append(info.Brokers, net.JoinHostPort(b.Host, strconv.Itoa(b.Port)))
	}
	for _, t := range md.Topics {
		if t.Name != p.cfg.Topic {
			continue
		}
		switch {
		case t.Error == nil:
			info.Exists = true
			info.Partitions = len(t.Partitions)
		case errors.Is(t.Error, kafka.UnknownTopicOrPartition):
		default:
			return info, fmt.Errorf("reading metadata of topic %s: %w", p.cfg.Topic, p.explain(t.Error))
		}
	}
	return info, nil
}

// EnsureTopic makes sure the topic exists. When it does, it is used as it is (its partitions and
// replication are not changed). When it does not, EnsureTopic creates it with Config.Partitions
// and Config.Replication if Config.CreateTopic is set, and otherwise returns an error wrapping
// ErrTopicNotFound. It waits at most WriteTimeout.
func (p *Publisher) EnsureTopic(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
	defer cancel()
	info, err := p.Describe(ctx)
	if err != nil {
		return err
	}
	if info.Exists {
		p.log.Debug("topic exists", "partitions", info.Partitions)
		return nil
	}
	if !p.cfg.CreateTopic {
		return fmt.Errorf("%w: topic %s does not exist on brokers %s and creating it is off (KAFKA_CREATE_TOPIC=false)",
			ErrTopicNotFound, p.cfg.Topic, strings.Join(p.cfg.Brokers, ","))
	}
	res, err := p.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{
			Topic:             p.cfg.Topic,
			NumPartitions:     p.cfg.Partitions,
			ReplicationFactor: p.cfg.Replication,
		}},
	})
	if err == nil {
		err = res.Errors[p.cfg.Topic]
	}
	switch {
	case err == nil:
		p.log.Info("topic created", "partitions", p.cfg.Partitions, "replication", p.cfg.Replication)
	case errors.Is(err, kafka.TopicAlreadyExists):
		// Created meanwhile by someone else: use it as it is.
		p.log.Debug("topic created concurrently by another client")
	default:
		return fmt.Errorf("creating topic %s (partitions %d, replication %d) on brokers %s: %w",
			p.cfg.Topic, p.cfg.Partitions, p.cfg.Replication, strings.Join(p.cfg.Brokers, ","), p.explain(err))
	}
	return p.awaitTopic(ctx)
}

// awaitTopic waits until the metadata shows the topic, so the first write does not race its
// creation.
func (p *Publisher) awaitTopic(ctx context.Context) error {
	for {
		info, err := p.Describe(ctx)
		if err == nil && info.Exists && info.Partitions > 0 {
			return nil
		}
		if err := retry.Sleep(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for topic %s to appear in the metadata: %w", p.cfg.Topic, err)
		}
	}
}

// ensureTopicOnce runs EnsureTopic until it succeeds once per Publisher, retrying temporary
// failures (brokers down or restarting) with backoff until ctx is done.
func (p *Publisher) ensureTopicOnce(ctx context.Context) error {
	p.topicMu.Lock()
	defer p.topicMu.Unlock()
	policy := retry.New(100*time.Millisecond, 2*time.Second)
	for attempt := 0; !p.topicReady; attempt++ {
		err := p.EnsureTopic(ctx)
		if err == nil {
			p.topicReady = true
			break
		}
		if !retriable(err) || ctx.Err() != nil {
			return err
		}
		delay := policy.Next()
		p.log.Debug("retrying topic check", "attempt", attempt+1, "delay", delay, "err", err)
		if serr := retry.Sleep(ctx, delay); serr != nil {
			return fmt.Errorf("%w (last error: %w)", serr, err)
		}
	}
	return nil
}

// Check reaches the brokers (connection, TLS, SASL) and the topic, for followpub check. It
// returns nil when the topic exists, or is missing but will be created (Config.CreateTopic);
// otherwise an error saying what failed. It waits at most WriteTimeout.
func (p *Publisher) Check(ctx context.Context) error {
	info, err := p.Describe(ctx)
	if err != nil {
		return err
	}
	if !info.Exists && !p.cfg.CreateTopic {
		return fmt.Errorf("%w: topic %s does not exist on brokers %s and creating it is off (KAFKA_CREATE_TOPIC=false)",
			ErrTopicNotFound, p.cfg.Topic, strings.Join(p.cfg.Brokers, ","))
	}
	return nil
}
