// Package publisher writes follow-up records to Kafka with kafka-go: one message per record, keyed
// by the follow id, with the record's JSON as the value and the CloudEvents headers of package
// schema (SPEC §5). *Publisher implements poller.Publisher.
//
// What it guarantees:
//   - Every write waits for the full in-sync replica set (RequiredAcks: RequireAll) and has a
//     deadline (Config.WriteTimeout): a broker that stays down yields an error, never a hang.
//   - Keys are partitioned with murmur2, as the Java client and librdkafka do, so consumers in any
//     language can find a key's partition.
//   - Publish reports exactly which records Kafka acknowledged; temporary errors are retried with
//     backoff within the deadline. Delivery is at-least-once: kafka-go has no idempotent producer,
//     so a record may be written twice (consumers deduplicate on the key or on ce_id).
//   - The topic is created before the first write when Config.CreateTopic is set, with the
//     configured partitions and replication; auto-creation by the broker is never relied on.
//   - Errors say what failed and where: authentication (ErrAuthentication), an untrusted TLS
//     certificate (ErrCertificateNotTrusted), unreachable brokers (ErrBrokersUnreachable), a
//     missing topic (ErrTopicNotFound), a record too large (ErrRecordTooLarge).
//
// The methods of *Publisher are safe for concurrent use.
package publisher
