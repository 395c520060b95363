// Package publisher writes follow-up records to Kafka with kafka-go: one message per record, keyed
// by the follow id, with the record's JSON as the value and the CloudEvents headers of package
// schema (docs/DESIGN.md §5). *Publisher implements poller.Publisher.
//
// What it guarantees:
//   - Every write waits for the full in-sync replica set (RequiredAcks: RequireAll) and has a
//     deadline (Config.WriteTimeout): a broker that stays down yields an error, never a hang.
//   - Keys are partitioned with murmur2, as the Java client and librdkafka do, so consumers in any
//     language can find a key's partition.
//   - Publish reports exactly which records Kafka acknowledged, and where (the offset after the
//     last one in each partition), and sends each batch once: kafka-go's own retries
//     (MaxAttempts) re-send a batch whose first attempt may have been appended, which kafka-go's
//     producer, without idempotence, would duplicate in the topic.
//   - ReadBack settles every write whose fate is unknown by reading the topic: see below.
//   - The topic is created before the first write when Config.CreateTopic is set, with the
//     configured partitions and replication; auto-creation by the broker is never relied on.
//   - Errors say what failed and where: authentication (ErrAuthentication), an untrusted TLS
//     certificate (ErrCertificateNotTrusted), unreachable brokers (ErrBrokersUnreachable), a
//     missing topic (ErrTopicNotFound), a record too large (ErrRecordTooLarge).
//
// # A write whose acknowledgement was lost
//
// kafka-go has neither an idempotent nor a transactional producer, so the broker cannot tell a
// re-sent batch from a new one. A write can fail in a way that leaves its fate unknown: the
// connection reset in the middle of the produce request (nothing appended) or after it (the
// broker appended the batch and its answer was lost), the request timed out, the process was
// killed. Publish then returns an error without sending anything again; first it waits for the
// batches kafka-go still holds to end (it closes that writer, which flushes, and takes a new
// one), so that nothing of the call lands later. The caller (the poller) then calls ReadBack
// with the tail it recorded: per partition, the offset below which every record was already
// accounted for. ReadBack reads from there to the end, recognises this publisher's records by
// their headers (ce_source = Config.Source, ce_id = the key, ce_time = the value's follow_time),
// and returns them; the caller commits them as published and sends again only the others.
//
// The replication window: a record the leader appended but the followers have not replicated
// yet lies above the high watermark, so no reader sees it, yet it is not lost: with acks=all the
// leader either replicates it to the in-sync set (then it becomes visible) or a lagging follower
// is dropped from the in-sync set after replica.lag.time.max.ms and the high watermark moves past
// it; only a leader that fails first can truncate it. Reading to the high watermark alone would
// miss it and the record would be sent a second time. So ReadBack asks each partition's leader
// for its log end in the current leader epoch (OffsetForLeaderEpoch, which kafka-go lacks and
// leaderepoch.go adds to its protocol table) and waits until the high watermark reaches it,
// starting over with a new leader (whose log end is what survived), for at most replicationWait;
// it fails rather than call a record missing that may still become visible.
//
// What it cannot settle, and counts in poller.ReadBack: records deleted by retention or
// DeleteRecords before they were read (Removed; logged with the partition and the offset range):
// a record of ours among them is sent again; a topic deleted and re-created since the tail was
// recorded (Rewound, when the new partition ends below the recorded offset; read from its start).
//
// The methods of *Publisher are safe for concurrent use.
package publisher
