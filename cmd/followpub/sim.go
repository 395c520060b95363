package main

import (
	"context"
	"flag"
	"io"

	"github.com/followpub/followpub/internal/wshotosim"
)

// cmdSim serves the simulated WeShoto API until interrupted; flags shape its data and faults.
func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8090", "address to listen on (port 0 picks a free one)")
	var cfg wshotosim.Config
	cfg.RegisterFlags(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	srv, err := wshotosim.New(cfg)
	if err != nil {
		return usagef("sim: %v", err)
	}
	return srv.ListenAndServe(ctx, *addr, stdout)
}
