// Command peer is the benthos core of Redpanda Connect (github.com/redpanda-data/benthos/v4: its
// pure and io components, MIT), built in a module of its own so that benthos stays out of
// followpub's go.mod. followpub-bench -only peers runs it beside followpub (docs/BENCHMARKS.md).
package main

import (
	"context"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"
)

func main() { service.RunCLI(context.Background()) }
