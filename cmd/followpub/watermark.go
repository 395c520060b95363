package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/followpub/followpub/internal/state"
	"github.com/followpub/followpub/poller"
)

func cmdWatermark(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("watermark", flag.ContinueOnError)
	only := fs.String("tenant", "", "the tenant (an id of FOLLOWPUB_TENANTS_FILE); required by set and reset when there is more than one; show prints every tenant without it")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		return usagef("watermark needs a subcommand: show, set TIME or reset")
	}
	// Flags may also come after the subcommand: watermark set 2024-02-07 --tenant acme.
	sub := flag.NewFlagSet("watermark "+args[0], flag.ContinueOnError)
	sub.StringVar(only, "tenant", *only, "the tenant")
	pos, rest := args[:1:1], args[1:]
	for len(rest) > 0 {
		if err := parseFlags(sub, rest, stderr); err != nil {
			return err
		}
		if rest = sub.Args(); len(rest) > 0 {
			pos, rest = append(pos, rest[0]), rest[1:]
		}
	}
	args = pos
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
	tcs, err := cfg.tenantConfs()
	if err != nil {
		return err
	}
	if tcs, err = pickTenants(tcs, *only, args[0]); err != nil {
		return err
	}
	if cfg.StateStore == "kafka" {
		return watermarkKafka(ctx, cfg, tcs, args, stdout, stderr)
	}
	for _, tc := range tcs {
		if err := watermarkFile(ctx, cfg, tc, args, stdout, stderr); err != nil {
			return err
		}
	}
	return nil
}

// pickTenants returns the tenants a watermark command acts on: the one --tenant names, or every
// tenant for show; set and reset need --tenant when there is more than one.
func pickTenants(tcs []tenantConf, only, op string) ([]tenantConf, error) {
	if only == "" {
		if op != "show" && len(tcs) > 1 {
			return nil, usagef("watermark %s: --tenant ID is required with %d tenants (FOLLOWPUB_TENANTS_FILE)", op, len(tcs))
		}
		return tcs, nil
	}
	var ids []string
	for _, tc := range tcs {
		if tc.ID == only {
			return []tenantConf{tc}, nil
		}
		ids = append(ids, tc.ID)
	}
	return nil, usagef("watermark: --tenant %s: no such tenant; the tenants are %v", only, ids)
}

// watermarkFile is `watermark show|set|reset` of one tenant with STATE_STORE=file.
func watermarkFile(ctx context.Context, cfg *config, tc tenantConf, args []string, stdout, stderr io.Writer) (err error) {
	path := cfg.statePath(tc.ID)
	var store poller.Store = noState{}
	if _, serr := os.Stat(path); args[0] == "set" || !errors.Is(serr, os.ErrNotExist) {
		file, err := state.Open(path)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := file.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("closing state %s: %w", path, cerr)
			}
		}()
		store = file
	}
	log := newLogger(stderr, cfg.LogFormat, "warn", newSecretMask(cfg.secrets()))
	pc := cfg.pollerConfig()
	pc.Logger, pc.StartFrom = log, tc.StartFrom
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
		did := "reset"
		if store == (noState{}) {
			did = "does not exist; nothing to reset"
		}
		fmt.Fprintf(stdout, "state %s of tenant %s %s; its next run starts from %s\n", path, tc.ID, did, startFromName(cfg, tc))
		return nil
	}
	st, err := p.Status(ctx)
	if err != nil {
		return err
	}
	out := struct {
		poller.Status
		Tenant    string `json:"tenant"`
		StatePath string `json:"state_path"`
	}{st, tc.ID, path}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(b))
	return nil
}

// noState is the state of a tenant whose state file does not exist: show and reset report it as
// empty rather than creating the file.
type noState struct{}

func (noState) Load(context.Context) (poller.State, error) { return poller.State{}, nil }
func (noState) Reset(context.Context) error                { return nil }
func (noState) Commit(context.Context, poller.Change) error {
	return errors.New("internal error: committing to a state file that does not exist")
}
func (noState) Replace(context.Context, int64, int64) error {
	return errors.New("internal error: replacing a state file that does not exist")
}

// startFromName says where tc's next run starts after a reset.
func startFromName(cfg *config, tc tenantConf) string {
	if cfg.TenantsFile == "" {
		return "FOLLOWPUB_START_FROM=" + tc.StartFrom
	}
	return "start_from " + tc.StartFrom
}
