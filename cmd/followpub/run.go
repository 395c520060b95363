package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	once := fs.Bool("once", false, "run exactly one complete cycle, then exit (0 when it completed)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("run takes no arguments, got %q", fs.Args())
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	hup, stopHangups := notifyHangups()
	defer stopHangups()
	tcs, err := cfg.tenantConfs()
	if err != nil {
		return err
	}
	logs, format, progress, endProgress := runOutput(stderr, *once, cfg.LogFormat)
	defer endProgress()
	mask := newSecretMask(append(cfg.secrets(), secretsOf(tcs)...))
	log := newLogger(logs, format, cfg.LogLevel, mask)
	logStart(log, cfg, *once)
	if cfg.TenantsFile != "" {
		log.Info("tenants file read", "tenants_file", cfg.TenantsFile, "tenants", len(tcs))
	}
	svc, err := openService(cfg, tcs, log, progress)
	if err != nil {
		return err
	}
	defer svc.close()
	svc.hup, svc.mask = hup, mask
	if cfg.HTTPAddr != "" {
		stop, err := svc.serveHTTP(ctx, cfg.HTTPAddr)
		if err != nil {
			return err
		}
		defer stop()
	}
	done := make(chan struct{})
	defer close(done)
	go enforceShutdownTimeout(ctx, done, cfg.ShutdownTimeout, stderr)

	if svc.ha != nil {
		err = svc.runGroup(ctx, *once)
		log.Info("followpub stopped")
		return err
	}
	err = svc.runTenants(ctx, *once)
	if !*once {
		log.Info("followpub stopped")
	}
	return err
}

// logStart writes the one start-up line: the version and the effective configuration, secrets
// masked.
func logStart(log *slog.Logger, cfg *config, once bool) {
	log.Info("followpub starting", append([]any{"version", version, "commit", commit, "once", once}, cfg.logAttrs()...)...)
}

// enforceShutdownTimeout exits with status 1 when a shutdown takes longer than timeout: the process
// must not hang on a broker that does not answer.
func enforceShutdownTimeout(ctx context.Context, done <-chan struct{}, timeout time.Duration, stderr io.Writer) {
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		fmt.Fprintf(stderr, "followpub: shutdown took longer than FOLLOWPUB_SHUTDOWN_TIMEOUT=%s; exiting\n", timeout)
		os.Exit(1)
	}
}
