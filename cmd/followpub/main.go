package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/followpub/followpub/publisher"
)

// Stamped by the Makefile (-ldflags "-X main.version=… -X main.commit=…").
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	code := exitCode(err, os.Stderr)
	stopProfile()
	os.Exit(code)
}

// stopProfile ends a CPU profile before the process exits; a no-op unless built with the
// cpuprofile tag (cpuprofile.go), which the benchmark driver's -profile uses.
var stopProfile = func() {}

// exitCode maps an error to the exit status of docs/DESIGN.md §2 (0 success, 1 runtime failure,
// 2 bad usage or configuration), printing it.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "followpub:", err)
		return 2
	}
	if errors.Is(err, errSilentFailure) {
		return 1
	}
	fmt.Fprintln(stderr, "followpub:", err)
	return 1
}

// errSilentFailure is a failure already reported to the user (check's report, for example).
var errSilentFailure = errors.New("failed")

// command is one subcommand.
type command struct {
	name  string
	usage string
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "poll forever (--once: one cycle, then exit)", cmdRun},
		{"watermark", "show | set TIME | reset: inspect or move the state", cmdWatermark},
		{"status", "print the status of a running instance (--addr, default FOLLOWPUB_HTTP_ADDR; --json)", cmdStatus},
		{"state", "migrate: copy the file state (STATE_PATH) into STATE_TOPIC, for STATE_STORE=kafka", cmdState},
		{"check", "validate the configuration, get a token, read one page, reach Kafka and the topic", cmdCheck},
		{"sim", "serve a simulated WeShoto API with generated data", cmdSim},
		{"demo", "simulator + broker + poller + a live view of the events, no set-up", cmdDemo},
		{"tail", "consume the topic and print events", cmdTail},
		{"env", "print every environment variable with its default and meaning", cmdEnv},
		{"version", "print the version", cmdVersion},
	}
}

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// The one process-wide setting: kafka-go's lz4 and zstd writers become the publisher's
	// smaller-buffered ones, for every Kafka writer of every command.
	publisher.RegisterCodecs()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(stdout)
		if len(args) == 0 {
			return usagef("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	return usagef("unknown command %q (followpub help lists them)", args[0])
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "followpub: WeShoto CRM system follow-ups → Kafka events")
	fmt.Fprintln(w, "\nUsage: followpub COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nConfiguration comes from FOLLOWPUB_* environment variables: followpub env lists them.")
}

// parseFlags parses a subcommand's flags; a bad flag is a usage error, and -h returns
// flag.ErrHelp (after the flags were printed), which the caller returns so the command does not run.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%s: %v", fs.Name(), err)
	}
	return nil
}

func cmdEnv(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(flag.NewFlagSet("env", flag.ContinueOnError), args, stderr); err != nil {
		return err
	}
	return printEnv(stdout)
}

func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(flag.NewFlagSet("version", flag.ContinueOnError), args, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "followpub %s (commit %s)\n", version, commit)
	return nil
}
