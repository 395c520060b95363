package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/followpub/followpub/internal/wshoto"
	"github.com/followpub/followpub/poller"
	"github.com/followpub/followpub/publisher"
)

// envPrefix starts the name of every variable followpub reads.
const envPrefix = "FOLLOWPUB_"

// config is every FOLLOWPUB_ variable (docs/DESIGN.md §3): the one table from the environment to
// the components' settings. Per field, `envconfig` is the variable's full name (so that envconfig
// reads that name only: given a prefix, it falls back to the unprefixed name, and a stray
// KAFKA_BROKERS would be picked up silently), `default` and `desc` are what followpub env prints,
// and `field` names the package Config field the variable sets. Fields without `field` are read by
// this command itself or by the poller, and checked in validate.
//
// The package that uses a setting owns its default and its validation; this table only maps
// variables to fields. A package reports a bad value as a *ConfigError naming its field, which
// configError turns into an error naming the variable through the `field` tags.
//
// Adding a setting to a component takes two places: the field in that package's Config (with its
// default and its check in the package's validate), and a field here (variable, default, meaning,
// `field`) with its line in apiConfig or publisherConfig. followpub env then lists it, and a bad
// value exits 2 naming it; README.md's table documents it.
type config struct {
	APIBaseURL        string        `envconfig:"FOLLOWPUB_API_BASE_URL" default:"https://open.wshoto.com" desc:"API origin; plain http:// only for loopback hosts unless API_ALLOW_INSECURE=true" field:"wshoto.BaseURL"`
	APIAllowInsecure  bool          `envconfig:"FOLLOWPUB_API_ALLOW_INSECURE" default:"false" desc:"allow plain http:// to a non-loopback API host" field:"wshoto.AllowInsecure"`
	APIAccessToken    string        `envconfig:"FOLLOWPUB_API_ACCESS_TOKEN" desc:"a fixed access token; when set, no token is fetched (secret)" field:"wshoto.AccessToken"`
	APIAppID          string        `envconfig:"FOLLOWPUB_API_APP_ID" desc:"app id for the token endpoint (used when no fixed token)" field:"wshoto.AppID"`
	APIAppSecret      string        `envconfig:"FOLLOWPUB_API_APP_SECRET" desc:"app secret for the token endpoint (secret)" field:"wshoto.AppSecret"`
	APIPageSize       int           `envconfig:"FOLLOWPUB_API_PAGE_SIZE" default:"100" desc:"records per page, 1-100" field:"wshoto.PageSize"`
	APITimezone       string        `envconfig:"FOLLOWPUB_API_TIMEZONE" default:"Asia/Shanghai" desc:"time zone of the API's yyyy-MM-dd date filter" field:"wshoto.Location"`
	APITimeout        time.Duration `envconfig:"FOLLOWPUB_API_TIMEOUT" default:"10s" desc:"bound on one HTTP request" field:"wshoto.Timeout"`
	APIRateLimit      float64       `envconfig:"FOLLOWPUB_API_RATE_LIMIT" default:"10" desc:"API requests per second, client side" field:"wshoto.RateLimit"`
	APIConcurrency    int           `envconfig:"FOLLOWPUB_API_CONCURRENCY" default:"4" desc:"pages fetched at once" field:"wshoto.Concurrency"`
	APIAuthErrorCodes string        `envconfig:"FOLLOWPUB_API_AUTH_ERROR_CODES" default:"10001,10010,10011" desc:"code values that mean: refresh the token and retry once" field:"wshoto.AuthErrorCodes"`

	FilterTargetType    string `envconfig:"FOLLOWPUB_FILTER_TARGET_TYPE" desc:"target_type filter (1 customer, 3 opportunity, 4 clue, 9 order, 10 group, 11 contact, 12 company)" field:"wshoto.Filter.TargetType"`
	FilterTargetIDs     string `envconfig:"FOLLOWPUB_FILTER_TARGET_IDS" desc:"target_id_list filter, comma-separated" field:"wshoto.Filter.TargetIDs"`
	FilterFollowUserIDs string `envconfig:"FOLLOWPUB_FILTER_FOLLOW_USER_IDS" desc:"follow_user_ids filter, comma-separated" field:"wshoto.Filter.FollowUserIDs"`
	FilterFollowDepIDs  string `envconfig:"FOLLOWPUB_FILTER_FOLLOW_DEP_IDS" desc:"follow_dep_ids filter, comma-separated integers" field:"wshoto.Filter.FollowDepIDs"`
	FilterTitle         string `envconfig:"FOLLOWPUB_FILTER_TITLE" desc:"title filter" field:"wshoto.Filter.Title"`

	PollInterval  time.Duration `envconfig:"FOLLOWPUB_POLL_INTERVAL" default:"30s" desc:"time between cycle starts"`
	Lookback      time.Duration `envconfig:"FOLLOWPUB_LOOKBACK" default:"1h" desc:"how far behind the newest published follow_time a record may still arrive and be published"`
	FullReadEvery time.Duration `envconfig:"FOLLOWPUB_FULL_READ_EVERY" default:"5m" desc:"how often every day of the window is read in full although an incremental read would do (0 = every cycle: strictest, most requests)"`
	StartFrom     string        `envconfig:"FOLLOWPUB_START_FROM" default:"today" desc:"where a run with no state begins: RFC 3339, yyyy-MM-dd, today, now, or a duration back (72h)"`

	KafkaBrokers          string        `envconfig:"FOLLOWPUB_KAFKA_BROKERS" default:"localhost:9092" desc:"comma-separated bootstrap servers" field:"publisher.Brokers"`
	KafkaTopic            string        `envconfig:"FOLLOWPUB_KAFKA_TOPIC" default:"wshoto.crm.follow.system" desc:"output topic" field:"publisher.Topic"`
	KafkaCreateTopic      bool          `envconfig:"FOLLOWPUB_KAFKA_CREATE_TOPIC" default:"true" desc:"create the topic if missing" field:"publisher.CreateTopic"`
	KafkaTopicPartitions  int           `envconfig:"FOLLOWPUB_KAFKA_TOPIC_PARTITIONS" default:"3" desc:"partitions of a created topic" field:"publisher.Partitions"`
	KafkaTopicReplication int           `envconfig:"FOLLOWPUB_KAFKA_TOPIC_REPLICATION" default:"-1" desc:"replication factor of a created topic; -1 = broker default" field:"publisher.Replication"`
	KafkaCompression      string        `envconfig:"FOLLOWPUB_KAFKA_COMPRESSION" default:"lz4" desc:"none, gzip, snappy, lz4 or zstd (default chosen by benchmark: docs/BENCHMARKS.md)" field:"publisher.Compression"`
	KafkaSASLMechanism    string        `envconfig:"FOLLOWPUB_KAFKA_SASL_MECHANISM" desc:"PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty = no SASL" field:"publisher.SASL.Mechanism"`
	KafkaSASLUsername     string        `envconfig:"FOLLOWPUB_KAFKA_SASL_USERNAME" desc:"SASL user" field:"publisher.SASL.Username"`
	KafkaSASLPassword     string        `envconfig:"FOLLOWPUB_KAFKA_SASL_PASSWORD" desc:"SASL password (secret)" field:"publisher.SASL.Password"`
	KafkaTLS              bool          `envconfig:"FOLLOWPUB_KAFKA_TLS" default:"false" desc:"TLS to the brokers" field:"publisher.TLS.Enabled"`
	KafkaTLSCAFile        string        `envconfig:"FOLLOWPUB_KAFKA_TLS_CA_FILE" desc:"PEM file of the CAs to trust; empty = system roots" field:"publisher.TLS.CAFile"`
	KafkaTLSCertFile      string        `envconfig:"FOLLOWPUB_KAFKA_TLS_CERT_FILE" desc:"PEM client certificate" field:"publisher.TLS.CertFile"`
	KafkaTLSKeyFile       string        `envconfig:"FOLLOWPUB_KAFKA_TLS_KEY_FILE" desc:"PEM client key" field:"publisher.TLS.KeyFile"`
	KafkaTLSInsecureSkip  bool          `envconfig:"FOLLOWPUB_KAFKA_TLS_INSECURE_SKIP_VERIFY" default:"false" desc:"accept any broker certificate (tests only)" field:"publisher.TLS.InsecureSkipVerify"`
	KafkaWriteTimeout     time.Duration `envconfig:"FOLLOWPUB_KAFKA_WRITE_TIMEOUT" default:"30s" desc:"bound on one publish attempt" field:"publisher.WriteTimeout"`
	EventSource           string        `envconfig:"FOLLOWPUB_EVENT_SOURCE" default:"https://open.wshoto.com/openapi/crm/follow/listForSystem" desc:"the CloudEvents source (ce_source)" field:"publisher.Source"`
	StatePath             string        `envconfig:"FOLLOWPUB_STATE_PATH" default:"followpub.state" desc:"the watermark store (a file on local disk)"`
	StateStore            string        `envconfig:"FOLLOWPUB_STATE_STORE" default:"file" desc:"file: the embedded store at STATE_PATH (one process); kafka: the state in STATE_TOPIC, the tenant owned by one instance of GROUP_ID at a time"`
	StateTopic            string        `envconfig:"FOLLOWPUB_STATE_TOPIC" default:"followpub.state" desc:"STATE_STORE=kafka: the compacted topic holding the state (created if missing, cleanup.policy=compact)"`
	GroupID               string        `envconfig:"FOLLOWPUB_GROUP_ID" default:"followpub" desc:"STATE_STORE=kafka: the consumer group of the instances that share this deployment's tenants"`
	GroupSessionTimeout   time.Duration `envconfig:"FOLLOWPUB_GROUP_SESSION_TIMEOUT" default:"10s" desc:"STATE_STORE=kafka: how long a silent instance keeps its tenants before they move (within the broker's group.min.session.timeout.ms and group.max.session.timeout.ms)"`
	TenantsFile           string        `envconfig:"FOLLOWPUB_TENANTS_FILE" desc:"YAML (JSON accepted) listing the tenants (README \"For integrators\"); unset: one tenant, default, from the API_*, FILTER_*, START_FROM, KAFKA_TOPIC and EVENT_SOURCE variables"`
	InstanceID            string        `envconfig:"FOLLOWPUB_INSTANCE_ID" desc:"STATE_STORE=kafka: how this instance names itself to the group and in watermark show's owner; empty = host/pid (set it where replicas share a host name and a pid, as containers on the host's network do)"`
	HTTPAddr              string        `envconfig:"FOLLOWPUB_HTTP_ADDR" default:"127.0.0.1:9464" desc:"address of /metrics, /healthz, /readyz; empty disables"`
	LogFormat             string        `envconfig:"FOLLOWPUB_LOG_FORMAT" default:"auto" desc:"auto (coloured text on a terminal, JSON otherwise), text or json"`
	LogLevel              string        `envconfig:"FOLLOWPUB_LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	ShutdownTimeout       time.Duration `envconfig:"FOLLOWPUB_SHUTDOWN_TIMEOUT" default:"30s" desc:"grace period after SIGINT/SIGTERM"`
	location              *time.Location
	authCodes             []int
	targetType            *int
	depIDs                []int64
	brokers               []string
}

// emptyMeansDisabled lists the variables for which a set-but-empty value is meaningful.
var emptyMeansDisabled = map[string]bool{"FOLLOWPUB_HTTP_ADDR": true}

// usageError is a bad command line or configuration: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// loadConfig reads the environment and validates all of it, the components' settings included, so
// that a bad value exits 2 before any command touches the state, the API or Kafka. A variable set
// to the empty string counts as unset, so its default applies (envconfig alone would take the
// empty string and defeat the default), except FOLLOWPUB_HTTP_ADDR, where empty disables the
// endpoints. Only FOLLOWPUB_ names are read.
func loadConfig() (*config, error) {
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, envPrefix) && v == "" && !emptyMeansDisabled[k] {
			_ = os.Unsetenv(k)
		}
	}
	var c config
	if err := envconfig.Process("", &c); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return nil, usagef("%s=%q: not a valid %s (%v)", pe.KeyName, pe.Value, pe.TypeName, unwrapParse(pe.Err))
		}
		return nil, usagef("reading the configuration: %v", err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func unwrapParse(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}

// validate checks every value up front and fills the parsed forms; each error names its variable.
func (c *config) validate() error {
	if err := c.parse(); err != nil {
		return err
	}
	checks := []struct {
		ok   bool
		name string
		val  any
		want string
	}{
		// The service always limits its request rate (the client's negative "no limit" is for
		// benchmarks).
		{c.APIRateLimit > 0, "FOLLOWPUB_API_RATE_LIMIT", c.APIRateLimit, "a positive number of requests per second"},
		// The poller's settings: its errors name no field, so they are checked here.
		{c.PollInterval > 0, "FOLLOWPUB_POLL_INTERVAL", c.PollInterval, "a positive duration"},
		{c.Lookback > 0, "FOLLOWPUB_LOOKBACK", c.Lookback, "a positive duration (how late a record may arrive and still be published)"},
		{c.FullReadEvery >= 0, "FOLLOWPUB_FULL_READ_EVERY", c.FullReadEvery, "a duration of 0 or more"},
		// What this command reads itself.
		{c.StatePath != "", "FOLLOWPUB_STATE_PATH", c.StatePath, "a file path"},
		{oneOf(c.StateStore, "file", "kafka"), "FOLLOWPUB_STATE_STORE", c.StateStore, "file or kafka"},
		{validTopicName(c.StateTopic), "FOLLOWPUB_STATE_TOPIC", c.StateTopic, "a topic name (letters, digits, '.', '_', '-'; at most 249)"},
		{c.GroupID != "", "FOLLOWPUB_GROUP_ID", c.GroupID, "a consumer group id"},
		{c.GroupSessionTimeout > 0, "FOLLOWPUB_GROUP_SESSION_TIMEOUT", c.GroupSessionTimeout, "a positive duration"},
		{oneOf(c.LogFormat, "auto", "text", "json"), "FOLLOWPUB_LOG_FORMAT", c.LogFormat, "auto, text or json"},
		{oneOf(strings.ToLower(c.LogLevel), "debug", "info", "warn", "error"), "FOLLOWPUB_LOG_LEVEL", c.LogLevel, "debug, info, warn or error"},
		{c.ShutdownTimeout > 0, "FOLLOWPUB_SHUTDOWN_TIMEOUT", c.ShutdownTimeout, "a positive duration"},
	}
	for _, ch := range checks {
		if !ch.ok {
			return usagef("%s=%v: want %s", ch.name, ch.val, ch.want)
		}
	}
	if c.StateStore == "kafka" && c.TenantsFile == "" && c.KafkaTopic == c.StateTopic {
		return usagef("FOLLOWPUB_KAFKA_TOPIC=%s is FOLLOWPUB_STATE_TOPIC: the state topic holds followpub's state, not events; give them different topics", c.KafkaTopic)
	}
	if c.HTTPAddr != "" && !validHostPort(c.HTTPAddr, 0) {
		return usagef("FOLLOWPUB_HTTP_ADDR=%q: want host:port with a port from 0 to 65535 (or empty to disable)", c.HTTPAddr)
	}
	start, err := poller.ParseStartFrom(c.StartFrom, time.Now(), c.location)
	if err != nil {
		return usagef("FOLLOWPUB_START_FROM=%q: %v", c.StartFrom, err)
	}
	if err := plausibleTime(start, time.Now()); err != nil {
		return usagef("FOLLOWPUB_START_FROM=%q: %v", c.StartFrom, err)
	}
	// The components' settings, each checked by the package that uses it.
	if err := c.refuseZeros(); err != nil {
		return err
	}
	if err := c.apiConfig().Validate(); err != nil {
		return configError("API configuration", err)
	}
	if err := c.publisherConfig().Validate(); err != nil {
		return configError("Kafka configuration", err)
	}
	return nil
}

// parse fills the parsed forms of the values that are not plain strings, numbers or durations.
func (c *config) parse() error {
	loc, err := time.LoadLocation(c.APITimezone)
	if err != nil {
		return usagef("FOLLOWPUB_API_TIMEZONE=%q: unknown time zone", c.APITimezone)
	}
	c.location = loc
	for _, s := range splitList(c.APIAuthErrorCodes) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return usagef("FOLLOWPUB_API_AUTH_ERROR_CODES=%q: %q is not an integer", c.APIAuthErrorCodes, s)
		}
		c.authCodes = append(c.authCodes, n)
	}
	if c.FilterTargetType != "" {
		n, err := strconv.Atoi(c.FilterTargetType)
		if err != nil {
			return usagef("FOLLOWPUB_FILTER_TARGET_TYPE=%q: want a target type number (1, 3, 4, 9, 10, 11, 12)", c.FilterTargetType)
		}
		c.targetType = &n
	}
	for _, s := range splitList(c.FilterFollowDepIDs) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return usagef("FOLLOWPUB_FILTER_FOLLOW_DEP_IDS=%q: %q is not an integer", c.FilterFollowDepIDs, s)
		}
		c.depIDs = append(c.depIDs, n)
	}
	c.brokers = splitList(c.KafkaBrokers)
	return nil
}

// refuseZeros refuses a component's number set to 0: the packages read 0 as "the default", which
// a variable gets by being unset, so a 0 given on purpose is a mistake rather than a wish for it.
func (c *config) refuseZeros() error {
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		switch f.Type.Kind() {
		case reflect.Int, reflect.Int64, reflect.Float64:
			if f.Tag.Get("field") != "" && v.Field(i).IsZero() {
				return usagef("%s=0: want a value other than 0 (unset the variable for the default, %s)", f.Tag.Get("envconfig"), f.Tag.Get("default"))
			}
		}
	}
	return nil
}

// variables maps each package field a variable sets ("publisher.TLS.CAFile") to the variable
// (FOLLOWPUB_KAFKA_TLS_CA_FILE), from the `field` tags of config.
var variables = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	t := reflect.TypeFor[config]()
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("field") != "" {
			m[f.Tag.Get("field")] = f.Tag.Get("envconfig")
		}
	}
	return m
})

// configError turns a component's configuration error into a usage error that names the
// variables behind the fields at fault; what says which configuration it was, for any other error.
func configError(what string, err error) error {
	var pe *publisher.ConfigError
	if errors.As(err, &pe) {
		return fieldError("publisher", pe.Field, pe.Related, pe.Err)
	}
	var we *wshoto.ConfigError
	if errors.As(err, &we) {
		return fieldError("wshoto", we.Field, we.Related, we.Err)
	}
	return usagef("%s: %v", what, err)
}

// fieldError names the variables that set pkg's field and related (or the fields themselves, for
// one no variable sets).
func fieldError(pkg, field, related string, err error) error {
	name := func(f string) string { return cmp.Or(variables()[pkg+"."+f], pkg+"."+f) }
	if related != "" {
		return usagef("%s: %v (see %s)", name(field), err, name(related))
	}
	return usagef("%s: %v", name(field), err)
}

// apiConfig is the API client's part of the configuration.
func (c *config) apiConfig() wshoto.Config {
	return wshoto.Config{
		BaseURL:        c.APIBaseURL,
		AllowInsecure:  c.APIAllowInsecure,
		AccessToken:    c.APIAccessToken,
		AppID:          c.APIAppID,
		AppSecret:      c.APIAppSecret,
		PageSize:       c.APIPageSize,
		Location:       c.location,
		Timeout:        c.APITimeout,
		RateLimit:      c.APIRateLimit,
		Concurrency:    c.APIConcurrency,
		AuthErrorCodes: c.authCodes,
		Filter: wshoto.Filter{
			TargetType:    c.targetType,
			TargetIDs:     splitList(c.FilterTargetIDs),
			FollowUserIDs: splitList(c.FilterFollowUserIDs),
			FollowDepIDs:  c.depIDs,
			Title:         c.FilterTitle,
		},
	}
}

// publisherConfig is the Kafka publisher's part of the configuration.
func (c *config) publisherConfig() publisher.Config {
	return publisher.Config{
		Brokers:      c.brokers,
		Topic:        c.KafkaTopic,
		CreateTopic:  c.KafkaCreateTopic,
		Partitions:   c.KafkaTopicPartitions,
		Replication:  c.KafkaTopicReplication,
		Compression:  c.KafkaCompression,
		SASL:         publisher.SASLConfig{Mechanism: c.KafkaSASLMechanism, Username: c.KafkaSASLUsername, Password: c.KafkaSASLPassword},
		TLS:          publisher.TLSConfig{Enabled: c.KafkaTLS, CAFile: c.KafkaTLSCAFile, CertFile: c.KafkaTLSCertFile, KeyFile: c.KafkaTLSKeyFile, InsecureSkipVerify: c.KafkaTLSInsecureSkip},
		WriteTimeout: c.KafkaWriteTimeout,
		Source:       c.EventSource,
	}
}

// pollerConfig is the poller's part of the configuration.
func (c *config) pollerConfig() poller.Config {
	return poller.Config{
		Location:      c.location,
		Interval:      c.PollInterval,
		Lookback:      c.Lookback,
		StartFrom:     c.StartFrom,
		FullReadEvery: max(c.FullReadEvery, time.Nanosecond), // 0 = always: the poller's zero means its default
		ShutdownGrace: c.ShutdownTimeout,
	}
}

// secrets returns the secret values in use, for redaction.
func (c *config) secrets() []string {
	var out []string
	for _, s := range []string{c.APIAccessToken, c.APIAppSecret, c.KafkaSASLPassword} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// logAttrs is the effective configuration for the start-up log line, secrets masked.
func (c *config) logAttrs() []any {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "***"
	}
	return []any{
		"api_base_url", c.APIBaseURL, "api_access_token", mask(c.APIAccessToken), "api_app_id", c.APIAppID,
		"api_app_secret", mask(c.APIAppSecret), "api_page_size", c.APIPageSize, "api_timezone", c.APITimezone,
		"api_rate_limit", c.APIRateLimit, "api_concurrency", c.APIConcurrency, "poll_interval", c.PollInterval,
		"lookback", c.Lookback, "start_from", c.StartFrom, "kafka_brokers", c.KafkaBrokers, "kafka_topic", c.KafkaTopic,
		"kafka_compression", c.KafkaCompression, "kafka_sasl_mechanism", c.KafkaSASLMechanism,
		"kafka_sasl_password", mask(c.KafkaSASLPassword), "kafka_tls", c.KafkaTLS, "state_store", c.StateStore,
		"state_path", c.StatePath, "state_topic", c.StateTopic, "group_id", c.GroupID, "group_session_timeout", c.GroupSessionTimeout,
		"http_addr", c.HTTPAddr,
	}
}

// printEnv writes every variable with its default and meaning (followpub env).
func printEnv(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	err := envconfig.Usagef("", &config{}, tw, `{{range .}}{{usage_key .}}	{{usage_default .}}	{{usage_description .}}
{{end}}`)
	if err != nil {
		return err
	}
	return tw.Flush()
}

// validHostPort reports whether s is host:port with a port from minPort to 65535.
func validHostPort(s string, minPort int) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= minPort && n <= 65535
}

// earliestTime is the earliest start or watermark accepted — 2000-01-01 in the easternmost zone:
// WeShoto's records are not older, and an earlier one is a typo that would mean a backfill of
// centuries.
var earliestTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.FixedZone("UTC+14", 14*3600))

// plausibleTime refuses a start or watermark before earliestTime or more than a day after now:
// a state in the future would publish nothing until that day, silently.
func plausibleTime(t, now time.Time) error {
	switch {
	case t.Before(earliestTime):
		return fmt.Errorf("%s is before 2000-01-01", t.Format(time.RFC3339))
	case t.After(now.Add(24 * time.Hour)):
		return fmt.Errorf("%s is more than a day in the future", t.Format(time.RFC3339))
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// validTopicName reports whether s is a name Kafka accepts for a topic.
func validTopicName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 249 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '.' && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}
