package kafkastate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
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

func TestCreatedTopicIsCompactedWithSmallSegments(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := newTopicName()
	s := open(t, kafkastate.Config{Brokers: brokers, Topic: topic, Partitions: 2})
	defer s.Close()
	c := &kafka.Client{Addr: kafka.TCP(brokers...)}
	res, err := c.DescribeConfigs(context.Background(), &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"cleanup.policy", "segment.ms"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res.Resources {
		for _, e := range r.ConfigEntries {
			got[e.ConfigName] = e.ConfigValue
		}
	}
	want := map[string]string{"cleanup.policy": "compact", "segment.ms": fmt.Sprint(kafkastate.SegmentAge.Milliseconds())}
	if !maps.Equal(got, want) {
		t.Fatalf("the created state topic's configuration is %v, want %v", got, want)
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

// TestSharedReadLoadsAsAPlainRead loads several tenants of one partition through a
// PartitionReader, with commits of the tenants between the loads and the records an unfinished
// commit leaves (a chunk in the slot the meta record does not name, the first chunk of a day no
// meta record names), and compares each load with a plain Load of a new store.
func TestSharedReadLoadsAsAPlainRead(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx := context.Background()
	topic := newTopicName()
	cfgOf := func(tenant string, r *kafkastate.PartitionReader) kafkastate.Config {
		return kafkastate.Config{Brokers: brokers, Topic: topic, Partitions: 1, Tenant: tenant, Reader: r}
	}
	day := int64(24 * 3600 * 1000)
	commit := func(tenant string, ids ...int64) {
		t.Helper()
		s := open(t, cfgOf(tenant, nil))
		defer s.Close()
		if _, err := s.Load(ctx); err != nil {
			t.Fatal(err)
		}
		var add []poller.Published
		for _, id := range ids {
			add = append(add, poller.Published{ID: id, FollowTime: id})
		}
		if err := s.Commit(ctx, poller.Change{Add: add, Watermark: ids[len(ids)-1]}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tenant := range []string{"a", "b", "c", "d", "e", "f"} {
		s := open(t, cfgOf(tenant, nil))
		if _, err := s.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Replace(ctx, 0, 0); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	commit("a", 10, 20, day+5)
	commit("b", 30)
	commit("c", 40, 50)
	commit("e", 60)
	// c: an unfinished commit wrote slot 1 of day 0; d: an unfinished first commit of day 0.
	produce(t, brokers, topic, 0, "c/ids/1970-01-01/0/1", []byte("FPC1 half a chunk"))
	produce(t, brokers, topic, 0, "d/ids/1970-01-01/0/0", []byte("FPC1 a chunk no meta record names"))
	if err := open(t, cfgOf("e", nil)).Request(ctx, kafkastate.Command{Op: "reset", ID: "r1"}); err != nil {
		t.Fatal(err)
	}
	// f's state is deleted: its tombstones are in the snapshot.
	fs := open(t, cfgOf("f", nil))
	if _, err := fs.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fs.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	fs.Close()

	r := kafkastate.NewPartitionReader()
	defer r.Close()
	var sameWith func(*kafkastate.PartitionReader, string) *kafkastate.Store
	// same loads tenant both ways and compares; it may run in another goroutine, so it fails
	// the test with Errorf (and returns nil) rather than Fatalf.
	same := func(tenant string) *kafkastate.Store { return sameWith(r, tenant) }
	sameWith = func(r *kafkastate.PartitionReader, tenant string) *kafkastate.Store {
		shared, err := kafkastate.Open(ctx, cfgOf(tenant, r))
		if err != nil {
			t.Errorf("Open: %v", err)
			return nil
		}
		got, err := shared.Load(ctx)
		if err != nil {
			t.Errorf("tenant %s: the shared-read Load: %v", tenant, err)
			return nil
		}
		plain, err := kafkastate.Open(ctx, cfgOf(tenant, nil))
		if err != nil {
			t.Errorf("Open: %v", err)
			return nil
		}
		defer plain.Close()
		want, err := plain.Load(ctx)
		if err != nil {
			t.Errorf("tenant %s: the plain Load: %v", tenant, err)
			return nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("tenant %s: the shared-read Load gives %+v, a plain Load %+v", tenant, got, want)
		}
		if !reflect.DeepEqual(shared.Pending(), plain.Pending()) || shared.End() != plain.End() || !slices.Equal(shared.Garbage(), plain.Garbage()) {
			t.Errorf("tenant %s: the shared-read Load found request %+v, end %d, garbage %q; a plain Load %+v, %d, %q",
				tenant, shared.Pending(), shared.End(), shared.Garbage(), plain.Pending(), plain.End(), plain.Garbage())
		}
		return shared
	}
	a := same("a")
	if a == nil {
		t.FailNow()
	}
	defer a.Close()
	if held := r.Held(topic, 0); !slices.Equal(held, []string{"b", "c", "d", "e", "f"}) {
		t.Fatalf("after a's load the snapshot holds the records of %q; want those of the other tenants", held)
	}
	commit("b", 70, 80) // after the snapshot: b's load reads it from the snapshot's end on
	commit("a", 90)
	if b := same("b"); b != nil {
		b.Close()
	}
	c, d := same("c"), same("d")
	if c == nil || d == nil {
		t.FailNow()
	}
	if len(d.Garbage()) != 1 {
		t.Errorf("garbage of d %q: want the unfinished first commit's chunk", d.Garbage())
	}
	// The commits after a shared-read Load delete the garbage and keep the chunks they write.
	for _, s := range []*kafkastate.Store{c, d} {
		if err := s.Commit(ctx, poller.Change{Add: []poller.Published{{ID: 100, FollowTime: 100}}, Watermark: 100}); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	for _, tenant := range []string{"c", "d"} {
		st, err := open(t, cfgOf(tenant, nil)).Load(ctx)
		if err != nil || !st.Exists || st.Seen[100] != 100 {
			t.Errorf("tenant %s after a commit following its shared-read load: %+v, %v", tenant, st, err)
		}
	}
	// e (a pending request) and f (deleted) load at once, and a, taken already, again.
	done := make(chan struct{})
	for _, tenant := range []string{"e", "f", "a"} {
		go func() {
			defer func() { done <- struct{}{} }()
			if s := same(tenant); s != nil {
				s.Close()
			}
		}()
	}
	for range 3 {
		<-done
	}
	if held := r.Held(topic, 0); len(held) != 0 {
		t.Errorf("after every tenant's load the snapshot still holds the records of %q", held)
	}
	// A new generation: every tenant loads at once, one of them reads, the others wait for it.
	r2 := kafkastate.NewPartitionReader()
	defer r2.Close()
	tenants := []string{"a", "b", "c", "d", "e", "f"}
	for _, tenant := range tenants {
		go func() {
			defer func() { done <- struct{}{} }()
			if s := sameWith(r2, tenant); s != nil {
				s.Close()
			}
		}()
	}
	for range tenants {
		<-done
	}
}
