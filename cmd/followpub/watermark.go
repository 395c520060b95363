package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/followpub/followpub/internal/state"
	"github.com/followpub/followpub/poller"
)

func cmdWatermark(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("watermark", flag.ContinueOnError)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		return usagef("watermark needs a subcommand: show, set TIME or reset")
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	switch {
	case args[0] == "show" && len(args) == 1:
	case args[0] == "reset" && len(args) == 1:
	case args[0] == "set" && len(args) == 2:
		t, err := poller.ParseTimeOrDate(args[1], cfg.location)
		if err == nil {
			err = plausibleTime(t, time.Now())
		}
		if err != nil {
			return usagef("watermark set: %v", err)
		}
	default:
		return usagef("watermark: want show, set TIME or reset, got %q", args)
	}
	if cfg.StateStore == "kafka" {
		return watermarkKafka(ctx, cfg, args, stdout, stderr)
	}
	store, err := state.Open(cfg.StatePath)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing state %s: %w", cfg.StatePath, cerr)
		}
	}()
	log := newLogger(stderr, cfg.LogFormat, "warn", cfg.secrets())
	pc := cfg.pollerConfig()
	pc.Logger = log
	p, err := poller.New(pc, nil, nil, store)
	if err != nil {
		return err
	}
	switch args[0] {
	case "set":
		t, _ := poller.ParseTimeOrDate(args[1], cfg.location)
		if err := p.SetWatermark(ctx, t); err != nil {
			return err
		}
	case "reset":
		if err := p.Reset(ctx); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "state %s reset; the next run starts from FOLLOWPUB_START_FROM=%s\n", cfg.StatePath, cfg.StartFrom)
		return nil
	}
	st, err := p.Status(ctx)
	if err != nil {
		return err
	}
	out := struct {
		poller.Status
		StatePath string `json:"state_path"`
	}{st, cfg.StatePath}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(b))
	return nil
}
