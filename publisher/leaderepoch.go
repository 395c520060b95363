package publisher

import "github.com/segmentio/kafka-go/protocol"

// OffsetForLeaderEpoch (API key 23), version 3, which kafka-go does not implement: for the
// current leader epoch of a partition, the leader answers with its log end offset, including the
// records not yet replicated to the followers. ReadBack uses it to see the replication window.
// The types are registered with kafka-go's protocol package (it has no entry for this API), so
// that the Transport negotiates the version and routes the request to the partition's leader.

func init() {
	protocol.Register(&leaderEpochRequest{}, &leaderEpochResponse{})
}

type leaderEpochRequest struct {
	ReplicaID int32                     `kafka:"min=v3,max=v3"`
	Topics    []leaderEpochRequestTopic `kafka:"min=v3,max=v3"`
}

type leaderEpochRequestTopic struct {
	Topic      string                        `kafka:"min=v3,max=v3"`
	Partitions []leaderEpochRequestPartition `kafka:"min=v3,max=v3"`
}

type leaderEpochRequestPartition struct {
	Partition          int32 `kafka:"min=v3,max=v3"`
	CurrentLeaderEpoch int32 `kafka:"min=v3,max=v3"`
	LeaderEpoch        int32 `kafka:"min=v3,max=v3"`
}

func (r *leaderEpochRequest) ApiKey() protocol.ApiKey { return protocol.OffsetForLeaderEpoch }

// Broker routes the request (one partition) to the partition's leader.
func (r *leaderEpochRequest) Broker(cluster protocol.Cluster) (protocol.Broker, error) {
	t, part := r.Topics[0].Topic, r.Topics[0].Partitions[0].Partition
	if p, ok := cluster.Topics[t].Partitions[part]; ok {
		return cluster.Brokers[p.Leader], nil
	}
	return protocol.Broker{ID: -1}, nil
}

type leaderEpochResponse struct {
	ThrottleTimeMs int32                      `kafka:"min=v3,max=v3"`
	Topics         []leaderEpochResponseTopic `kafka:"min=v3,max=v3"`
}

type leaderEpochResponseTopic struct {
	Topic      string                         `kafka:"min=v3,max=v3"`
	Partitions []leaderEpochResponsePartition `kafka:"min=v3,max=v3"`
}

type leaderEpochResponsePartition struct {
	ErrorCode   int16 `kafka:"min=v3,max=v3"`
	Partition   int32 `kafka:"min=v3,max=v3"`
	LeaderEpoch int32 `kafka:"min=v3,max=v3"`
	EndOffset   int64 `kafka:"min=v3,max=v3"`
}

func (r *leaderEpochResponse) ApiKey() protocol.ApiKey { return protocol.OffsetForLeaderEpoch }
