package publisher

// Fault injection with franz-go's kfake, an in-process fake cluster: it lets a test fail chosen
// produce requests, which a real broker cannot be made to do on cue. kfake does not enforce a real
// broker's protocol versions, so these tests prove how Publish handles broker answers, not that
// publishing works: the tests against a real Apache Kafka in integration_test.go do that.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/schema"
)

const faultTopic = "followpub-fault"

// fakeCluster starts a one-broker kfake cluster holding faultTopic with the given partitions.
func fakeCluster(t *testing.T, partitions int32) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, faultTopic))
	if err != nil {
		t.Fatalf("kfake.NewCluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// onCluster returns cfg writing faultTopic on c.
func onCluster(c *kfake.Cluster, cfg Config) Config {
	cfg.Brokers, cfg.Topic = c.ListenAddrs(), faultTopic
	return cfg
}

// faultRecords returns n records with distinct ids from base.
func faultRecords(base int64, n int) []schema.Record {
	recs := make([]schema.Record, n)
	for i := range recs {
		id := base + int64(i)*7919
		ft := int64(1707292800000) + int64(i)*1000
		recs[i] = schema.Record{ID: id, FollowTime: ft, Raw: fmt.Appendf(nil, `{"id":%d,"follow_time":%d}`, id, ft)}
	}
	return recs
}

// kgoPartition is the partition the Java client's default partitioner picks for rec's key, as
// franz-go computes it (independently of kafka-go's balancer).
func kgoPartition(rec schema.Record, partitions int) int32 {
	return int32(kgo.StickyKeyPartitioner(nil).ForTopic(faultTopic).Partition(&kgo.Record{Key: rec.Key()}, partitions))
}

// topicKeys reads faultTopic from c from the start with franz-go and returns how often each key
// is there. The topic holds want records in all; it waits for them, then a little longer for any
// extra.
func topicKeys(t *testing.T, c *kfake.Cluster, want int) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(faultTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	keys := map[string]int{}
	n := 0
	deadline := time.Now().Add(20 * time.Second)
	settle := time.Time{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			keys[string(r.Key)]++
			n++
		})
		if n >= want && settle.IsZero() {
			settle = time.Now().Add(500 * time.Millisecond)
		}
		if !settle.IsZero() && time.Now().After(settle) {
			return keys
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %d records from %s, want %d", n, faultTopic, want)
		}
	}
}

// TestPublishPartialAcknowledgement: the broker rejects one partition's records and takes the
// others' within one Publish call. acked must be exactly the records on the other partitions (the
// poller commits those and no others), the error must say why the rest failed, and the topic must
// hold each acknowledged record once and none of the rejected ones.
func TestPublishPartialAcknowledgement(t *testing.T) {
	const partitions = 3
	const failing = int32(1)
	tests := []struct {
		name string
		err  *kerr.Error
		// want is the kafka-go error Publish's error must wrap.
		want         kafka.Error
		writeTimeout time.Duration
		// maxTook bounds the call: a final error is not retried, one refused before the append
		// until writeTimeout.
		minTook, maxTook time.Duration
		// temporary is whether the error says that sending again may succeed.
		temporary bool
	}{
		{"final error", kerr.InvalidRecord, kafka.InvalidRecord, 20 * time.Second, 0, 5 * time.Second, false},
		{"refused before the append, until the write timeout", kerr.NotLeaderForPartition, kafka.NotLeaderForPartition,
			3 * time.Second, 3 * time.Second, 6 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeCluster(t, partitions)
			rejected := c.Fault(kfake.Fault{
				Keys:       []kmsg.Key{kmsg.Produce},
				Topic:      faultTopic,
				Partitions: []int32{failing},
				Err:        tt.err,
				Count:      -1,
			})
			p := NewTestPublisher(t, onCluster(c, Config{WriteTimeout: tt.writeTimeout}))

			recs := faultRecords(1_000_000_007, 60)
			want := make([]bool, len(recs))
			nAcked := 0
			for i, r := range recs {
				want[i] = kgoPartition(r, partitions) != failing
				if want[i] {
					nAcked++
				}
			}
			if nAcked == 0 || nAcked == len(recs) {
				t.Fatalf("the records do not span the failing partition and the others (%d of %d elsewhere)", nAcked, len(recs))
			}

			start := time.Now()
			written, err := p.Publish(context.Background(), recs)
			acked := written.Acked
			took := time.Since(start)
			if err == nil {
				t.Fatalf("Publish succeeded although partition %d rejected its records (acked %v)", failing, acked)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Publish error does not wrap %v: %v", tt.want, err)
			}
			if got := isTemporary(err); got != tt.temporary {
				t.Errorf("Temporary() = %v, want %v: %v", got, tt.temporary, err)
			}
			if s := fmt.Sprintf("%d acknowledged", nAcked); !strings.Contains(err.Error(), s) {
				t.Errorf("Publish error does not say %q: %v", s, err)
			}
			if len(acked) != len(recs) {
				t.Fatalf("acked has %d entries for %d records", len(acked), len(recs))
			}
			for i := range recs {
				if acked[i] != want[i] {
					t.Errorf("acked[%d] (id %d, partition %d) = %v, want %v",
						i, recs[i].ID, kgoPartition(recs[i], partitions), acked[i], want[i])
				}
			}
			if took < tt.minTook || took > tt.maxTook {
				t.Errorf("Publish returned after %s, want between %s and %s", took, tt.minTook, tt.maxTook)
			}
			if rejected.Hits() == 0 {
				t.Error("the fault never answered a produce request")
			}

			got := topicKeys(t, c, nAcked)
			for i, r := range recs {
				k := strconv.FormatInt(r.ID, 10)
				switch {
				case want[i] && got[k] != 1:
					t.Errorf("acknowledged id %s is on the topic %d times, want once", k, got[k])
				case !want[i] && got[k] != 0:
					t.Errorf("rejected id %s is on the topic %d times", k, got[k])
				}
			}
		})
	}
}

// isTemporary reports whether err has Temporary() true at its top, as poller.Publisher says.
func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// TestPublishSendsEachBatchOnce: the first produce requests to one partition fail. A batch the
// broker refused before appending it (no leader, not the leader) cannot have landed, so Publish
// sends it again and succeeds, each record once. A batch whose fate is unknown (the broker timed
// out waiting for the replicas, or appended without enough of them) is never sent again, neither
// by kafka-go nor by Publish: Publish returns at once with a temporary error, the records of that
// partition unacknowledged. kfake appends such a batch before it answers with the error, as a
// broker may, so sending it blindly again would duplicate it: the caller reads the topic back,
// finds it, and sends only what is missing (here nothing).
func TestPublishSendsEachBatchOnce(t *testing.T) {
	const partitions = 3
	const failing = int32(0)
	tests := []struct {
		err      *kerr.Error
		failures int
		resent   bool // by Publish itself
	}{
		{kerr.LeaderNotAvailable, 3, true},
		{kerr.NotLeaderForPartition, 3, true},
		{kerr.RequestTimedOut, 1, false},
		{kerr.NotEnoughReplicasAfterAppend, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.err.Message, func(t *testing.T) {
			c := fakeCluster(t, partitions)
			injected := c.Fault(kfake.Fault{
				Keys:       []kmsg.Key{kmsg.Produce},
				Topic:      faultTopic,
				Partitions: []int32{failing},
				Err:        tt.err,
				Count:      tt.failures,
			})
			// Counts, without failing, the produce requests for the failing partition that got
			// past the injected fault.
			passed := c.Fault(kfake.Fault{
				Keys:       []kmsg.Key{kmsg.Produce},
				Topic:      faultTopic,
				Partitions: []int32{failing},
				Count:      -1,
				Observe:    true,
			})
			p := NewTestPublisher(t, onCluster(c, Config{WriteTimeout: 30 * time.Second}))

			recs := faultRecords(2_000_000_011, 60)
			var rest []schema.Record
			for _, r := range recs {
				if kgoPartition(r, partitions) == failing {
					rest = append(rest, r)
				}
			}
			if len(rest) == 0 || len(rest) == len(recs) {
				t.Fatalf("%d of %d records on partition %d: want some there and some elsewhere", len(rest), len(recs), failing)
			}

			start, err := p.ReadBack(context.Background(), poller.Tail{})
			if err != nil {
				t.Fatalf("ReadBack: %v", err)
			}
			written, err := p.Publish(context.Background(), recs)
			if got := injected.Hits(); got != tt.failures {
				t.Errorf("the injected error answered %d produce requests, want %d", got, tt.failures)
			}
			if tt.resent {
				if err != nil {
					t.Fatalf("Publish: %v", err)
				}
				if got := passed.Hits(); got != 1 {
					t.Errorf("%d produce requests for partition %d got past the fault, want 1", got, failing)
				}
			} else {
				if err == nil || !isTemporary(err) {
					t.Fatalf("Publish = %v, want a temporary error", err)
				}
				for i, a := range written.Acked {
					if want := kgoPartition(recs[i], partitions) != failing; a != want {
						t.Errorf("record %d (id %d) acknowledged %v, want %v", i, recs[i].ID, a, want)
					}
				}
				if got := passed.Hits(); got != 0 {
					t.Errorf("%d produce requests for partition %d were sent again, want none", got, failing)
				}
				// As the poller does: read back what landed, send only what did not.
				rb, err := p.ReadBack(context.Background(), start.Tail)
				if err != nil {
					t.Fatalf("ReadBack: %v", err)
				}
				found := map[int64]bool{}
				for _, f := range rb.Found {
					found[f.ID] = true
				}
				rest = slices.DeleteFunc(rest, func(r schema.Record) bool { return found[r.ID] })
				t.Logf("the read-back found %d records; %d of the failed partition's are sent again", len(rb.Found), len(rest))
				if len(rest) > 0 {
					if _, err := p.Publish(context.Background(), rest); err != nil {
						t.Fatalf("the caller's second Publish of the missing records: %v", err)
					}
				}
			}
			got := topicKeys(t, c, len(recs))
			for _, r := range recs {
				if k := strconv.FormatInt(r.ID, 10); got[k] != 1 {
					t.Errorf("id %s is on the topic %d times, want once", k, got[k])
				}
			}
		})
	}
}

// TestPublishWaitsOutNoLeader: for a while the cluster's metadata says partition 0 has no leader,
// as a broker's does during its controlled shutdown (kafka-go then caches that until its next
// refresh: this failed CI on Kafka 3.9). kafka-go sent nothing to that partition, so Publish
// sends again until a refresh shows the leader, and succeeds; it used to fail at once.
func TestPublishWaitsOutNoLeader(t *testing.T) {
	const partitions = 3
	const noLeaderFor = 600 * time.Millisecond
	c := fakeCluster(t, partitions)
	real := topicMetadata(t, c.ListenAddrs(), faultTopic)

	var mu sync.Mutex
	var until time.Time        // the metadata says "no leader" for partition 0 until then
	var noLeaderServed int     // metadata answers without the leader
	var firstProduce time.Time // of a produce request for partition 0
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		if time.Now().After(until) {
			return nil, nil, false
		}
		c.KeepControl()
		noLeaderServed++
		resp := *real
		resp.Version = req.GetVersion()
		resp.Topics = slices.Clone(real.Topics)
		for i := range resp.Topics {
			resp.Topics[i].Partitions = slices.Clone(real.Topics[i].Partitions)
			for j := range resp.Topics[i].Partitions {
				if p := &resp.Topics[i].Partitions[j]; p.Partition == 0 {
					p.Leader, p.ErrorCode = -1, kerr.LeaderNotAvailable.Code
				}
			}
		}
		return &resp, nil, true
	})
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, rt := range req.(*kmsg.ProduceRequest).Topics {
			for _, rp := range rt.Partitions {
				if rp.Partition == 0 && firstProduce.IsZero() {
					firstProduce = time.Now()
				}
			}
		}
		return nil, nil, false
	})

	mu.Lock()
	until = time.Now().Add(noLeaderFor)
	mu.Unlock()
	p := NewTestPublisher(t, onCluster(c, Config{WriteTimeout: 10 * time.Second, metadataTTL: 50 * time.Millisecond}))
	recs := faultRecords(3_000_000_019, 60)
	if _, err := p.Publish(context.Background(), recs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	mu.Lock()
	served, first, end := noLeaderServed, firstProduce, until
	mu.Unlock()
	if served == 0 {
		t.Fatal("no metadata answer said partition 0 has no leader: the test did not test anything")
	}
	if !first.After(end) {
		t.Fatalf("the first produce request for partition 0 came at %v, not after the metadata showed its leader again (%v)", first, end)
	}
	t.Logf("%d metadata answers without a leader; the first produce request for partition 0 came %s after they stopped",
		served, first.Sub(end).Round(time.Millisecond))
	got := topicKeys(t, c, len(recs))
	for _, r := range recs {
		if k := strconv.FormatInt(r.ID, 10); got[k] != 1 {
			t.Errorf("id %s is on the topic %d times, want once", k, got[k])
		}
	}
}

// topicMetadata returns the brokers' metadata for topic, as franz-go, a client independent of
// kafka-go, reads it (publisher_test uses it through TopicMetadata).
func topicMetadata(t *testing.T, brokers []string, topic string) *kmsg.MetadataResponse {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	return resp
}
