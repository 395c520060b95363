package kafkastate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/kafkastate"
	"github.com/followpub/followpub/internal/kafkatest"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/poller/pollertest"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// newTopicName returns a state topic name no other test uses; Open creates the topic.
func newTopicName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "followpub-state-test-" + hex.EncodeToString(b[:])
}

func open(t *testing.T, cfg kafkastate.Config) *kafkastate.Store {
	t.Helper()
	s, err := kafkastate.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestStoreSuite(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	pollertest.StoreSuite(t, func(t *testing.T) func() (poller.Store, func()) {
		cfg := kafkastate.Config{Brokers: brokers, Topic: newTopicName(), Partitions: 3}
		return func() (poller.Store, func()) {
			s := open(t, cfg)
			return s, func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		}
	})
}

func TestTenantsShareATopicApart(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := newTopicName()
	ctx := context.Background()
	a := open(t, kafkastate.Config{Brokers: brokers, Topic: topic, Tenant: "a"})
	b := open(t, kafkastate.Config{Brokers: brokers, Topic: topic, Tenant: "b"})
	defer a.Close()
	defer b.Close()
	for _, s := range []*kafkastate.Store{a, b} {
		if _, err := s.Load(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Replace(ctx, 0, 10); err != nil {
		t.Fatal(err)
	}
	if err := b.Replace(ctx, 0, 20); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(ctx, poller.Change{Add: []poller.Published{{ID: 1, FollowTime: 5}}, Watermark: 10}); err != nil {
		t.Fatal(err)
	}
	if err := b.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := open(t, kafkastate.Config{Brokers: brokers, Topic: topic, Tenant: "a"}).Load(ctx)
	if err != nil || !st.Exists || st.Watermark != 10 || len(st.Seen) != 1 {
		t.Fatalf("tenant a after b's reset: %+v, %v", st, err)
	}
}

func TestNotCompactedTopicIsRefused(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, brokers, 1) // the broker's default: cleanup.policy=delete
	_, err := kafkastate.Open(context.Background(), kafkastate.Config{Brokers: brokers, Topic: topic})
	if !errors.Is(err, kafkastate.ErrNotCompacted) {
		t.Fatalf("Open on a topic with cleanup.policy=delete: %v, want ErrNotCompacted", err)
	}
	for _, want := range []string{topic, "cleanup.policy=delete", "FOLLOWPUB_STATE_TOPIC", "--add-config cleanup.policy=compact"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}
}

// produce writes one record to the tenant's partition of topic, as someone else would.
func produce(t *testing.T, brokers []string, topic string, part int, key string, value []byte) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond,
		Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return part })}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := w.WriteMessages(ctx, kafka.Message{Key: []byte(key), Value: value})
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("writing %s: %v", key, err)
		}
		time.Sleep(100 * time.Millisecond) // a topic just created may not have its leader yet
	}
}

// endOffset returns the offset after the last record of partition part.
func endOffset(t *testing.T, brokers []string, topic string, part int) int64 {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...)}
	res, err := c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(part)}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Topics[topic][0].LastOffset
}

func TestUndecodableRecordIsAnErrorNamingTenantAndOffset(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx := context.Background()
	for _, tc := range []struct{ name, key string }{
		{"meta", "default/meta"},
		{"chunk", ""}, // the chunk the meta record names
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := kafkastate.Config{Brokers: brokers, Topic: newTopicName(), Partitions: 2}
			s := open(t, cfg)
			defer s.Close()
			if _, err := s.Load(ctx); err != nil {
				t.Fatal(err)
			}
			day := int64(20000) * 24 * 3600 * 1000
			if err := s.Replace(ctx, day, day); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(ctx, poller.Change{Add: []poller.Published{{ID: 7, FollowTime: day + 5}}, Floor: day, Watermark: day + 5}); err != nil {
				t.Fatal(err)
			}
			key := tc.key
			if key == "" {
				key = "default/ids/" + time.UnixMilli(day).UTC().Format(time.DateOnly) + "/0/0" // chunk 0, first written to slot 0
			}
			offset := endOffset(t, brokers, cfg.Topic, s.Partition())
			produce(t, brokers, cfg.Topic, s.Partition(), key, []byte("not a state record"))
			_, err := open(t, cfg).Load(ctx)
			if !errors.Is(err, kafkastate.ErrCorrupt) {
				t.Fatalf("Load after a bad %s record: %v, want ErrCorrupt", tc.name, err)
			}
			for _, want := range []string{"tenant default", fmt.Sprintf("offset %d", offset), key, "START_FROM"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error %q does not say %q", err, want)
				}
			}
		})
	}
}

// TestUnfinishedCommitLeavesThePreviousState writes what a commit killed before its meta record
// leaves (a chunk in the slot the meta record does not name): the committed state loads as it was,
// and the next commit goes on from it.
func TestUnfinishedCommitLeavesThePreviousState(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx := context.Background()
	cfg := kafkastate.Config{Brokers: brokers, Topic: newTopicName(), Partitions: 1}
	s := open(t, cfg)
	if _, err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Replace(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, poller.Change{Add: []poller.Published{{ID: 1, FollowTime: 10}, {ID: 2, FollowTime: 20}}, Watermark: 20}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The chunk of day 0 is in slot 0; an unfinished commit wrote slot 1.
	produce(t, brokers, cfg.Topic, 0, "default/ids/1970-01-01/0/1", []byte("FPC1 half a chunk"))
	s = open(t, cfg)
	defer s.Close()
	st, err := s.Load(ctx)
	if err != nil || len(st.Seen) != 2 || st.Watermark != 20 {
		t.Fatalf("after an unfinished commit: %+v, %v; want the two ids committed before", st, err)
	}
	if err := s.Commit(ctx, poller.Change{Add: []poller.Published{{ID: 3, FollowTime: 30}}, Watermark: 30}); err != nil {
		t.Fatal(err)
	}
	st, err = open(t, cfg).Load(ctx)
	if err != nil || len(st.Seen) != 3 || st.Watermark != 30 {
		t.Fatalf("after the next commit: %+v, %v", st, err)
	}
}

// TestUnfinishedFirstCommitOfADay is the commit killed (or fenced) before its meta record when it
// was the first of its day: its chunk is in slot 0, which no meta record names, so the next load
// counts it as garbage; the next commit writes that day's chunk to slot 0 again and must not
// delete it with the garbage (found by followpub-bench -only tenants: the next load was ErrCorrupt,
// "it names the chunk …, which the topic does not hold").
func TestUnfinishedFirstCommitOfADay(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx := context.Background()
	cfg := kafkastate.Config{Brokers: brokers, Topic: newTopicName(), Partitions: 1}
	s := open(t, cfg)
	if _, err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Replace(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	produce(t, brokers, cfg.Topic, 0, "default/ids/1970-01-01/0/0", []byte("FPC1 a chunk no meta record names"))
	s = open(t, cfg)
	defer s.Close()
	if _, err := s.Load(ctx); err != nil {
		t.Fatalf("after an unfinished first commit: %v", err)
	}
	if err := s.Commit(ctx, poller.Change{Add: []poller.Published{{ID: 1, FollowTime: 10}}, Watermark: 10}); err != nil {
		t.Fatal(err)
	}
	st, err := open(t, cfg).Load(ctx)
	if err != nil || len(st.Seen) != 1 || st.Watermark != 10 {
		t.Fatalf("after the next commit: %+v, %v; want the id committed", st, err)
	}
}

func TestForeignStateIsRefused(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx := context.Background()
	cfg := kafkastate.Config{Brokers: brokers, Topic: newTopicName(), Identity: "first"}
	s := open(t, cfg)
	defer s.Close()
	if _, err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Replace(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	cfg.Identity = "second"
	_, err := open(t, cfg).Load(ctx)
	if !errors.Is(err, kafkastate.ErrForeign) {
		t.Fatalf("Load with another identity: %v, want ErrForeign", err)
	}
}

// TestMillionIDs commits a window of 1,000,000 remembered ids the way a backfill does (batches of
// poller.DefaultBatchSize, three days), then loads it in a new store, and prints the figures: a
// commit's latency, the bytes the state takes, the load's duration.
func TestMillionIDs(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a million ids")
	}
	brokers := kafkatest.Brokers(t)
	ctx := context.Background()
	cfg := kafkastate.Config{Brokers: brokers, Topic: newTopicName(), Partitions: 1}
	s := open(t, cfg)
	defer s.Close()
	if _, err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 1_000_000
	start := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).UnixMilli()
	if err := s.Replace(ctx, start, start); err != nil {
		t.Fatal(err)
	}
	span := int64(3 * 24 * time.Hour / time.Millisecond)
	var lat []time.Duration
	id := int64(1_700_000_000_000_000_000)
	for i := 0; i < n; i += poller.DefaultBatchSize {
		var add []poller.Published
		for j := i; j < min(n, i+poller.DefaultBatchSize); j++ {
			id += 1 + int64(j%977)*1000 // ids grow, unevenly
			add = append(add, poller.Published{ID: id, FollowTime: start + int64(j)*span/n})
		}
		began := time.Now()
		if err := s.Commit(ctx, poller.Change{Add: add, Floor: start, Watermark: add[len(add)-1].FollowTime}); err != nil {
			t.Fatalf("commit %d: %v", i/poller.DefaultBatchSize, err)
		}
		lat = append(lat, time.Since(began))
	}
	began := time.Now()
	st, err := open(t, cfg).Load(ctx)
	load := time.Since(began)
	if err != nil || len(st.Seen) != n {
		t.Fatalf("Load: %d ids, %v; want %d", len(st.Seen), err, n)
	}
	live, written := topicBytes(t, brokers, cfg.Topic)
	slices.Sort(lat)
	fmt.Fprintf(os.Stdout, "FIGURES: kafkastate ids=%d commits=%d batch=%d commit_p50_ms=%.1f commit_p99_ms=%.1f commit_max_ms=%.1f "+
		"live_bytes=%d bytes_written=%d load_ms=%d chunk_ids=%d\n",
		n, len(lat), poller.DefaultBatchSize, ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)-1]),
		live, written, load.Milliseconds(), kafkastate.ChunkIDs)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// topicBytes reads the whole topic and returns the bytes of the newest value of each key (what
// compaction keeps) and of every record written.
func topicBytes(t *testing.T, brokers []string, topic string) (live, written int64) {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxBytes: 16 << 20})
	defer r.Close()
	end := endOffset(t, brokers, topic, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	newest := map[string]int64{}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		size := int64(len(m.Key) + len(m.Value))
		written += size
		newest[string(m.Key)] = size
		if m.Value == nil {
			delete(newest, string(m.Key))
		}
		if m.Offset >= end-1 {
			break
		}
	}
	for _, b := range newest {
		live += b
	}
	return live, written
}
