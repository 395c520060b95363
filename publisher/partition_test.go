package publisher

import (
	"strconv"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// javaMurmur2 holds known answers of org.apache.kafka.common.utils.Utils.murmur2 (a Java int),
// from Kafka's own UtilsTest.testMurmur2 and, for decimal keys like ours, from Utils.murmur2 as
// quoted by other clients' test suites (Akka's Murmur2Spec).
var javaMurmur2 = map[string]int32{
	"21":                         -973932308,
	"foobar":                     -790332482,
	"a-little-bit-long-string":   -985981536,
	"a-little-bit-longer-string": -1486304829,
	"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
	"abc":   479470107,
	"1":     -1993445489,
	"12":    126087238,
	"123":   -267702483,
	"1234":  -1614185708,
	"12345": -1188365604,
}

// javaPartition is the Java client's partition for a key: Utils.toPositive(murmur2(key)) %
// numPartitions (BuiltInPartitioner.partitionForKey).
func javaPartition(hash int32, n int) int { return int(uint32(hash)&0x7fffffff) % n }

func balance(key []byte, n int) int {
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	return (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: key}, parts...)
}

func TestMurmur2MatchesJavaKnownAnswers(t *testing.T) {
	franz := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for key, hash := range javaMurmur2 {
		for _, n := range []int{1, 2, 3, 6, 7, 12, 100, 1000} {
			want := javaPartition(hash, n)
			if got := balance([]byte(key), n); got != want {
				t.Errorf("kafka-go: key %q, %d partitions: %d, Java: %d", key, n, got, want)
			}
			if got := franz.Partition(&kgo.Record{Key: []byte(key)}, n); got != want {
				t.Errorf("franz-go (the oracle of the broker test): key %q, %d partitions: %d, Java: %d", key, n, got, want)
			}
		}
	}
}

// TestMurmur2MatchesFranzGo checks many decimal ids against franz-go's implementation of the Java
// partitioner, written independently of kafka-go's.
func TestMurmur2MatchesFranzGo(t *testing.T) {
	franz := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	ids := []int64{0, 1, 9, 10, 99, 1 << 31, 1<<53 + 1, 1<<63 - 1, -1, -1 << 63}
	for i := int64(0); i < 20000; i++ {
		ids = append(ids, 1234567890+i*7919, i)
	}
	for _, id := range ids {
		key := strconv.AppendInt(nil, id, 10)
		for _, n := range []int{3, 7, 64} {
			if got, want := balance(key, n), franz.Partition(&kgo.Record{Key: key}, n); got != want {
				t.Fatalf("key %s, %d partitions: kafka-go %d, franz-go %d", key, n, got, want)
			}
		}
	}
}
