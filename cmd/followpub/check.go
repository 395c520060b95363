package main

import (
	"context"
	"flag"
	"fmt"
	"io"
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
	fmt.Fprintln(stdout, "ok    configuration")
	redact := redactor(cfg.secrets())
	log := newLogger(stderr, cfg.LogFormat, "error", cfg.secrets())
	failed := false
	report := func(what string, err error) {
		if err != nil {
			failed = true
			fmt.Fprintf(stdout, "FAIL  %s: %s\n", what, redact(err.Error()))
			return
		}
		fmt.Fprintf(stdout, "ok    %s\n", what)
	}

	apiCfg := cfg.apiConfig()
	apiCfg.Logger = log
	apiCfg.MaxAttempts = 2 // a check reports, it does not wait out an outage
	api, err := wshoto.New(apiCfg)
	if err != nil {
		return configError("API configuration", err)
	}
	actx, cancel := context.WithTimeout(ctx, 2*cfg.APITimeout)
	_, err = api.Token(actx)
	cancel()
	report("API token from "+cfg.APIBaseURL, err)
	if err == nil {
		today := poller.StartOfDay(time.Now(), cfg.location)
		actx, cancel := context.WithTimeout(ctx, 2*cfg.APITimeout)
		page, err := api.ListPage(actx, today, today, 1)
		cancel()
		what := "API list page 1 of " + today.Format(poller.DateLayout)
		if err == nil {
			what += fmt.Sprintf(" (total %d, %d records on the page)", page.Total, len(page.Records))
		}
		report(what, err)
	}

	pubCfg := cfg.publisherConfig()
	pubCfg.Logger = log
	pub, err := publisher.New(pubCfg)
	if err != nil {
		return configError("Kafka configuration", err)
	}
	defer func() { _ = pub.Close() }() // check publishes nothing
	kctx, cancel := context.WithTimeout(ctx, cfg.KafkaWriteTimeout)
	defer cancel()
	info, err := pub.Describe(kctx)
	report("Kafka brokers "+cfg.KafkaBrokers, err)
	if err == nil {
		switch {
		case info.Exists:
			report(fmt.Sprintf("topic %s (%d partitions)", cfg.KafkaTopic, info.Partitions), nil)
		default:
			report("topic "+cfg.KafkaTopic, pub.Check(kctx))
			if cfg.KafkaCreateTopic {
				fmt.Fprintf(stdout, "      topic %s does not exist yet; run creates it (%d partitions)\n", cfg.KafkaTopic, cfg.KafkaTopicPartitions)
			}
		}
	}
	if failed {
		return errSilentFailure
	}
	return nil
}
