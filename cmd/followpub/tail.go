package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
)

// tailOptions say where tail starts and when it stops.
type tailOptions struct {
	from  string        // "beginning", "end", an offset, or a time
	json  bool          // JSON lines instead of text
	max   int           // stop after this many events; 0 = never
	idle  time.Duration // stop after this long without an event; 0 = never
	print func(w io.Writer, m kafka.Message)
	// started, when set, is called once every partition has its start offset: an event published
	// after that is printed.
	started func(partitions int)
}

func cmdTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	var o tailOptions
	fs.StringVar(&o.from, "from", "end", "where to start in each partition: beginning, end, an offset, or a time (RFC 3339 or yyyy-MM-dd)")
	fs.BoolVar(&o.json, "json", false, "print JSON lines")
	fs.IntVar(&o.max, "max", 0, "stop after this many events (0 = never)")
	fs.DurationVar(&o.idle, "idle", 0, "stop after this long without an event (0 = never)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	if _, err := parseFrom(o.from, cfg); err != nil {
		return err
	}
	o.print = printText
	if o.json {
		o.print = printJSON
	}
	o.started = func(partitions int) {
		fmt.Fprintf(stderr, "followpub tail: reading %d partitions of %s from %s\n", partitions, cfg.KafkaTopic, o.from)
	}
	n, err := tailTopic(ctx, cfg, o, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "followpub tail: %d events\n", n)
	return nil
}

// startOffset is where to start reading a partition: an offset (kafka.FirstOffset and
// kafka.LastOffset included) or, when at is set, the first offset at or after that time.
type startOffset struct {
	offset int64
	at     time.Time
}

func parseFrom(s string, cfg *config) (startOffset, error) {
	switch s {
	case "beginning":
		return startOffset{offset: kafka.FirstOffset}, nil
	case "end":
		return startOffset{offset: kafka.LastOffset}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return startOffset{offset: n}, nil
	}
	t, err := poller.ParseTimeOrDate(s, cfg.location)
	if err != nil {
		return startOffset{}, usagef("tail --from=%q: want beginning, end, an offset or a time", s)
	}
	return startOffset{at: t}, nil
}

// tailTopic reads every partition of the topic and prints each event until ctx is done or the
// options say stop. It returns the number of events printed.
func tailTopic(ctx context.Context, cfg *config, o tailOptions, w io.Writer) (int, error) {
	_, dialer, err := publisher.NewTransport(cfg.publisherConfig())
	if err != nil {
		return 0, configError("Kafka configuration", err)
	}
	start, _ := parseFrom(o.from, cfg)
	partitions, err := lookupPartitions(ctx, dialer, cfg)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan kafka.Message)
	errc := make(chan error, len(partitions))
	var wg sync.WaitGroup
	// On every return, also when positioning a later partition fails: stop the readers started,
	// then wait for them.
	defer wg.Wait()
	defer cancel()
	for _, p := range partitions {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: cfg.brokers, Topic: cfg.KafkaTopic, Partition: p.ID, Dialer: dialer,
			MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 200 * time.Millisecond,
		})
		switch {
		case !start.at.IsZero():
			err = r.SetOffsetAt(ctx, start.at)
		case start.offset == kafka.LastOffset:
			// The end when tail started, not when the reader first connects: an event published
			// after the start is printed.
			var end int64
			if end, err = lastOffset(ctx, dialer, cfg, p.ID); err == nil {
				err = r.SetOffset(end)
			}
		default:
			err = r.SetOffset(start.offset)
		}
		if err != nil {
			_ = r.Close()
			return 0, fmt.Errorf("positioning partition %d of %s: %w", p.ID, cfg.KafkaTopic, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { _ = r.Close() }() // a reader: nothing to flush
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("reading partition %d of %s: %w", p.ID, cfg.KafkaTopic, err)
					}
					return
				}
				select {
				case msgs <- m:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	if o.started != nil {
		o.started(len(partitions))
	}

	n := 0
	var idle <-chan time.Time
	for {
		if o.idle > 0 {
			idle = time.After(o.idle)
		}
		select {
		case m := <-msgs:
			o.print(w, m)
			n++
			if o.max > 0 && n >= o.max {
				return n, nil
			}
		case err := <-errc:
			return n, err
		case <-idle:
			return n, nil
		case <-ctx.Done():
			return n, nil
		}
	}
}

func lookupPartitions(ctx context.Context, dialer *kafka.Dialer, cfg *config) ([]kafka.Partition, error) {
	lctx, cancel := context.WithTimeout(ctx, cfg.KafkaWriteTimeout)
	defer cancel()
	var errs []error
	for _, b := range cfg.brokers {
		ps, err := dialer.LookupPartitions(lctx, "tcp", b, cfg.KafkaTopic)
		if err == nil && len(ps) > 0 {
			return ps, nil
		}
		if err == nil {
			err = fmt.Errorf("topic %s has no partitions", cfg.KafkaTopic)
		}
		errs = append(errs, fmt.Errorf("%s: %w", b, err))
	}
	return nil, fmt.Errorf("looking up the partitions of %s: %w", cfg.KafkaTopic, errors.Join(errs...))
}

// lastOffset returns the offset the next message of the partition will get.
func lastOffset(ctx context.Context, dialer *kafka.Dialer, cfg *config, partition int) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, cfg.KafkaWriteTimeout)
	defer cancel()
	var errs []error
	for _, b := range cfg.brokers {
		conn, err := dialer.DialLeader(lctx, "tcp", b, cfg.KafkaTopic, partition)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b, err))
			continue
		}
		deadline, _ := lctx.Deadline()
		_ = conn.SetDeadline(deadline)
		end, err := conn.ReadLastOffset()
		_ = conn.Close()
		if err != nil {
			return 0, fmt.Errorf("reading the end of partition %d of %s: %w", partition, cfg.KafkaTopic, err)
		}
		return end, nil
	}
	return 0, fmt.Errorf("reading the end of partition %d of %s: %w", partition, cfg.KafkaTopic, errors.Join(errs...))
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func printText(w io.Writer, m kafka.Message) {
	fmt.Fprintf(w, "key=%s partition=%d offset=%d ce_time=%s value=%s\n",
		m.Key, m.Partition, m.Offset, header(m, "ce_time"), m.Value)
}

func printJSON(w io.Writer, m kafka.Message) {
	headers := make(map[string]string, len(m.Headers))
	for _, h := range m.Headers {
		headers[h.Key] = string(h.Value)
	}
	value := json.RawMessage(m.Value)
	if !json.Valid(m.Value) {
		value, _ = json.Marshal(string(m.Value))
	}
	// The value is printed as it is in Kafka: no HTML escaping of <, > and &.
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		Key       string            `json:"key"`
		Partition int               `json:"partition"`
		Offset    int64             `json:"offset"`
		Timestamp time.Time         `json:"timestamp"`
		Headers   map[string]string `json:"headers"`
		Value     json.RawMessage   `json:"value"`
	}{string(m.Key), m.Partition, m.Offset, m.Time.UTC(), headers, value})
}
