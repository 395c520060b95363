package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/followpub/followpub/internal/kafkastate"
	"github.com/followpub/followpub/internal/state"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/schema"
)

// cmdState is `followpub state migrate`: copy the file store's state into STATE_TOPIC, so that a
// deployment moves to STATE_STORE=kafka without publishing anything again.
func cmdState(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("state", flag.ContinueOnError)
	force := fs.Bool("force", false, "replace a state STATE_TOPIC already holds for the tenant")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) != "migrate" {
		return usagef("state: want `state migrate [--force]`, got %q", fs.Args())
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	if cfg.TenantsFile != "" {
		// Each tenant has a file of its own (STATE_PATH.ID); moving them all is not built.
		return usagef("state migrate: moves the state of the one tenant default (FOLLOWPUB_STATE_PATH); with FOLLOWPUB_TENANTS_FILE=%s it is not built yet", cfg.TenantsFile)
	}
	file, err := state.Open(cfg.StatePath)
	if err != nil {
		return err
	}
	defer func() { _ = file.Close() }() // read only
	st, err := file.Load(ctx)
	if err != nil {
		return err
	}
	if !st.Exists {
		return fmt.Errorf("state %s holds no state to migrate (FOLLOWPUB_STATE_PATH)", cfg.StatePath)
	}
	log := newLogger(stderr, cfg.LogFormat, "warn", newSecretMask(cfg.secrets()))
	s := &service{cfg: cfg, log: log, metrics: newMetrics(cfg.PollInterval)}
	if err := s.openHA([]tenantConf{cfg.defaultTenant()}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 4*cfg.KafkaWriteTimeout)
	defer cancel()
	if err := s.checkHA(ctx); err != nil {
		return err
	}
	if members, err := s.ha.group.Load().Members(ctx); err != nil {
		return err
	} else if len(members) > 0 {
		return fmt.Errorf("group %s has %d members running: stop every instance with STATE_STORE=kafka before migrating (FOLLOWPUB_GROUP_ID)", cfg.GroupID, len(members))
	}
	sc := s.ha.stateCfg
	sc.Tenant, sc.Identity = schema.DefaultTenant, cfg.stateIdentity(cfg.defaultTenant())
	store, err := kafkastate.Open(ctx, sc)
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }() // every write was acknowledged
	old, err := store.Load(ctx)
	if err != nil {
		return err
	}
	if old.Exists && !*force {
		return usagef("state migrate: topic %s already holds a state of tenant %s (watermark %s, %d ids): --force replaces it (FOLLOWPUB_STATE_TOPIC)",
			cfg.StateTopic, sc.Tenant, msTimeRFC(old.Watermark), len(old.Seen))
	}
	add := make([]poller.Published, 0, len(st.Seen))
	for id, ft := range st.Seen {
		add = append(add, poller.Published{ID: id, FollowTime: ft})
	}
	slices.SortFunc(add, func(a, b poller.Published) int {
		return cmp.Or(cmp.Compare(a.FollowTime, b.FollowTime), cmp.Compare(a.ID, b.ID))
	})
	if err := store.Replace(ctx, st.Floor, st.Watermark); err != nil {
		return err
	}
	tail := st.Tail
	if err := store.Commit(ctx, poller.Change{Add: add, Floor: st.Floor, Watermark: st.Watermark, Tail: &tail}); err != nil {
		return err
	}
	got, err := store.Load(ctx)
	switch {
	case err != nil:
		return err
	case got.Floor != st.Floor || got.Watermark != st.Watermark || len(got.Seen) != len(st.Seen):
		return errors.New("state migrate: the state read back from the topic differs from the file's; run it again")
	}
	b, err := json.Marshal(map[string]any{
		"migrated": true, "tenant": sc.Tenant, "state_path": cfg.StatePath, "state_topic": cfg.StateTopic,
		"watermark": msTimeRFC(st.Watermark), "floor": msTimeRFC(st.Floor), "seen": len(st.Seen), "tail_topic": st.Tail.Topic,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(b))
	return nil
}

func msTimeRFC(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
