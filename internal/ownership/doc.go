// Package ownership shares a deployment's tenants among its instances through Kafka's consumer
// group protocol (kafka-go's ConsumerGroup), with no lock service and no election of our own
// (docs/DESIGN.md §7).
//
// The instances join one group subscribed to the state topic; each tenant belongs to the
// partition of that topic that holds its state (Config.PartitionOf), so the member the group
// assigns that partition owns the tenant, for one generation. A tenant's work runs in the
// generation (Generation.Start) with the generation's context: when the generation ends (a member
// joined or left, this member's heartbeat failed) the work is told to stop before this member
// joins the next one. Closing the group (Run's ctx ending) sends LeaveGroup, so the tenants move
// at once instead of after the session timeout.
//
// Self-fencing: Tenancy.Fence sends a heartbeat of its own for the generation and, when the
// coordinator accepts it, returns the time until which no other member can have been given the
// tenant (the send time plus the session timeout, less a margin). Writers call it before each
// write and bound the write by the time it returns, so that a process that was paused past its
// session (SIGSTOP, a frozen VM) writes nothing when it wakes.
//
// A Group is safe for concurrent use.
package ownership
