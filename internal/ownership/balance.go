package ownership

import (
	"cmp"
	"encoding/json"
	"slices"

	"github.com/segmentio/kafka-go"
)

// tenantProtocol is the group protocol of tenantBalancer. A member also offers the range
// protocol (protocolName), so that a group with members of an older version still forms.
const tenantProtocol = "followpub-tenants-v1"

// tenantBalancer assigns the state topic's partitions so that each member polls about as many
// tenants (not partitions: a partition holds as many tenants as murmur2 maps to it), and is
// sticky: a partition stays with the member that held it, up to that member's fair share, so that
// a member joining or leaving moves few tenants. Each member's user data says which partitions it
// holds now (memberData.Partitions). The leader's Config.Tenants weigh the partitions.
type tenantBalancer struct{ g *Group }

func (b tenantBalancer) ProtocolName() string { return tenantProtocol }

func (b tenantBalancer) UserData() ([]byte, error) {
	return json.Marshal(memberData{Identity: b.g.cfg.Identity, Instance: b.g.cfg.Instance, Partitions: b.g.held()})
}

func (b tenantBalancer) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	topic := b.g.cfg.Topic
	var parts []int
	for _, p := range partitions {
		if p.Topic == topic {
			parts = append(parts, p.ID)
		}
	}
	weight := tenantWeights(b.g.cfg.Tenants, len(parts), b.g.cfg.PartitionOf)
	ids := make([]string, 0, len(members))
	prev := map[string][]int{}
	for _, m := range members {
		ids = append(ids, m.ID)
		var d memberData
		if json.Unmarshal(m.UserData, &d) == nil {
			prev[m.ID] = d.Partitions
		}
	}
	out := kafka.GroupMemberAssignments{}
	for id, ps := range assignTenants(ids, prev, parts, weight) {
		out[id] = map[string][]int{topic: ps}
	}
	return out
}

// tenantWeights counts the tenants of each of n partitions.
func tenantWeights(tenants []string, n int, partitionOf func(string, int) int) map[int]int {
	w := map[int]int{}
	if n == 0 {
		return w
	}
	for _, t := range tenants {
		w[partitionOf(t, n)]++
	}
	return w
}

// assignTenants gives every partition of parts to one of members: first each member keeps the
// partitions it held (prev), heaviest first, while its tenants stay within the fair share (the
// total over the members, rounded up); then the rest go, heaviest first, each to the member with
// the fewest tenants (then the fewest partitions, then the smallest id). Every member gets an
// entry, possibly empty.
func assignTenants(members []string, prev map[string][]int, parts []int, weight map[int]int) map[string][]int {
	members = slices.Clone(members)
	slices.Sort(members)
	out := make(map[string][]int, len(members))
	if len(members) == 0 {
		return out
	}
	total := 0
	exists := map[int]bool{}
	for _, p := range parts {
		exists[p] = true
		total += weight[p]
	}
	fair := (total + len(members) - 1) / len(members)
	load := map[string]int{}
	taken := map[int]bool{}
	heavier := func(a, b int) int { return cmp.Or(cmp.Compare(weight[b], weight[a]), cmp.Compare(a, b)) }
	for _, m := range members {
		out[m] = []int{}
		held := slices.Clone(prev[m])
		slices.SortFunc(held, heavier)
		for _, p := range held {
			if exists[p] && !taken[p] && load[m]+weight[p] <= max(fair, weight[p]) && (weight[p] > 0 || len(out[m]) < (len(parts)+len(members)-1)/len(members)) {
				out[m] = append(out[m], p)
				load[m] += weight[p]
				taken[p] = true
			}
		}
	}
	rest := slices.DeleteFunc(slices.Clone(parts), func(p int) bool { return taken[p] })
	slices.SortFunc(rest, heavier)
	for _, p := range rest {
		best := members[0]
		for _, m := range members[1:] {
			if c := cmp.Or(cmp.Compare(load[m], load[best]), cmp.Compare(len(out[m]), len(out[best]))); c < 0 {
				best = m
			}
		}
		out[best] = append(out[best], p)
		load[best] += weight[p]
	}
	for _, m := range members {
		slices.Sort(out[m])
	}
	return out
}
