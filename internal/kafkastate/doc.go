// Package kafkastate is followpub's state store in Kafka: a poller.Store whose whole state of a
// tenant (floor, watermark, remembered ids, the output topic's tail) lives in a compacted topic,
// so that any instance can take a tenant over with nothing on its disk (docs/DESIGN.md §7).
//
// Layout: every record of a tenant is in the partition murmur2 gives the tenant id (PartitionOf),
// the partition whose owner in the consumer group owns the tenant (internal/ownership). The
// key tenant/meta holds the floor, the watermark, the tail and the list of chunks; the remembered
// ids are in chunks of at most ChunkIDs ids of one UTC day of follow_time, keyed
// tenant/ids/DAY/INDEX/SLOT, so no record grows with the window.
//
// Guarantees:
//   - Writes are acknowledged by every in-sync replica (acks=all) before a commit returns.
//   - A commit writes the chunks it changed into the slot the committed meta record does not
//     name, then the meta record: a crash at any instant leaves the previous meta record and every
//     chunk it names. Each chunk carries the commit that wrote it and a CRC-32C; the meta record
//     names that commit, so a chunk of an unfinished commit is never taken.
//   - Load reads the partition from its start to its end; with a PartitionReader, the tenants
//     loaded in one generation share one such read and each reads only the records written after
//     it, which gives the same state. A record that does not decode, or a meta record naming a
//     chunk the topic lacks, is ErrCorrupt naming the tenant and the offset, never "no state".
//   - With a Fence (internal/ownership), nothing is written unless the fence allows it, and each
//     write is given only until the time the fence returns.
//
// A Store is not safe for concurrent use; the poller serialises its calls.
package kafkastate
