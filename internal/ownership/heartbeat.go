package ownership

import "github.com/segmentio/kafka-go/protocol"

// The Heartbeat API (key 12) with the response fields in the broker's order. kafka-go's own
// types read a v1+ response's error code as the throttle time (the throttle time comes first on
// the wire; kafka-go pull request 1371), so that kafka-go's Client.Heartbeat reports every
// refused heartbeat as accepted. These types replace kafka-go's in its protocol table (kafka-go's
// ConsumerGroup heartbeats with v0 over its own encoder and is unaffected); Fence sends them
// through the Transport. Nothing in followpub calls kafka-go's Client.Heartbeat.

func init() {
	protocol.Register(&heartbeatRequest{}, &heartbeatResponse{})
}

type heartbeatRequest struct {
	// A tagged field marks v4 as a flexible version.
	_ struct{} `kafka:"min=v4,max=v4,tag"`

	GroupID         string `kafka:"min=v0,max=v4"`
	GenerationID    int32  `kafka:"min=v0,max=v4"`
	MemberID        string `kafka:"min=v0,max=v4"`
	GroupInstanceID string `kafka:"min=v3,max=v4,nullable"`
}

func (r *heartbeatRequest) ApiKey() protocol.ApiKey { return protocol.Heartbeat }

type heartbeatResponse struct {
	_ struct{} `kafka:"min=v4,max=v4,tag"`

	ThrottleTimeMs int32 `kafka:"min=v1,max=v4"`
	ErrorCode      int16 `kafka:"min=v0,max=v4"`
}

func (r *heartbeatResponse) ApiKey() protocol.ApiKey { return protocol.Heartbeat }
