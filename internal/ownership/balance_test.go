package ownership

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/kafkastate"
)

// tenantIDs returns n tenant ids as an integrator might name them.
func tenantIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("t%02d", i+1)
	}
	return ids
}

// memberIDs returns n member ids of the shape the coordinator hands out.
func memberIDs(from, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("followpub-%08x", uint32((from+i)*2654435761))
	}
	return ids
}

// owners maps each tenant to its member under assignment a (member → partitions of 12).
func owners(tenants []string, a map[string][]int, parts int) map[string]string {
	byPart := map[int]string{}
	for m, ps := range a {
		for _, p := range ps {
			byPart[p] = m
		}
	}
	out := map[string]string{}
	for _, t := range tenants {
		out[t] = byPart[kafkastate.PartitionOf(t, parts)]
	}
	return out
}

// spread returns the fewest and most tenants a member polls.
func spread(tenants []string, a map[string][]int, parts int) (lo, hi int) {
	n := map[string]int{}
	for m := range a {
		n[m] = 0
	}
	for _, m := range owners(tenants, a, parts) {
		n[m]++
	}
	lo = len(tenants)
	for _, c := range n {
		lo, hi = min(lo, c), max(hi, c)
	}
	return lo, hi
}

func moved(a, b map[string]string) int {
	n := 0
	for t, m := range a {
		if b[t] != m {
			n++
		}
	}
	return n
}

// balance runs a balancer's AssignGroups over members holding prev, as the group leader does.
func balance(b kafka.GroupBalancer, tenants, members []string, prev map[string][]int, parts int) map[string][]int {
	g := &Group{cfg: Config{Topic: "state", Tenants: tenants, PartitionOf: kafkastate.PartitionOf}}
	if tb, ok := b.(tenantBalancer); ok {
		tb.g = g
		b = tb
	}
	var gm []kafka.GroupMember
	for _, m := range members {
		data, _ := json.Marshal(memberData{Partitions: prev[m]})
		gm = append(gm, kafka.GroupMember{ID: m, Topics: []string{"state"}, UserData: data})
	}
	var ps []kafka.Partition
	for i := range parts {
		ps = append(ps, kafka.Partition{Topic: "state", ID: i})
	}
	out := map[string][]int{}
	for m, topics := range b.AssignGroups(gm, ps) {
		out[m] = topics["state"]
	}
	for _, m := range members {
		if out[m] == nil {
			out[m] = []int{}
		}
	}
	return out
}

// TestTenantBalancerSpreadsAndSticks: over the 12 partitions of the state topic, for 12 and 300
// tenants on 3 instances, the tenant balancer's spread (fewest to most tenants per instance)
// against kafka-go's range balancer, and the tenants that move when a fourth instance joins and
// when one of three leaves. Every partition is assigned once.
func TestTenantBalancerSpreadsAndSticks(t *testing.T) {
	for _, c := range []struct{ parts, n int }{{12, 12}, {12, 300}, {60, 12}, {60, 300}} {
		parts, n := c.parts, c.n
		tenants := tenantIDs(n)
		three, four := memberIDs(0, 3), memberIDs(0, 4)
		two := slices.Delete(slices.Clone(three), 1, 2)
		for _, tc := range []struct {
			name string
			b    kafka.GroupBalancer
		}{{"range", kafka.RangeGroupBalancer{}}, {"tenants", tenantBalancer{}}} {
			a3 := balance(tc.b, tenants, three, nil, parts)
			lo, hi := spread(tenants, a3, parts)
			a4 := balance(tc.b, tenants, four, a3, parts)
			a2 := balance(tc.b, tenants, two, a3, parts)
			join, leave := moved(owners(tenants, a3, parts), owners(tenants, a4, parts)), moved(owners(tenants, a3, parts), owners(tenants, a2, parts))
			lo4, hi4 := spread(tenants, a4, parts)
			lo2, hi2 := spread(tenants, a2, parts)
			for _, a := range []map[string][]int{a3, a4, a2} {
				var all []int
				for _, ps := range a {
					all = append(all, ps...)
				}
				slices.Sort(all)
				if len(all) != parts || slices.Compact(all)[parts-1] != parts-1 {
					t.Fatalf("%s: the partitions are not each assigned once: %v", tc.name, a)
				}
			}
			// The fewest a leave can move: the leaver's tenants. A join: the newcomer's share.
			leaverTenants := 0
			for _, m := range owners(tenants, a3, parts) {
				if m == three[1] {
					leaverTenants++
				}
			}
			t.Logf("FIGURES balancer=%s tenants=%d partitions=%d spread_3=%d..%d spread_4=%d..%d spread_2=%d..%d moved_on_join=%d moved_on_leave=%d (leaver had %d)",
				tc.name, n, parts, lo, hi, lo4, hi4, lo2, hi2, join, leave, leaverTenants)
			if tc.name != "tenants" {
				continue
			}
			// A partition's tenants move together: spread and moves are bounded by the heaviest.
			heaviest := slices.Max(slices.Collect(maps.Values(tenantWeights(tenants, parts, kafkastate.PartitionOf))))
			if hi-lo > heaviest || hi4-lo4 > heaviest || hi2-lo2 > heaviest {
				t.Errorf("tenants: spread %d..%d over 3, %d..%d over 4, %d..%d over 2: more uneven than a partition of %d tenants", lo, hi, lo4, hi4, lo2, hi2, heaviest)
			}
			if leave > leaverTenants+heaviest {
				t.Errorf("tenants: %d tenants moved when a member left; it had %d", leave, leaverTenants)
			}
			if join > n/4+2*heaviest {
				t.Errorf("tenants: %d tenants moved when a fourth member joined, want about its share %d", join, n/4)
			}
		}
	}
}
