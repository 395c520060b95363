package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/followpub/followpub/internal/modroot"
	"github.com/followpub/followpub/publisher"
	"github.com/followpub/followpub/schema"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "followpub-bench:", err)
		os.Exit(1)
	}
}

// options are the driver's flags.
type options struct {
	runs                          int
	only                          map[string]bool
	records                       int
	days                          int
	codecs                        []string
	concurrency                   []int
	rateLimit                     float64
	apiRate                       float64
	latency                       time.Duration
	steady                        time.Duration
	steadyRate                    float64
	ids                           int
	recoveryRecords, recoveryDays int
	out                           string
	profile                       string
	images                        string
	variants                      []binary
	haMoves                       int
	haRecords                     int
	haSteady                      time.Duration
	tenants, spreadTenants        int
	tenantsFor                    time.Duration
	haParts                       map[string]bool
	haTimeline                    bool
}

// binary is a followpub binary the driver measures: the one built from this repository, and any
// -variants (builds of a change being tried, measured in the same runs for a ratio).
type binary struct {
	name, path string
}

func run() (err error) {
	publisher.RegisterCodecs() // the producer limit and followpub compress with the same writers
	var o options
	var only, codecList, concList, variants string
	flag.IntVar(&o.runs, "runs", 3, "runs of each measurement; tables show medians")
	flag.StringVar(&only, "only", "hotpath,backfill,api,steady,memory,recovery,ha,tenants", "measurements to run: hotpath (the testing.B of the hot path), backfill (throughput, codecs, peak RSS), api (API-bound backfill), steady, memory (1,000,000 remembered ids), recovery (after a SIGKILL with a publish in flight), ha (failover, takeover, the kafka store), tenants (many tenants in one instance, and spread over three); not by default: peers (followpub beside benthos + kcat, make bench-peers)")
	flag.IntVar(&o.records, "records", 200_000, "records of the backfill")
	flag.IntVar(&o.days, "days", 20, "days the backfill's records span")
	flag.StringVar(&codecList, "codecs", "none,snappy,lz4,zstd", "KAFKA_COMPRESSION values compared by the backfill")
	flag.StringVar(&concList, "concurrency", "1,4,8", "API_CONCURRENCY values of the API-bound backfill")
	flag.Float64Var(&o.rateLimit, "rate-limit", 100_000, "API_RATE_LIMIT of the backfill (high enough not to bind: the table says how close the busiest second came)")
	flag.Float64Var(&o.apiRate, "api-rate-limit", 500, "API_RATE_LIMIT of the API-bound backfill")
	flag.DurationVar(&o.latency, "latency", 20*time.Millisecond, "API latency per request of the API-bound backfill and the steady state")
	flag.DurationVar(&o.steady, "steady", 60*time.Second, "length of the steady-state run")
	flag.Float64Var(&o.steadyRate, "steady-rate", 50, "records per second arriving in the steady state")
	flag.IntVar(&o.ids, "ids", 1_000_000, "remembered ids of the memory measurement")
	flag.IntVar(&o.recoveryRecords, "recovery-records", 60_000, "records of the recovery measurement's backfill")
	flag.IntVar(&o.recoveryDays, "recovery-days", 6, "days the recovery measurement's records span")
	flag.StringVar(&o.out, "out", "", "also write the tables to this file")
	flag.StringVar(&o.images, "images", "", "write the pictures of what ran (steady: latency distribution; peers: records per CPU-second; ha: the failover timeline) as PNGs into this directory (docs/images)")
	flag.StringVar(&o.profile, "profile", "", "with backfill: also profile -runs more backfills of followpub built with -tags cpuprofile, writing the profiles to this directory, and print the largest functions")
	flag.IntVar(&o.haMoves, "ha-moves", 10, "takeovers of the ha measurement per kind (SIGKILL, SIGTERM) over all runs")
	flag.IntVar(&o.haRecords, "ha-records", 200_000, "records of the ha measurement's backfill on each store")
	flag.DurationVar(&o.haSteady, "ha-steady", 30*time.Second, "length of the ha measurement's steady state on each store")
	flag.IntVar(&o.tenants, "tenants", 500, "tenants of the tenants measurement's one instance (0: skip that part)")
	flag.IntVar(&o.spreadTenants, "spread-tenants", 300, "tenants the tenants measurement spreads over three instances (0: skip that part)")
	flag.DurationVar(&o.tenantsFor, "tenants-for", 40*time.Second, "length of each process's measured window in the tenants measurement")
	var haParts string
	flag.StringVar(&haParts, "ha-parts", "failover,takeover,stores", "parts of the ha measurement to run: failover, takeover, stores")
	flag.BoolVar(&o.haTimeline, "ha-timeline", false, "ha failover: run the instances with FOLLOWPUB_LOG_LEVEL=debug and print each takeover's timeline from the new owner's log")
	flag.StringVar(&variants, "variants", "", "other followpub binaries to measure in the same runs, name=path,… (to try a change)")
	flag.Parse()
	o.haParts = map[string]bool{}
	for _, s := range strings.Split(haParts, ",") {
		o.haParts[strings.TrimSpace(s)] = true
	}
	o.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		o.only[strings.TrimSpace(s)] = true
	}
	o.codecs = strings.Split(codecList, ",")
	for _, c := range o.codecs {
		if _, ok := codecs[c]; !ok {
			return fmt.Errorf("-codecs: unknown codec %q", c)
		}
	}
	for _, s := range strings.Split(concList, ",") {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n < 1 {
			return fmt.Errorf("-concurrency: %q is not a positive integer", s)
		}
		o.concurrency = append(o.concurrency, n)
	}

	for _, v := range strings.Split(variants, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		name, path, ok := strings.Cut(v, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("-variants: %q is not name=path", v)
		}
		o.variants = append(o.variants, binary{name: name, path: path})
	}

	brokers := strings.Split(os.Getenv("FOLLOWPUB_TEST_KAFKA_BROKERS"), ",")
	if brokers[0] == "" {
		return fmt.Errorf("FOLLOWPUB_TEST_KAFKA_BROKERS is not set: run under scripts/kafka/with-broker.sh (make bench does)")
	}
	for _, b := range brokers {
		host, _, err := net.SplitHostPort(b)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("FOLLOWPUB_TEST_KAFKA_BROKERS: %q is not a loopback address; the driver only dials 127.0.0.1", b)
		}
	}

	root, err := modroot.Dir()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "followpub-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	progress("building followpub")
	bin, err := buildBinary(root, tmp)
	if err != nil {
		return err
	}
	kb, err := newBroker(brokers)
	if err != nil {
		return err
	}
	defer kb.close()
	loc := schema.APILocation()
	d := &driver{opts: o, bins: append([]binary{{name: "followpub", path: bin}}, o.variants...), tmp: tmp, kafka: kb, loc: loc, brokerPID: brokerPID()}

	var out io.Writer = os.Stdout
	if o.out != "" {
		f, ferr := os.Create(o.out)
		if ferr != nil {
			return ferr
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		out = io.MultiWriter(os.Stdout, f)
	}
	began := time.Now()
	d.machine(out)
	steps := []struct {
		name string
		fn   func(context.Context) ([]*table, error)
	}{
		{"hotpath", d.hotPath},
		{"backfill", d.backfill},
		{"api", d.apiBound},
		{"steady", d.steadyState},
		{"memory", d.memory},
		{"recovery", d.recovery},
		{"ha", d.ha},
		{"tenants", d.tenants},
		{"peers", d.peers},
	}
	for _, s := range steps {
		if !o.only[s.name] {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		tables, err := s.fn(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		for _, t := range tables {
			t.print(out)
		}
	}
	d.summary().print(out)
	if o.images != "" {
		files, err := d.writeImages(o.images)
		if err != nil {
			return err
		}
		for _, f := range files {
			fmt.Fprintf(out, "\nPicture: %s\n", f)
		}
	}
	fmt.Fprintf(out, "\nTotal driver time: %s.\n", time.Since(began).Round(time.Second))
	return nil
}

// driver holds what the measurements share.
type driver struct {
	opts  options
	bins  []binary // bins[0] is followpub as built from this repository
	tmp   string
	kafka *broker
	loc   *time.Location
	// brokerPID is the broker's process id, for its CPU time; 0 when unknown.
	brokerPID int
	// peerFigures are the peers measurement's runs, for the pictures; nil until it ran.
	peerFigures *peerFigures
	// steadyLat is each binary's steady-state latencies (s) over all runs, for the pictures.
	steadyLat [][]float64
	// failoverRates are the records per second around each takeover of the ha measurement.
	failoverRates []failoverRate
	// goals are the goals the run measured, for its summary table.
	goals []goalRow
}

// machine prints what the figures were measured on.
func (d *driver) machine(w io.Writer) {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	mem := "unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	load := "unknown"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	kafkaVersion := os.Getenv("FOLLOWPUB_TEST_KAFKA_VERSION")
	if kafkaVersion == "" {
		kafkaVersion = "unknown (" + d.kafka.version(context.Background()) + ")"
	}
	t := &table{title: "Machine", head: []string{"", ""}}
	t.add("date", time.Now().UTC().Format(time.RFC3339))
	t.add("CPU", fmt.Sprintf("%s, %d logical CPUs (nproc)", cpu, runtime.NumCPU()))
	t.add("memory", mem)
	t.add("load average at start", load)
	t.add("Go", runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	t.add("Kafka", "Apache Kafka "+kafkaVersion+", single node (KRaft) on 127.0.0.1, scripts/kafka/start.sh")
	t.add("runs", fmt.Sprintf("%d per figure; tables show medians", d.opts.runs))
	t.print(w)
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
