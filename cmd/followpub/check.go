package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
)

// cmdCheck validates the configuration and reaches every dependency once, printing a line per
// check. It changes nothing: the state is not opened and the topic is not created.
func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(flag.NewFlagSet("check", flag.ContinueOnError), args, stderr); err != nil {
		return err
	}
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintf(stdout, "FAIL  configuration: %v\n", err)
		return err
	}
	tcs, err := cfg.tenantConfs()
	if err != nil {
		fmt.Fprintf(stdout, "FAIL  configuration: %v\n", err)
		return err
	}
	fmt.Fprintln(stdout, "ok    configuration")
	mask := newSecretMask(append(cfg.secrets(), secretsOf(tcs)...))
	redact := mask.replace
	log := newLogger(stderr, cfg.LogFormat, "error", mask)
	failed := false
	report := func(what string, err error) {
		if err != nil {
			failed = true
			fmt.Fprintf(stdout, "FAIL  %s: %s\n", what, redact(err.Error()))
			return
		}
		fmt.Fprintf(stdout, "ok    %s\n", what)
	}
	for i, tc := range tcs {
		// With a tenants file each line names its tenant; the brokers are checked once.
		prefix := ""
		if cfg.TenantsFile != "" {
			prefix = "tenant " + tc.ID + ": "
		}
		if err := checkTenant(ctx, cfg, tc, log, i == 0, prefix, report, stdout); err != nil {
			return err
		}
	}
	if failed {
		return errSilentFailure
	}
	return nil
}

// checkTenant gets a token for tc, reads one page and describes its topic (and, with brokers,
// says whether the brokers answered), reporting each.
func checkTenant(ctx context.Context, cfg *config, tc tenantConf, log *slog.Logger, brokers bool, prefix string,
	report func(string, error), stdout io.Writer) error {
	apiCfg := tc.API
	apiCfg.Logger = log
	apiCfg.MaxAttempts = 2 // a check reports, it does not wait out an outage
	api, err := wshoto.New(apiCfg)
	if err != nil {
		return configError("API configuration", err)
	}
	actx, cancel := context.WithTimeout(ctx, 2*cfg.APITimeout)
	_, err = api.Token(actx)
	cancel()
	report(prefix+"API token from "+tc.API.BaseURL, err)
	if err == nil {
		today := poller.StartOfDay(time.Now(), cfg.location)
		actx, cancel := context.WithTimeout(ctx, 2*cfg.APITimeout)
		page, err := api.ListPage(actx, today, today, 1)
		cancel()
		what := prefix + "API list page 1 of " + today.Format(poller.DateLayout)
		if err == nil {
			what += fmt.Sprintf(" (total %d, %d records on the page)", page.Total, len(page.Records))
		}
		report(what, err)
	}

	pubCfg := tc.Pub
	pubCfg.Logger = log
	pub, err := publisher.New(pubCfg)
	if err != nil {
		return configError("Kafka configuration", err)
	}
	defer func() { _ = pub.Close() }() // check publishes nothing
	kctx, cancel := context.WithTimeout(ctx, cfg.KafkaWriteTimeout)
	defer cancel()
	info, err := pub.Describe(kctx)
	if brokers || err != nil {
		report(prefix+"Kafka brokers "+cfg.KafkaBrokers, err)
	}
	if err == nil {
		topic := tc.Pub.Topic
		switch {
		case info.Exists:
			report(fmt.Sprintf("%stopic %s (%d partitions)", prefix, topic, info.Partitions), nil)
		default:
			report(prefix+"topic "+topic, pub.Check(kctx))
			if cfg.KafkaCreateTopic {
				fmt.Fprintf(stdout, "      topic %s does not exist yet; run creates it (%d partitions)\n", topic, cfg.KafkaTopicPartitions)
			}
		}
	}
	return nil
}
