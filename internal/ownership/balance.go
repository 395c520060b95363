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
// holds now and which tenants it polls (memberData): the tenants of every member weigh the
// partitions, and a partition goes only to a member that polls the most of its tenants, so that
// while the members' tenants files differ (a rollout) no tenant lands where it would not be polled.
type tenantBalancer struct{ g *Group }

func (b tenantBalancer) ProtocolName() string { return tenantProtocol }

func (b tenantBalancer) UserData() ([]byte, error) {
	return json.Marshal(memberData{Identity: b.g.cfg.Identity, Instance: b.g.cfg.Instance, Partitions: b.g.held(), Tenants: b.g.cfg.Tenants})
}

func (b tenantBalancer) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	topic := b.g.cfg.Topic
	var parts []int
	for _, p := range partitions {
		if p.Topic == topic {
			parts = append(parts, p.ID)
		}
	}
	ids := make([]string, 0, len(members))
	prev := map[string][]int{}
	polls := map[string][]string{} // nil for a member of a version that does not say
	all := slices.Clone(b.g.cfg.Tenants)
	for _, m := range members {
		ids = append(ids, m.ID)
		var d memberData
		if json.Unmarshal(m.UserData, &d) == nil {
			prev[m.ID], polls[m.ID] = d.Partitions, d.Tenants
			all = append(all, d.Tenants...)
		}
	}
	slices.Sort(all)
	all = slices.Compact(all)
	weight := tenantWeights(all, len(parts), b.g.cfg.PartitionOf)
	fits := fitting(ids, polls, len(parts), b.g.cfg.PartitionOf)
	out := kafka.GroupMemberAssignments{}
	for id, ps := range assignTenants(ids, prev, parts, weight, fits) {
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

// fitting returns whether member m fits partition p (of n): no member polls more of p's tenants. A member that does not say which tenants it polls (polls[m] nil) fits every
// partition, as every member did before members said.
func fitting(members []string, polls map[string][]string, n int, partitionOf func(string, int) int) func(m string, p int) bool {
	covers := map[string]map[int]int{}
	most := map[int]int{}
	for _, m := range members {
		if polls[m] == nil {
			continue
		}
		c := tenantWeights(polls[m], n, partitionOf)
		covers[m] = c
		for p, k := range c {
			most[p] = max(most[p], k)
		}
	}
	return func(m string, p int) bool {
		c, ok := covers[m]
		return !ok || c[p] >= most[p]
	}
}

// assignTenants gives every partition of parts to one of members that fits it (fits): first
// each member keeps the partitions it held (prev), heaviest first, while its tenants stay within
// the fair share (the total over the members, rounded up); then the rest go, heaviest first, each
// to the fitting member with the fewest tenants (then the fewest partitions, then the smallest
// id). Every member gets an entry, possibly empty.
func assignTenants(members []string, prev map[string][]int, parts []int, weight map[int]int, fits func(m string, p int) bool) map[string][]int {
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
			if exists[p] && !taken[p] && fits(m, p) && load[m]+weight[p] <= max(fair, weight[p]) && (weight[p] > 0 || len(out[m]) < (len(parts)+len(members)-1)/len(members)) {
				out[m] = append(out[m], p)
				load[m] += weight[p]
				taken[p] = true
			}
		}
	}
	rest := slices.DeleteFunc(slices.Clone(parts), func(p int) bool { return taken[p] })
	slices.SortFunc(rest, heavier)
	for _, p := range rest {
		best := ""
		for _, m := range members {
			if !fits(m, p) {
				continue
			}
			if best == "" || cmp.Or(cmp.Compare(load[m], load[best]), cmp.Compare(len(out[m]), len(out[best]))) < 0 {
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
