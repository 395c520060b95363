package ownership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/internal/retry"
)

// ErrShared means the group or the state topic is in use by another deployment.
var ErrShared = errors.New("the group is in use by another deployment")

// protocolName is the group protocol followpub's members agree on: a consumer of another kind
// joining the group (another protocol) is refused by the coordinator.
const protocolName = "followpub-range-v1"

// memberData is what each member tells the others when it joins (the group protocol's user data).
type memberData struct {
	Identity string `json:"identity,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Partitions are the state topic's partitions the member holds now (tenantBalancer).
	Partitions []int `json:"partitions,omitempty"`
}

// balancer is kafka-go's range assignment under followpub's protocol name, carrying memberData.
type balancer struct {
	kafka.RangeGroupBalancer
	data []byte
}

func (b balancer) ProtocolName() string      { return protocolName }
func (b balancer) UserData() ([]byte, error) { return b.data, nil }

// Member is one member of the group as the coordinator describes it.
type Member struct {
	// ID is the coordinator's member id.
	ID string
	// Instance and Identity are what the member said of itself (Config.Instance, Config.Identity).
	Instance string
	Identity string
	// Topics are the topics it subscribed to; Partitions those of the state topic it was given.
	Topics     []string
	Partitions []int
}

// groupAttempts bounds the attempts of a group request that fails with a retriable Kafka error,
// and groupRetryWait is the policy's first and longest wait between them.
const groupAttempts = 8

var groupRetryWait = [2]time.Duration{100 * time.Millisecond, 2 * time.Second}

// retryGroup runs f until it succeeds, fails with an error Kafka does not call retriable, ctx
// ends, or groupAttempts attempts failed, waiting internal/retry's policy in between: a fresh
// broker answers "Not Coordinator For Group" or "Coordinator Load In Progress" while it creates
// and loads __consumer_offsets. It returns f's last error.
func retryGroup(ctx context.Context, f func() error) error {
	policy := retry.New(groupRetryWait[0], groupRetryWait[1])
	for attempt := 1; ; attempt++ {
		err := f()
		var ke kafka.Error
		if err == nil || !errors.As(err, &ke) || !ke.Temporary() || attempt == groupAttempts {
			return err
		}
		if retry.Sleep(ctx, policy.Next()) != nil {
			return err
		}
	}
}

// Members describes the group's members now (none when the group is empty or does not exist).
// Retriable errors of the coordinator are retried, a few times (retryGroup).
func (g *Group) Members(ctx context.Context) ([]Member, error) {
	var res *kafka.DescribeGroupsResponse
	err := retryGroup(ctx, func() error {
		var err error
		if res, err = g.client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{g.cfg.GroupID}}); err != nil {
			return err
		}
		for _, gr := range res.Groups {
			if gr.Error != nil {
				return gr.Error
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("describing group %s: %w", g.cfg.GroupID, err)
	}
	var out []Member
	for _, gr := range res.Groups {
		for _, m := range gr.Members {
			var d memberData
			_ = json.Unmarshal(m.MemberMetadata.UserData, &d) // another protocol's data: no identity
			mem := Member{ID: m.MemberID, Instance: d.Instance, Identity: d.Identity, Topics: m.MemberMetadata.Topics}
			for _, t := range m.MemberAssignments.Topics {
				if t.Topic == g.cfg.Topic {
					mem.Partitions = append(mem.Partitions, t.Partitions...)
				}
			}
			out = append(out, mem)
		}
	}
	return out, nil
}

// CheckShared refuses to join a group whose members subscribe to another state topic or carry
// another identity (another deployment's API credentials or output topic): joining would
// rebalance that deployment and share its tenants. It fails with ErrShared naming both.
func (g *Group) CheckShared(ctx context.Context) error {
	members, err := g.Members(ctx)
	if err != nil {
		return err
	}
	for _, m := range members {
		switch {
		case len(m.Topics) == 0 && m.Identity == "":
			// Joining (a rebalance under way): the coordinator has no metadata of it yet.
		case !slices.Equal(m.Topics, []string{g.cfg.Topic}):
			return fmt.Errorf("%w: member %s (%s) of group %s uses the state topic(s) %v, not %s", ErrShared, m.ID, m.Instance, g.cfg.GroupID, m.Topics, g.cfg.Topic)
		case g.cfg.Identity != "" && !g.cfg.SameDeployment(g.cfg.Identity, m.Identity):
			return fmt.Errorf("%w: member %s (%s) of group %s has the identity %q, this instance %q (other API credentials or another output topic)",
				ErrShared, m.ID, m.Instance, g.cfg.GroupID, shorten(m.Identity), shorten(g.cfg.Identity))
		}
	}
	return nil
}

// shorten keeps an identity readable in an error: one of many tenants lists them all.
func shorten(identity string) string {
	if len(identity) <= 120 {
		return identity
	}
	return identity[:120] + "…"
}
