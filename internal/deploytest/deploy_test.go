package deploytest

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/followpub/followpub/internal/e2etest"
	"github.com/followpub/followpub/internal/modroot"
	"github.com/followpub/followpub/internal/wshotosim"
)

// The service names docker-compose.yml must use.
const (
	kafkaService     = "kafka"
	simService       = "sim"
	followpubService = "followpub"
	tailService      = "tail" // optional
	// replica2 is followpub's second replica (STATE_STORE=kafka: one owns the tenant).
	replica2 = "followpub-2"
)

// What the binary says about itself, read once per test run in TestMain.
var (
	repoRoot string
	binary   string
	// envVars maps every FOLLOWPUB_ variable the binary reads to its default (`followpub env`).
	envVars map[string]string
	// commandFlags maps each subcommand (`followpub help`) to its flags, each to whether it is a
	// boolean flag (which takes no separate value).
	commandFlags map[string]map[string]bool
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	root, err := modroot.Dir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploytest:", err)
		return 1
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "deploytest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploytest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "followpub")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	build := exec.Command("go", "build", "-o", binary, "./cmd/followpub")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "deploytest: building followpub: %v\n%s", err, out)
		return 1
	}
	if envVars, err = readEnvVars(); err != nil {
		fmt.Fprintln(os.Stderr, "deploytest:", err)
		return 1
	}
	if commandFlags, err = readCommands(); err != nil {
		fmt.Fprintln(os.Stderr, "deploytest:", err)
		return 1
	}
	return m.Run()
}

// cleanEnv is the test process's environment without any FOLLOWPUB_ variable, so that the caller's
// settings (a CI broker, say) do not leak into what is checked.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FOLLOWPUB_") {
			out = append(out, kv)
		}
	}
	return out
}

func runBinary(env []string, args ...string) (stdout, stderr string, code int, err error) {
	var o, e strings.Builder
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return o.String(), e.String(), ee.ExitCode(), nil
	}
	return o.String(), e.String(), 0, err
}

// readEnvVars parses `followpub env`: a header, then one variable a line in tab-aligned columns.
func readEnvVars() (map[string]string, error) {
	out, stderr, code, err := runBinary(cleanEnv(), "env")
	if err != nil || code != 0 {
		return nil, fmt.Errorf("followpub env: exit %d, %v: %s", code, err, stderr)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	header := lines[0]
	dcol, mcol := strings.Index(header, "DEFAULT"), strings.Index(header, "MEANING")
	if !strings.HasPrefix(header, "VARIABLE") || dcol < 0 || mcol < dcol {
		return nil, fmt.Errorf("followpub env: unexpected header %q", header)
	}
	vars := make(map[string]string)
	for _, l := range lines[1:] {
		if len(l) < mcol {
			return nil, fmt.Errorf("followpub env: short line %q", l)
		}
		name := strings.TrimSpace(l[:dcol])
		if !strings.HasPrefix(name, "FOLLOWPUB_") {
			return nil, fmt.Errorf("followpub env: %q is not a FOLLOWPUB_ variable", name)
		}
		vars[name] = strings.TrimSpace(l[dcol:mcol])
	}
	if len(vars) < 10 {
		return nil, fmt.Errorf("followpub env listed only %d variables", len(vars))
	}
	return vars, nil
}

var flagLineRE = regexp.MustCompile(`(?m)^  -([^\s]+)(.*)$`)

// readCommands lists the subcommands (`followpub help`) and, for each, its flags: a flag that is not
// defined makes the flag package print every defined one, with nothing else done.
func readCommands() (map[string]map[string]bool, error) {
	out, _, code, err := runBinary(cleanEnv(), "help")
	if err != nil || code != 0 {
		return nil, fmt.Errorf("followpub help: exit %d, %v", code, err)
	}
	_, list, ok := strings.Cut(out, "Commands:\n")
	if !ok {
		return nil, fmt.Errorf("followpub help: no command list in %q", out)
	}
	cmds := make(map[string]map[string]bool)
	for l := range strings.SplitSeq(list, "\n") {
		if strings.TrimSpace(l) == "" {
			break
		}
		name := strings.Fields(l)[0]
		_, stderr, code, err := runBinary(cleanEnv(), name, "--deploytest-no-such-flag")
		if err != nil || code != 2 || !strings.Contains(stderr, "deploytest-no-such-flag") {
			return nil, fmt.Errorf("followpub %s --deploytest-no-such-flag: exit %d (want 2), %v: %s", name, code, err, stderr)
		}
		flags := make(map[string]bool)
		for _, m := range flagLineRE.FindAllStringSubmatch(stderr, -1) {
			typ, _, _ := strings.Cut(m[2], "\t")
			flags[m[1]] = strings.TrimSpace(typ) == ""
		}
		cmds[name] = flags
	}
	if len(cmds) == 0 || cmds["run"] == nil || cmds["sim"] == nil {
		return nil, fmt.Errorf("followpub help: commands %v: want run and sim at least", slices.Sorted(maps.Keys(cmds)))
	}
	return cmds, nil
}

// ---- docker-compose.yml ----------------------------------------------------------------------

type composeFile struct {
	Services map[string]*service `yaml:"services"`
	Volumes  map[string]any      `yaml:"volumes"`
}

type service struct {
	Image           string       `yaml:"image"`
	Build           *buildSpec   `yaml:"build"`
	Command         []string     `yaml:"command"`
	Environment     environment  `yaml:"environment"`
	DependsOn       dependsOn    `yaml:"depends_on"`
	Ports           []string     `yaml:"ports"`
	Volumes         []string     `yaml:"volumes"`
	Healthcheck     *healthcheck `yaml:"healthcheck"`
	StopGracePeriod string       `yaml:"stop_grace_period"`
	Restart         string       `yaml:"restart"`
}

// buildSpec is `build:` in its short (a context path) or long form.
type buildSpec struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Args       map[string]string `yaml:"args"`
}

func (b *buildSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	type plain buildSpec
	return n.Decode((*plain)(b))
}

// environment is `environment:` as a map (merge keys, `<<: *anchor`, included: the keys set
// beside one win) or a list of NAME=value. A name without a value passes the shell's value
// through; the shell here sets nothing, so it is left out.
type environment map[string]string

func (e *environment) UnmarshalYAML(n *yaml.Node) error {
	m := environment{}
	switch n.Kind {
	case yaml.AliasNode:
		return e.UnmarshalYAML(n.Alias)
	case yaml.MappingNode:
		merged := environment{}
		defer func() {
			for k, v := range merged {
				if _, set := m[k]; !set {
					m[k] = v
				}
			}
		}()
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				var base environment
				if err := base.UnmarshalYAML(v); err != nil {
					return err
				}
				maps.Copy(merged, base)
				continue
			}
			if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: environment %s: want a scalar", v.Line, k.Value)
			}
			if v.Tag != "!!null" {
				m[k.Value] = v.Value
			}
		}
	case yaml.SequenceNode:
		for _, it := range n.Content {
			if k, v, ok := strings.Cut(it.Value, "="); ok {
				m[k] = v
			}
		}
	default:
		return fmt.Errorf("line %d: environment: want a map or a list", n.Line)
	}
	*e = m
	return nil
}

// dependsOn maps each dependency to its condition (the short list form means service_started).
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	m := dependsOn{}
	switch n.Kind {
	case yaml.SequenceNode:
		for _, it := range n.Content {
			m[it.Value] = "service_started"
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			var v struct {
				Condition string `yaml:"condition"`
			}
			if err := n.Content[i+1].Decode(&v); err != nil {
				return err
			}
			m[n.Content[i].Value] = cmpOr(v.Condition, "service_started")
		}
	default:
		return fmt.Errorf("line %d: depends_on: want a list or a map", n.Line)
	}
	*d = m
	return nil
}

type healthcheck struct {
	Test        yaml.Node `yaml:"test"`
	Disable     bool      `yaml:"disable"`
	Interval    string    `yaml:"interval"`
	Timeout     string    `yaml:"timeout"`
	Retries     int       `yaml:"retries"`
	StartPeriod string    `yaml:"start_period"`
}

// test returns the health check's command in list form ("CMD", …; a string is CMD-SHELL).
func (h *healthcheck) test() []string {
	switch h.Test.Kind {
	case yaml.ScalarNode:
		return []string{"CMD-SHELL", h.Test.Value}
	case yaml.SequenceNode:
		var out []string
		_ = h.Test.Decode(&out)
		return out
	}
	return nil
}

// healthEnabled says whether the service has a health check that runs.
func (s *service) healthEnabled() bool {
	h := s.Healthcheck
	if h == nil || h.Disable {
		return false
	}
	t := h.test()
	return len(t) > 0 && t[0] != "NONE"
}

var interpRE = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// interpolate does compose's ${NAME:-default} substitution with every NAME unset: the file must
// work as it stands.
func interpolate(s string) (string, error) {
	var err error
	out := interpRE.ReplaceAllStringFunc(s, func(m string) string {
		sm := interpRE.FindStringSubmatch(m)
		switch {
		case m == "$$":
			return "$"
		case strings.HasSuffix(sm[2], "-"):
			return sm[3]
		case strings.HasSuffix(sm[2], "?"):
			err = fmt.Errorf("%q: %s must be set", s, sm[1])
		}
		return ""
	})
	return out, err
}

func (c *composeFile) interpolate() error {
	var errs []error
	do := func(s *string) {
		v, err := interpolate(*s)
		errs = append(errs, err)
		*s = v
	}
	for _, s := range c.Services {
		do(&s.Image)
		do(&s.StopGracePeriod)
		for i := range s.Command {
			do(&s.Command[i])
		}
		for i := range s.Ports {
			do(&s.Ports[i])
		}
		for i := range s.Volumes {
			do(&s.Volumes[i])
		}
		for k, v := range s.Environment {
			do(&v)
			s.Environment[k] = v
		}
	}
	return errors.Join(errs...)
}

// portMapping is a short-syntax `ports:` entry.
type portMapping struct{ hostIP, host, container string }

func parsePort(s string) (portMapping, error) {
	s, _, _ = strings.Cut(s, "/")
	parts := strings.Split(s, ":")
	switch len(parts) {
	case 1:
		return portMapping{container: parts[0]}, nil
	case 2:
		return portMapping{host: parts[0], container: parts[1]}, nil
	case 3:
		return portMapping{hostIP: parts[0], host: parts[1], container: parts[2]}, nil
	}
	return portMapping{}, fmt.Errorf("port %q: want [[ip:]host:]container", s)
}

// mount is a short-syntax `volumes:` entry of a service.
type mount struct{ source, target string }

func parseMount(s string) mount {
	parts := strings.Split(s, ":")
	if len(parts) == 1 {
		return mount{target: parts[0]}
	}
	return mount{source: parts[0], target: parts[1]}
}

// namedVolume says whether m mounts a volume declared at the top level of the file (not a bind
// mount of a host path, not an anonymous volume).
func (c *composeFile) namedVolume(m mount) bool {
	if m.source == "" || strings.ContainsAny(m.source[:1], "./~$") {
		return false
	}
	_, ok := c.Volumes[m.source]
	return ok
}

// ---- Dockerfile -------------------------------------------------------------------------------

type instruction struct {
	cmd  string // upper case
	args string // the rest, continuation lines joined
	line int
}

type stage struct {
	// base is the image FROM names, with a build argument replaced by its default; baseArg is
	// that argument's name ("" when FROM names the image itself).
	base, baseArg, name, platform string
	instrs                        []instruction
}

type dockerfile struct {
	stages []*stage
	args   map[string]string // the ARGs before the first FROM, with their defaults
}

// fromArgRE matches a FROM image given by a build argument: $NAME or ${NAME}.
var fromArgRE = regexp.MustCompile(`^\$(?:\{(\w+)\}|(\w+))$`)

func parseDockerfile(text string) (*dockerfile, error) {
	var instrs []instruction
	var cur strings.Builder
	start, inCont := 0, false
	for i, raw := range strings.Split(text, "\n") {
		l := strings.TrimSpace(raw)
		if l == "" || strings.HasPrefix(l, "#") {
			continue // comments and blank lines, inside continuations too
		}
		if !inCont {
			start = i + 1
			cur.Reset()
		}
		cont := strings.HasSuffix(l, `\`)
		cur.WriteString(strings.TrimSuffix(l, `\`))
		cur.WriteByte(' ')
		inCont = cont
		if !cont {
			cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
			instrs = append(instrs, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		}
	}
	if inCont {
		return nil, errors.New("Dockerfile ends in a line continuation")
	}
	d := &dockerfile{args: map[string]string{}}
	for _, in := range instrs {
		if in.cmd == "FROM" {
			st := &stage{}
			f := strings.Fields(in.args)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				if v, ok := strings.CutPrefix(f[0], "--platform="); ok {
					st.platform = v
				}
				f = f[1:]
			}
			if len(f) == 0 {
				return nil, fmt.Errorf("line %d: FROM without an image", in.line)
			}
			st.base = f[0]
			if m := fromArgRE.FindStringSubmatch(f[0]); m != nil {
				st.baseArg = m[1] + m[2]
				def, ok := d.args[st.baseArg]
				if !ok || def == "" {
					return nil, fmt.Errorf("line %d: FROM %s: no ARG %s with a default before the first FROM", in.line, f[0], st.baseArg)
				}
				st.base = def
			}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			d.stages = append(d.stages, st)
			continue
		}
		if len(d.stages) == 0 {
			if in.cmd == "ARG" {
				name, def, _ := strings.Cut(in.args, "=")
				d.args[strings.TrimSpace(name)] = strings.Trim(strings.TrimSpace(def), `"`)
				continue
			}
			return nil, fmt.Errorf("line %d: %s before FROM", in.line, in.cmd)
		}
		st := d.stages[len(d.stages)-1]
		st.instrs = append(st.instrs, in)
	}
	if len(d.stages) == 0 {
		return nil, errors.New("Dockerfile has no FROM")
	}
	return d, nil
}

func (d *dockerfile) final() *stage { return d.stages[len(d.stages)-1] }

func (s *stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// env returns the variables the stage's ENV instructions set.
func (s *stage) env() map[string]string {
	m := make(map[string]string)
	for _, in := range s.all("ENV") {
		words := splitWords(in.args)
		if len(words) > 0 && !strings.Contains(words[0], "=") { // ENV NAME value
			m[words[0]] = strings.Join(words[1:], " ")
			continue
		}
		for _, w := range words {
			k, v, _ := strings.Cut(w, "=")
			m[k] = v
		}
	}
	return m
}

// execForm returns the JSON (exec) form of ENTRYPOINT or CMD; ok is false for the shell form.
func (s *stage) execForm(cmd string) (args []string, ok bool) {
	ins := s.all(cmd)
	if len(ins) == 0 {
		return nil, false
	}
	err := json.Unmarshal([]byte(ins[len(ins)-1].args), &args)
	return args, err == nil
}

// list returns the words of every instruction cmd (EXPOSE, VOLUME), JSON or plain.
func (s *stage) list(cmd string) []string {
	var out []string
	for _, in := range s.all(cmd) {
		var arr []string
		if json.Unmarshal([]byte(in.args), &arr) == nil {
			out = append(out, arr...)
		} else {
			out = append(out, strings.Fields(in.args)...)
		}
	}
	return out
}

// copyInstr is a COPY or ADD: flags, sources and destination.
type copyInstr struct {
	from, chown string
	srcs        []string
	dest        string
	line        int
}

func (s *stage) copies() []copyInstr {
	var out []copyInstr
	for _, in := range append(s.all("COPY"), s.all("ADD")...) {
		c := copyInstr{line: in.line}
		f := strings.Fields(in.args)
		for len(f) > 0 && strings.HasPrefix(f[0], "--") {
			if v, ok := strings.CutPrefix(f[0], "--from="); ok {
				c.from = v
			}
			if v, ok := strings.CutPrefix(f[0], "--chown="); ok {
				c.chown = v
			}
			f = f[1:]
		}
		if len(f) >= 2 {
			c.srcs, c.dest = f[:len(f)-1], f[len(f)-1]
			out = append(out, c)
		}
	}
	return out
}

// uid resolves a user (a USER or --chown value, user[:group]) to a number; -1 when unknown.
func uid(user, base string) int {
	name, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(name); err == nil {
		return n
	}
	switch {
	case name == "root":
		return 0
	case name == "nonroot" && strings.HasPrefix(base, "gcr.io/distroless/"):
		return 65532
	}
	return -1
}

// user returns the final stage's USER (empty when none).
func (d *dockerfile) user() string {
	us := d.final().all("USER")
	if len(us) == 0 {
		return ""
	}
	return strings.TrimSpace(us[len(us)-1].args)
}

// ownsDir says whether the image creates dir owned by its final user (a COPY --chown into dir: the
// final image has no shell for a RUN mkdir), before any VOLUME on dir (which would discard later
// changes). A fresh named volume mounted on dir takes that owner.
func (d *dockerfile) ownsDir(dir string) bool {
	f := d.final()
	u := uid(d.user(), f.base)
	volumeAt := 1 << 30
	for _, in := range f.all("VOLUME") {
		if slices.ContainsFunc((&stage{instrs: []instruction{in}}).list("VOLUME"), func(v string) bool { return path.Clean(v) == path.Clean(dir) }) {
			volumeAt = min(volumeAt, in.line)
		}
	}
	for _, c := range f.copies() {
		if path.Clean(c.dest) == path.Clean(dir) && c.chown != "" && uid(c.chown, f.base) == u && u > 0 && c.line < volumeAt {
			return true
		}
	}
	return false
}

// splitWords splits s at blanks outside quotes, as the Dockerfile parser does for ENV.
func splitWords(s string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	inWord := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote, inWord = r, true
		case quote == 0 && (r == ' ' || r == '\t'):
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// ---- the deployment as a whole ---------------------------------------------------------------

type deployment struct {
	compose      *composeFile
	composeText  string
	docker       *dockerfile
	dockerText   string
	dockerignore []string
	goVersion    string          // go.mod's go directive
	mainVars     map[string]bool // package-level string variables of cmd/followpub (-X targets)
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func load(t *testing.T) *deployment {
	t.Helper()
	d := &deployment{}
	d.setCompose(t, readFile(t, "docker-compose.yml"))
	d.setDockerfile(t, readFile(t, "Dockerfile"))
	for l := range strings.SplitSeq(readFile(t, ".dockerignore"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			d.dockerignore = append(d.dockerignore, l)
		}
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+(?:\.\d+)?)\s*$`).FindStringSubmatch(readFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	d.goVersion = m[1]
	d.mainVars = mainStringVars(t)
	return d
}

func (d *deployment) setCompose(t *testing.T, text string) {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal([]byte(text), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if err := c.interpolate(); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	d.compose, d.composeText = &c, text
}

func (d *deployment) setDockerfile(t *testing.T, text string) {
	t.Helper()
	df, err := parseDockerfile(text)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	d.docker, d.dockerText = df, text
}

// mainStringVars lists cmd/followpub's package-level string variables: what -X can set.
func mainStringVars(t *testing.T) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	dir := filepath.Join(repoRoot, "cmd", "followpub")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	vars := make(map[string]bool)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				isString := false
				if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "string" {
					isString = true
				}
				if vs.Type == nil && len(vs.Values) == len(vs.Names) {
					for _, v := range vs.Values {
						if bl, ok := v.(*ast.BasicLit); ok && bl.Kind == token.STRING {
							isString = true
						}
					}
				}
				for _, n := range vs.Names {
					if isString {
						vars[n.Name] = true
					}
				}
			}
		}
	}
	return vars
}

// builtHere says whether s is built from this repository's Dockerfile.
func builtHere(s *service) bool {
	return s.Build != nil && path.Clean(s.Build.Context) == "." &&
		(s.Build.Dockerfile == "" || path.Clean(s.Build.Dockerfile) == "Dockerfile")
}

// command is what the service runs: its command, or the image's CMD.
func (d *deployment) command(s *service) []string {
	if s.Command != nil {
		return s.Command
	}
	if builtHere(s) {
		cmd, _ := d.docker.final().execForm("CMD")
		return cmd
	}
	return nil
}

// effectiveEnv is what followpub sees in the service's container: the binary's defaults, then the
// image's ENV, then the compose environment.
func (d *deployment) effectiveEnv(s *service) map[string]string {
	env := make(map[string]string)
	for k, v := range envVars {
		env[k] = v
	}
	if builtHere(s) {
		for k, v := range d.docker.final().env() {
			env[k] = v
		}
	}
	for k, v := range s.Environment {
		env[k] = v
	}
	return env
}

// processEnv is the environment to run the binary with for service s: the image's ENV and the
// compose environment (the binary supplies its defaults).
func (d *deployment) processEnv(s *service) []string {
	env := cleanEnv()
	if builtHere(s) {
		for k, v := range d.docker.final().env() {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range s.Environment {
		env = append(env, k+"="+v)
	}
	return env
}

// parseArgs parses a followpub command line as Go's flag package would: the flags of sub, with their
// values. An undefined flag is an error.
func parseArgs(cmd []string) (sub string, flags map[string]string, err error) {
	if len(cmd) == 0 {
		return "", nil, errors.New("no command")
	}
	sub, defs := cmd[0], commandFlags[cmd[0]]
	if defs == nil {
		return sub, nil, fmt.Errorf("%q is not a followpub command", sub)
	}
	flags = make(map[string]string)
	args := cmd[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		isBool, ok := defs[name]
		if !ok {
			return sub, nil, fmt.Errorf("followpub %s has no flag -%s", sub, name)
		}
		if !hasVal {
			if isBool {
				val = "true"
			} else if i+1 < len(args) {
				i++
				val = args[i]
			} else {
				return sub, nil, fmt.Errorf("followpub %s: flag -%s needs a value", sub, name)
			}
		}
		flags[name] = val
	}
	return sub, flags, nil
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// unspecified says whether a listening host is every interface (reachable from other containers
// and through a published port), as opposed to loopback or one address.
func unspecified(host string) bool { return host == "" || host == "0.0.0.0" || host == "::" }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// check runs every check.
func (d *deployment) check() []string {
	var all []string
	for _, f := range []func() []string{
		d.checkServices, d.checkVariables, d.checkDependsOn, d.checkKafka, d.checkSim,
		d.checkFollowpub, d.checkTail, d.checkDockerfile, d.checkDockerignore,
	} {
		all = append(all, f()...)
	}
	return all
}

func (d *deployment) checkServices() []string {
	var p problems
	for _, name := range []string{kafkaService, simService, followpubService} {
		if d.compose.Services[name] == nil {
			p.add("docker-compose.yml has no %s service", name)
		}
	}
	if n := len(d.replicas()); n < 2 {
		p.add("docker-compose.yml runs %d followpub replicas (followpub run): want two, one owning the tenant and a standby", n)
	}
	for _, name := range []string{simService, followpubService, replica2, tailService} {
		if s := d.compose.Services[name]; s != nil && !builtHere(s) {
			p.add("service %s is not built from this repository's Dockerfile (build: .)", name)
		}
	}
	return p
}

var varRE = regexp.MustCompile(`FOLLOWPUB_[A-Z0-9_]*[A-Z0-9]`)

// checkVariables: every FOLLOWPUB_ name in the files, in comments too, is one the binary reads.
func (d *deployment) checkVariables() []string {
	var p problems
	for file, text := range map[string]string{"docker-compose.yml": d.composeText, "Dockerfile": d.dockerText} {
		for _, v := range varRE.FindAllString(text, -1) {
			if _, ok := envVars[v]; !ok {
				p.add("%s names %s, which followpub does not read (followpub env)", file, v)
			}
		}
	}
	for name, s := range d.compose.Services {
		for k := range s.Environment {
			if _, ok := envVars[k]; strings.HasPrefix(k, "FOLLOWPUB_") && !ok {
				p.add("service %s sets %s, which followpub does not read (followpub env)", name, k)
			}
		}
	}
	for k := range d.docker.final().env() {
		if _, ok := envVars[k]; strings.HasPrefix(k, "FOLLOWPUB_") && !ok {
			p.add("Dockerfile sets %s, which followpub does not read (followpub env)", k)
		}
	}
	return p
}

// checkDependsOn: every dependency exists; waiting for health needs a health check that runs.
func (d *deployment) checkDependsOn() []string {
	var p problems
	for name, s := range d.compose.Services {
		for dep, cond := range s.DependsOn {
			target := d.compose.Services[dep]
			switch {
			case target == nil:
				p.add("service %s depends on %s, which does not exist", name, dep)
			case cond == "service_healthy" && !target.healthEnabled():
				p.add("service %s waits for %s to be healthy, but %s has no health check: it would never start", name, dep, dep)
			case cond != "service_healthy" && cond != "service_started" && cond != "service_completed_successfully":
				p.add("service %s: depends_on %s: unknown condition %q", name, dep, cond)
			}
		}
	}
	return p
}

var (
	kafkaImageRE = regexp.MustCompile(`^apache/kafka:(\d+)\.(\d+)\.(\d+)$`)
	protocols    = map[string]bool{"PLAINTEXT": true, "SSL": true, "SASL_PLAINTEXT": true, "SASL_SSL": true}
)

type listener struct{ name, host, port string }

func parseListeners(s string) ([]listener, error) {
	var out []listener
	for _, l := range splitList(s) {
		name, hp, ok := strings.Cut(l, "://")
		if !ok {
			return nil, fmt.Errorf("listener %q: want NAME://host:port", l)
		}
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %v", l, err)
		}
		out = append(out, listener{name, host, port})
	}
	return out, nil
}

// checkKafka: the kafka service is a single-node KRaft broker and controller that the other
// services and the host can reach, with a health check against a broker listener.
func (d *deployment) checkKafka() []string {
	var p problems
	k := d.compose.Services[kafkaService]
	if k == nil {
		return nil // checkServices says so
	}
	if m := kafkaImageRE.FindStringSubmatch(k.Image); m == nil {
		p.add("kafka: image %q: want apache/kafka:4.x.y", k.Image)
	} else {
		v := [3]int{}
		for i := range v {
			v[i], _ = strconv.Atoi(m[i+1])
		}
		if v[0] != 4 || v[1] < 1 || (v[1] == 1 && v[2] < 1) {
			p.add("kafka: image %s: want Apache Kafka 4.1.1 or a later 4.x (KRaft, the line the tests run)", k.Image)
		}
	}
	env := k.Environment
	get := func(name string) string {
		v, ok := env[name]
		if !ok {
			p.add("kafka: %s is not set", name)
		}
		return v
	}
	roles := splitList(get("KAFKA_PROCESS_ROLES"))
	slices.Sort(roles)
	if !slices.Equal(roles, []string{"broker", "controller"}) {
		p.add("kafka: KAFKA_PROCESS_ROLES=%q: a single KRaft node is broker,controller", env["KAFKA_PROCESS_ROLES"])
	}
	nodeID, err := strconv.Atoi(get("KAFKA_NODE_ID"))
	if err != nil || nodeID < 0 {
		p.add("kafka: KAFKA_NODE_ID=%q: want a node id (an integer ≥ 0)", env["KAFKA_NODE_ID"])
	}
	listeners, err := parseListeners(get("KAFKA_LISTENERS"))
	if err != nil {
		p.add("kafka: KAFKA_LISTENERS: %v", err)
	}
	advertised, err := parseListeners(get("KAFKA_ADVERTISED_LISTENERS"))
	if err != nil {
		p.add("kafka: KAFKA_ADVERTISED_LISTENERS: %v", err)
	}
	byName := make(map[string]listener)
	for _, l := range listeners {
		if _, dup := byName[l.name]; dup {
			p.add("kafka: KAFKA_LISTENERS names %s twice", l.name)
		}
		byName[l.name] = l
	}
	controllers := make(map[string]bool)
	for _, c := range splitList(get("KAFKA_CONTROLLER_LISTENER_NAMES")) {
		controllers[c] = true
		if _, ok := byName[c]; !ok {
			p.add("kafka: controller listener %s is not in KAFKA_LISTENERS", c)
		}
	}
	if len(controllers) == 0 {
		p.add("kafka: KAFKA_CONTROLLER_LISTENER_NAMES names no listener")
	}

	// Every listener needs a security protocol: a name that is not one needs the map.
	protoMap, mapSet := env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
	protoOf := make(map[string]string)
	for _, pair := range splitList(protoMap) {
		name, proto, ok := strings.Cut(pair, ":")
		if !ok || !protocols[proto] {
			p.add("kafka: KAFKA_LISTENER_SECURITY_PROTOCOL_MAP entry %q: want NAME:PROTOCOL (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)", pair)
		}
		protoOf[name] = proto
	}
	for _, l := range append(slices.Clone(listeners), advertised...) {
		if _, ok := protoOf[l.name]; ok {
			continue
		}
		if mapSet || !protocols[l.name] {
			p.add("kafka: listener %s has no security protocol in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", l.name)
		}
	}

	// One voter: this node, at its own controller listener.
	voters := splitList(get("KAFKA_CONTROLLER_QUORUM_VOTERS"))
	if len(voters) != 1 {
		p.add("kafka: KAFKA_CONTROLLER_QUORUM_VOTERS=%q: a single node is the one voter", env["KAFKA_CONTROLLER_QUORUM_VOTERS"])
	}
	for _, v := range voters {
		id, hp, _ := strings.Cut(v, "@")
		host, port, err := net.SplitHostPort(hp)
		n, nerr := strconv.Atoi(id)
		if err != nil || nerr != nil {
			p.add("kafka: quorum voter %q: want id@host:port", v)
			continue
		}
		if n != nodeID {
			p.add("kafka: quorum voter %q: id %d is not KAFKA_NODE_ID %d", v, n, nodeID)
		}
		if host != kafkaService && !isLoopback(host) {
			p.add("kafka: quorum voter %q: host %s is neither the service name nor loopback", v, host)
		}
		ok := false
		for c := range controllers {
			ok = ok || byName[c].port == port
		}
		if !ok {
			p.add("kafka: quorum voter %q: port %s is not a controller listener's", v, port)
		}
	}

	// Advertised listeners: the compose network's at the service name, the host's published.
	for _, a := range advertised {
		l, ok := byName[a.name]
		switch {
		case !ok:
			p.add("kafka: advertised listener %s is not in KAFKA_LISTENERS", a.name)
		case a.host == kafkaService:
			if a.port != l.port {
				p.add("kafka: advertised listener %s://%s:%s: the broker listens on port %s", a.name, a.host, a.port, l.port)
			}
		case isLoopback(a.host):
			published := false
			for _, ps := range k.Ports {
				pm, err := parsePort(ps)
				published = published || (err == nil && pm.host == a.port && pm.container == l.port)
			}
			if !published {
				p.add("kafka: advertised listener %s://%s:%s is for the host, but no port %s:%s is published", a.name, a.host, a.port, a.port, l.port)
			}
		default:
			p.add("kafka: advertised listener %s://%s:%s: the host is neither the service name %q nor the host's loopback", a.name, a.host, a.port, kafkaService)
		}
	}
	if ib, ok := env["KAFKA_INTER_BROKER_LISTENER_NAME"]; ok {
		found := false
		for _, a := range advertised {
			found = found || a.name == ib
		}
		if !found || controllers[ib] {
			p.add("kafka: KAFKA_INTER_BROKER_LISTENER_NAME=%s: want an advertised broker listener", ib)
		}
	}

	// One node: every replication factor and minimum ISR must be 1, the internal topics' included
	// (their defaults of 3 would leave consumer groups and transactions unusable).
	for _, name := range []string{
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
		"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
		"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
	} {
		get(name)
	}
	for name, v := range env {
		if strings.HasSuffix(name, "_REPLICATION_FACTOR") || strings.HasSuffix(name, "_MIN_ISR") || name == "KAFKA_MIN_INSYNC_REPLICAS" {
			if v != "1" {
				p.add("kafka: %s=%q: a single node needs 1", name, v)
			}
		}
	}
	if id, ok := env["CLUSTER_ID"]; ok {
		if b, err := base64.RawURLEncoding.Strict().DecodeString(id); err != nil || len(b) != 16 {
			p.add("kafka: CLUSTER_ID=%q: want 16 bytes in unpadded base64url (kafka-storage.sh random-uuid)", id)
		}
	}
	for _, dir := range splitList(env["KAFKA_LOG_DIRS"]) {
		ok := false
		for _, v := range k.Volumes {
			m := parseMount(v)
			ok = ok || (path.Clean(m.target) == path.Clean(dir) && d.compose.namedVolume(m))
		}
		if !ok {
			p.add("kafka: KAFKA_LOG_DIRS %s is not on a named volume: the topic would vanish with the container while followpub's watermark stays", dir)
		}
	}

	// The health check asks a broker listener, with a tool the image has.
	if !k.healthEnabled() {
		p.add("kafka: no health check (followpub waits for the broker to be healthy)")
	} else {
		test := k.Healthcheck.test()
		if test[0] == "CMD" && (len(test) < 2 || !strings.HasPrefix(test[1], "/opt/kafka/bin/")) {
			p.add("kafka: health check %q: want a tool from /opt/kafka/bin", test)
		}
		i := slices.Index(test, "--bootstrap-server")
		if i < 0 || i+1 >= len(test) {
			p.add("kafka: health check %q: no --bootstrap-server", test)
		} else {
			host, port, err := net.SplitHostPort(test[i+1])
			ok := false
			for _, l := range listeners {
				ok = ok || (l.port == port && !controllers[l.name])
			}
			if err != nil || !isLoopback(host) && host != kafkaService || !ok {
				p.add("kafka: health check --bootstrap-server %s: want localhost:<a broker listener's port>", test[i+1])
			}
		}
	}
	if d.compose.Services[tailService] != nil && env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] != "false" {
		p.add("kafka: KAFKA_AUTO_CREATE_TOPICS_ENABLE must be false: tail's metadata request would create the topic with the broker's defaults before followpub creates it")
	}
	return p
}

// checkSim: the simulator listens on every interface, on the port followpub is given.
func (d *deployment) checkSim() []string {
	var p problems
	s := d.compose.Services[simService]
	if s == nil {
		return nil
	}
	sub, flags, err := parseArgs(d.command(s))
	if err != nil {
		return []string{fmt.Sprintf("sim: command %q: %v", d.command(s), err)}
	}
	if sub != "sim" {
		p.add("sim: command %q does not run followpub sim", d.command(s))
	}
	addr, ok := flags["addr"]
	if !ok {
		p.add("sim: no --addr: the simulator's default is loopback, out of other containers' reach")
	} else if host, _, err := net.SplitHostPort(addr); err != nil || !unspecified(host) {
		p.add("sim: --addr %s: want 0.0.0.0:PORT, so that other containers reach it", addr)
	}
	return p
}

// replicas lists the services that run the poller (followpub run, built here), in name order.
func (d *deployment) replicas() []string {
	var out []string
	for name, s := range d.compose.Services {
		if cmd := d.command(s); builtHere(s) && len(cmd) > 0 && cmd[0] == "run" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// checkFollowpub checks every replica, then what the replicas must share: with more than one, the
// state in Kafka (two file stores would each publish every record), one configuration (one
// group, one state topic, one tenant), and host ports of their own.
func (d *deployment) checkFollowpub() []string {
	var p problems
	fp := d.compose.Services[followpubService]
	if fp == nil {
		return nil
	}
	names := d.replicas()
	if !slices.Contains(names, followpubService) {
		p.add("followpub: command %q: want run", d.command(fp))
		names = append(names, followpubService)
	}
	want := d.effectiveEnv(fp)
	hostPorts, instanceIDs := map[string]string{}, map[string]string{}
	for _, name := range names {
		s := d.compose.Services[name]
		p = append(p, d.checkReplica(name, s)...)
		env := d.effectiveEnv(s)
		if len(names) > 1 && env["FOLLOWPUB_STATE_STORE"] != "kafka" {
			p.add("%s: FOLLOWPUB_STATE_STORE=%s with %d replicas (%s): want kafka, or each replica publishes every record", name, env["FOLLOWPUB_STATE_STORE"], len(names), strings.Join(names, ", "))
		}
		// Each replica names itself: on the host's network (make test-docker) both would be host/1.
		id := env["FOLLOWPUB_INSTANCE_ID"]
		if other, dup := instanceIDs[id]; len(names) > 1 && (id == "" || dup) {
			p.add("%s: FOLLOWPUB_INSTANCE_ID=%q (%s's too, or empty): each replica needs its own, or watermark show and the group's members cannot tell them apart (containers on the host's network would both be host/1)", name, id, other)
		}
		instanceIDs[id] = name
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if k != "FOLLOWPUB_INSTANCE_ID" && env[k] != want[k] {
				p.add("%s: %s=%q, but %s has %q: the replicas must be one definition (one group, one state topic, one tenant)", name, k, env[k], followpubService, want[k])
			}
		}
		for _, ps := range s.Ports {
			if pm, err := parsePort(ps); err == nil && pm.host != "" {
				if other, dup := hostPorts[pm.hostIP+":"+pm.host]; dup {
					p.add("%s: host port %s is %s's too: the second replica would not start", name, ps, other)
				}
				hostPorts[pm.hostIP+":"+pm.host] = name
			}
		}
	}
	return p
}

// checkReplica: one poller's wiring to the broker, the simulator, its state and its port.
func (d *deployment) checkReplica(name string, fp *service) []string {
	var p problems
	env := d.effectiveEnv(fp)
	if c := fp.DependsOn[kafkaService]; c != "service_healthy" {
		p.add("%s: depends_on kafka: condition %q, want service_healthy", name, c)
	}
	if _, ok := fp.DependsOn[simService]; !ok {
		p.add("%s: does not depend on sim", name)
	}

	// Brokers: an advertised broker listener of the kafka service, by its service name.
	if k := d.compose.Services[kafkaService]; k != nil {
		advertised, _ := parseListeners(k.Environment["KAFKA_ADVERTISED_LISTENERS"])
		controllers := splitList(k.Environment["KAFKA_CONTROLLER_LISTENER_NAMES"])
		brokers := splitList(env["FOLLOWPUB_KAFKA_BROKERS"])
		if len(brokers) == 0 {
			p.add("%s: FOLLOWPUB_KAFKA_BROKERS is empty", name)
		}
		for _, b := range brokers {
			host, port, err := net.SplitHostPort(b)
			if err != nil || host != kafkaService {
				p.add("%s: FOLLOWPUB_KAFKA_BROKERS=%s: %s is not the kafka service", name, env["FOLLOWPUB_KAFKA_BROKERS"], b)
				continue
			}
			ok := false
			for _, a := range advertised {
				ok = ok || (a.host == host && a.port == port && !slices.Contains(controllers, a.name))
			}
			if !ok {
				p.add("%s: FOLLOWPUB_KAFKA_BROKERS=%s: %s is not an advertised broker listener of the kafka service (%s)", name, env["FOLLOWPUB_KAFKA_BROKERS"], b, k.Environment["KAFKA_ADVERTISED_LISTENERS"])
			}
		}
	}

	// The API: the sim service, on the port it listens on, over http:// allowed explicitly, with
	// the credentials the simulator accepts.
	if s := d.compose.Services[simService]; s != nil {
		_, flags, err := parseArgs(d.command(s))
		if err == nil {
			base := env["FOLLOWPUB_API_BASE_URL"]
			u, err := url.Parse(base)
			_, simPort, _ := net.SplitHostPort(flags["addr"])
			switch {
			case err != nil:
				p.add("%s: FOLLOWPUB_API_BASE_URL=%q: %v", name, base, err)
			case u.Hostname() != simService:
				p.add("%s: FOLLOWPUB_API_BASE_URL=%s: host %q is not the sim service", name, base, u.Hostname())
			case u.Port() != simPort:
				p.add("%s: FOLLOWPUB_API_BASE_URL=%s: the simulator listens on port %q (--addr %s)", name, base, simPort, flags["addr"])
			}
			if err == nil && u.Scheme == "http" {
				if ok, _ := strconv.ParseBool(env["FOLLOWPUB_API_ALLOW_INSECURE"]); !ok {
					p.add("%s: FOLLOWPUB_API_BASE_URL=%s is plain http:// to a host that is not loopback: FOLLOWPUB_API_ALLOW_INSECURE must be true", name, base)
				}
			}
			def := simDefaults()
			if tok := env["FOLLOWPUB_API_ACCESS_TOKEN"]; tok != "" {
				if flags["static-token"] != tok {
					p.add("%s: FOLLOWPUB_API_ACCESS_TOKEN is not the sim's --static-token", name)
				}
			} else {
				if id := cmpOr(flags["app-id"], def.AppID); env["FOLLOWPUB_API_APP_ID"] != id {
					p.add("%s: FOLLOWPUB_API_APP_ID=%q: the sim accepts %q (--app-id)", name, env["FOLLOWPUB_API_APP_ID"], id)
				}
				if env["FOLLOWPUB_API_APP_SECRET"] != cmpOr(flags["app-secret"], def.AppSecret) {
					p.add("%s: FOLLOWPUB_API_APP_SECRET is not the secret the sim accepts (--app-secret)", name)
				}
			}
		}
	}

	// The state. In Kafka: the names of its topic and group, and the session bounds the broker
	// allows. On file: an absolute path on a named volume, in a directory the image's user owns.
	switch store := env["FOLLOWPUB_STATE_STORE"]; store {
	case "kafka":
		for _, k := range []string{"FOLLOWPUB_STATE_TOPIC", "FOLLOWPUB_GROUP_ID"} {
			if env[k] == "" {
				p.add("%s: FOLLOWPUB_STATE_STORE=kafka with %s empty", name, k)
			}
		}
		// The broker's defaults: group.min.session.timeout.ms 6 s, group.max.session.timeout.ms 30 min.
		if st, err := time.ParseDuration(env["FOLLOWPUB_GROUP_SESSION_TIMEOUT"]); err != nil || st < 6*time.Second || st > 30*time.Minute {
			p.add("%s: FOLLOWPUB_GROUP_SESSION_TIMEOUT=%q: want a duration within the broker's default bounds, 6s to 30m", name, env["FOLLOWPUB_GROUP_SESSION_TIMEOUT"])
		}
	case "file":
		p = append(p, d.checkFileState(name, fp, env["FOLLOWPUB_STATE_PATH"])...)
	default:
		p.add("%s: FOLLOWPUB_STATE_STORE=%q: want file or kafka", name, store)
	}

	// /metrics, /healthz, /readyz: every interface inside the container, exposed and published.
	ha := env["FOLLOWPUB_HTTP_ADDR"]
	if host, port, err := net.SplitHostPort(ha); err != nil || !unspecified(host) {
		p.add("%s: FOLLOWPUB_HTTP_ADDR=%q: want 0.0.0.0:PORT inside a container (loopback is out of reach of a published port)", name, ha)
	} else {
		published := false
		for _, ps := range fp.Ports {
			pm, err := parsePort(ps)
			published = published || (err == nil && pm.container == port)
		}
		if !published {
			p.add("%s: port %s (FOLLOWPUB_HTTP_ADDR) is not published", name, port)
		}
		if builtHere(fp) && !slices.ContainsFunc(d.docker.final().list("EXPOSE"), func(e string) bool { return strings.TrimSuffix(e, "/tcp") == port }) {
			p.add("%s: port %s (FOLLOWPUB_HTTP_ADDR) is not EXPOSEd by the Dockerfile", name, port)
		}
	}

	// A clean shutdown gets its time before SIGKILL.
	if st, err := time.ParseDuration(env["FOLLOWPUB_SHUTDOWN_TIMEOUT"]); err == nil {
		grace, err := time.ParseDuration(cmpOr(fp.StopGracePeriod, "10s"))
		if err != nil || grace <= st {
			p.add("%s: stop_grace_period %q: want more than FOLLOWPUB_SHUTDOWN_TIMEOUT (%v), or docker kills a clean shutdown", name, fp.StopGracePeriod, st)
		}
	}
	return p
}

// checkFileState: with STATE_STORE=file the state path is absolute, on a named volume, in a
// directory the image's user owns.
func (d *deployment) checkFileState(name string, fp *service, sp string) []string {
	var p problems
	if !path.IsAbs(sp) {
		p.add("%s: FOLLOWPUB_STATE_PATH=%q: want an absolute path on the state volume", name, sp)
	} else {
		dir := path.Dir(sp)
		onVolume := false
		for _, v := range fp.Volumes {
			m := parseMount(v)
			onVolume = onVolume || (path.Clean(m.target) == dir && d.compose.namedVolume(m))
		}
		if !onVolume {
			p.add("%s: FOLLOWPUB_STATE_PATH=%s: %s is not a named volume: the watermark would be lost with the container", name, sp, dir)
		}
		if builtHere(fp) && !d.docker.ownsDir(dir) {
			p.add("%s: FOLLOWPUB_STATE_PATH=%s: the image does not create %s owned by its user (COPY --chown): the store could not be written", name, sp, dir)
		}
	}
	return p
}

// checkTail: the optional live view reads the topic followpub writes, from the same brokers.
func (d *deployment) checkTail() []string {
	var p problems
	t, fp := d.compose.Services[tailService], d.compose.Services[followpubService]
	if t == nil || fp == nil {
		return nil
	}
	if sub, _, err := parseArgs(d.command(t)); err != nil || sub != "tail" {
		p.add("tail: command %q: want followpub tail (%v)", d.command(t), err)
	}
	te, fe := d.effectiveEnv(t), d.effectiveEnv(fp)
	for _, v := range []string{"FOLLOWPUB_KAFKA_BROKERS", "FOLLOWPUB_KAFKA_TOPIC"} {
		if te[v] != fe[v] {
			p.add("tail: %s=%q, but followpub has %q", v, te[v], fe[v])
		}
	}
	if c := t.DependsOn[kafkaService]; c != "service_healthy" {
		p.add("tail: depends_on kafka: condition %q, want service_healthy", c)
	}
	return p
}

var (
	syntaxRE      = regexp.MustCompile(`(?m)^#\s*syntax\s*=`)
	golangImageRE = regexp.MustCompile(`^golang:(\d+)\.(\d+)(?:\.(\d+))?(?:-\S+)?$`)
	xFlagRE       = regexp.MustCompile(`-X\s*=?\s*main\.(\w+)=`)
	tagsRE        = regexp.MustCompile(`-tags[=\s]+["']?([\w,]+)`)
	outRE         = regexp.MustCompile(`\s-o\s+(\S+)`)
)

// versionAtLeast compares dotted versions numerically.
func versionAtLeast(v, min string) bool {
	a, b := strings.Split(v, "."), strings.Split(min, ".")
	for i := range max(len(a), len(b)) {
		var x, y int
		if i < len(a) {
			x, _ = strconv.Atoi(a[i])
		}
		if i < len(b) {
			y, _ = strconv.Atoi(b[i])
		}
		if x != y {
			return x > y
		}
	}
	return true
}

// checkDockerfile: a multi-stage, static, trimmed build of ./cmd/followpub into a minimal image
// that runs as a non-root user.
func (d *deployment) checkDockerfile() []string {
	var p problems
	df := d.docker
	if len(df.stages) < 2 {
		p.add("Dockerfile: one stage: want a build stage and a runtime stage")
		return p
	}
	// A `# syntax=` directive makes BuildKit pull a Dockerfile frontend image; the builder's own
	// frontend is all this file needs, and make test-docker has no registry to pull from.
	if syntaxRE.MatchString(d.dockerText) {
		p.add("Dockerfile: a # syntax= line: BuildKit would pull its frontend image (the built-in one is enough)")
	}
	// Every base image is a build argument, so make test-docker can build with local ones.
	for _, st := range df.stages {
		if st.baseArg == "" && st.base != "scratch" && !slices.ContainsFunc(df.stages, func(o *stage) bool { return o.name == st.base }) {
			p.add("Dockerfile: FROM %s is not a build argument: make test-docker cannot swap it for a local image", st.base)
		}
	}
	final := df.final()
	if !strings.HasPrefix(final.base, "gcr.io/distroless/static") && final.base != "scratch" {
		p.add("Dockerfile: final image %s: want gcr.io/distroless/static or scratch (a static binary needs nothing more)", final.base)
	}

	var build *stage
	var run instruction
	for _, st := range df.stages[:len(df.stages)-1] {
		for _, in := range st.all("RUN") {
			if strings.Contains(in.args, "go build") {
				build, run = st, in
			}
		}
	}
	if build == nil {
		p.add("Dockerfile: no build stage runs go build")
		return p
	}
	if m := golangImageRE.FindStringSubmatch(build.base); m == nil {
		p.add("Dockerfile: build stage %s: want golang:MAJOR.MINOR", build.base)
	} else if mm := m[1] + "." + m[2]; !strings.HasPrefix(d.goVersion+".", mm+".") || (m[3] != "" && !versionAtLeast(mm+"."+m[3], d.goVersion)) {
		p.add("Dockerfile: build stage %s: go.mod says go %s", build.base, d.goVersion)
	}
	if !strings.Contains(run.args, "CGO_ENABLED=0") && build.env()["CGO_ENABLED"] != "0" {
		p.add("Dockerfile: go build without CGO_ENABLED=0: the binary would need libc, which the final image lacks")
	}
	if !strings.Contains(run.args, "-trimpath") {
		p.add("Dockerfile: go build without -trimpath")
	}
	if !strings.Contains(run.args, "./cmd/followpub") {
		p.add("Dockerfile: go build does not build ./cmd/followpub")
	}
	xs := map[string]bool{}
	for _, m := range xFlagRE.FindAllStringSubmatch(run.args, -1) {
		xs[m[1]] = true
		if !d.mainVars[m[1]] {
			p.add("Dockerfile: -X main.%s: cmd/followpub has no string variable %s", m[1], m[1])
		}
	}
	if !xs["version"] || !xs["commit"] {
		p.add("Dockerfile: -ldflags should stamp main.version and main.commit (followpub version)")
	}
	tz := false
	if m := tagsRE.FindStringSubmatch(run.args); m != nil {
		tz = slices.Contains(strings.Split(m[1], ","), "timetzdata")
	}
	for _, c := range final.copies() {
		tz = tz || strings.HasPrefix(path.Clean(c.dest), "/usr/share/zoneinfo")
	}
	if !tz && !strings.HasPrefix(final.base, "gcr.io/distroless/") {
		p.add("Dockerfile: no time zone database: build with -tags timetzdata (FOLLOWPUB_API_TIMEZONE=%s must load)", envVars["FOLLOWPUB_API_TIMEZONE"])
	}

	// The binary lands where ENTRYPOINT runs it.
	entry, ok := final.execForm("ENTRYPOINT")
	if !ok || len(entry) == 0 {
		p.add("Dockerfile: ENTRYPOINT must be in exec form [\"/followpub\"]: the final image has no shell")
	} else {
		out := ""
		if m := outRE.FindStringSubmatch(run.args); m != nil {
			out = m[1]
		}
		copied := false
		for _, c := range final.copies() {
			from := c.from == build.name || c.from == strconv.Itoa(slices.Index(df.stages, build))
			copied = copied || (from && slices.Contains(c.srcs, out) && path.Clean(c.dest) == entry[0])
		}
		if !copied {
			p.add("Dockerfile: ENTRYPOINT %s is not the binary built by go build -o %q", entry[0], out)
		}
	}
	if cmd, ok := final.execForm("CMD"); !ok || len(cmd) == 0 || cmd[0] != "run" {
		p.add("Dockerfile: CMD must be [\"run\"] (exec form)")
	}

	// A non-root user, who owns the state directory, which is a volume.
	user := df.user()
	switch u := uid(user, final.base); {
	case user == "":
		p.add("Dockerfile: no USER in the final stage")
	case u == 0:
		p.add("Dockerfile: USER %s is root", user)
	case u < 0:
		p.add("Dockerfile: USER %s: unknown user (give a number)", user)
	}
	env := final.env()
	if sp := env["FOLLOWPUB_STATE_PATH"]; sp != "" {
		dir := path.Dir(sp)
		if !slices.ContainsFunc(final.list("VOLUME"), func(v string) bool { return path.Clean(v) == dir }) {
			p.add("Dockerfile: FOLLOWPUB_STATE_PATH=%s: %s is not a VOLUME", sp, dir)
		}
		if !df.ownsDir(dir) {
			p.add("Dockerfile: FOLLOWPUB_STATE_PATH=%s: %s is not created owned by USER %s (COPY --chown)", sp, dir, user)
		}
	}

	// The port: the binary's default one, on every interface.
	_, defPort, _ := net.SplitHostPort(envVars["FOLLOWPUB_HTTP_ADDR"])
	expose := final.list("EXPOSE")
	if !slices.ContainsFunc(expose, func(e string) bool { return strings.TrimSuffix(e, "/tcp") == defPort }) {
		p.add("Dockerfile: EXPOSE %v: want the binary's port %s", expose, defPort)
	}
	if ha, ok := env["FOLLOWPUB_HTTP_ADDR"]; ok {
		if host, port, err := net.SplitHostPort(ha); err != nil || !unspecified(host) || port != defPort {
			p.add("Dockerfile: FOLLOWPUB_HTTP_ADDR=%s: want 0.0.0.0:%s", ha, defPort)
		}
	}
	return p
}

// dockerignored says whether .dockerignore keeps name out of the build context (last match wins;
// a pattern matching a directory excludes what is under it).
func (d *deployment) dockerignored(name string) bool {
	ignored := false
	for _, pat := range d.dockerignore {
		neg := strings.HasPrefix(pat, "!")
		pat = path.Clean(strings.TrimPrefix(strings.TrimPrefix(pat, "!"), "/"))
		parts := strings.Split(name, "/")
		for i := 1; i <= len(parts); i++ {
			if ok, _ := path.Match(pat, strings.Join(parts[:i], "/")); ok {
				ignored = !neg
				break
			}
		}
	}
	return ignored
}

// checkDockerignore: the build gets the sources it needs and not the repository's history.
func (d *deployment) checkDockerignore() []string {
	var p problems
	for _, need := range []string{"go.mod", "go.sum", "cmd/followpub/main.go", "schema/schema.json", "internal/wshoto/client.go", "poller/poller.go", "publisher/publisher.go"} {
		if d.dockerignored(need) {
			p.add(".dockerignore excludes %s, which the build needs", need)
		}
	}
	if !d.dockerignored(".git/HEAD") {
		p.add(".dockerignore does not exclude .git")
	}
	return p
}

func simDefaults() wshotosim.Config {
	s, err := wshotosim.New(wshotosim.Config{Count: -1})
	if err != nil {
		panic(err)
	}
	return s.Config()
}

// ---- the tests --------------------------------------------------------------------------------

func TestDeployment(t *testing.T) {
	d := load(t)
	for _, c := range []struct {
		name  string
		check func() []string
	}{
		{"services", d.checkServices},
		{"variables", d.checkVariables},
		{"depends_on", d.checkDependsOn},
		{"kafka", d.checkKafka},
		{"sim", d.checkSim},
		{"followpub", d.checkFollowpub},
		{"tail", d.checkTail},
		{"Dockerfile", d.checkDockerfile},
		{".dockerignore", d.checkDockerignore},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range c.check() {
				t.Error(p)
			}
		})
	}
}

// TestChecksCatchBreaks breaks the real files one way at a time and expects the checks to say so.
func TestChecksCatchBreaks(t *testing.T) {
	svc := func(d *deployment, name string) *service {
		s := d.compose.Services[name]
		if s == nil {
			t.Fatalf("no service %s", name)
		}
		return s
	}
	setArg := func(d *deployment, name, flag, val string) {
		s := svc(d, name)
		i := slices.Index(s.Command, flag)
		if i < 0 || i+1 >= len(s.Command) {
			t.Fatalf("service %s: no %s in %q", name, flag, s.Command)
		}
		s.Command[i+1] = val
	}
	// setEnv sets one variable of one service.
	setEnv := func(name, key, val string) func(d *deployment) {
		return func(d *deployment) { svc(d, name).Environment[key] = val }
	}
	// fileStore puts followpub's state on file, on a named volume, as a single replica would have it.
	fileStore := func(d *deployment) *service {
		s := svc(d, followpubService)
		s.Environment["FOLLOWPUB_STATE_STORE"] = "file"
		s.Volumes = []string{"followpub-state:/var/lib/followpub"}
		d.compose.Volumes["followpub-state"] = nil
		return s
	}
	replaceDockerfile := func(d *deployment, old, new string) {
		if !strings.Contains(d.dockerText, old) {
			t.Fatalf("Dockerfile has no %q", old)
		}
		d.setDockerfile(t, strings.Replace(d.dockerText, old, new, 1))
	}
	cases := []struct {
		name   string
		mutate func(d *deployment)
		want   string
	}{
		{"brokers on loopback", setEnv(followpubService, "FOLLOWPUB_KAFKA_BROKERS", "localhost:9092"), "FOLLOWPUB_KAFKA_BROKERS"},
		{"brokers on the controller port", setEnv(followpubService, "FOLLOWPUB_KAFKA_BROKERS", "kafka:9093"), "not an advertised broker listener"},
		{"unknown variable", setEnv(followpubService, "FOLLOWPUB_KAFKA_BROKER", "kafka:9092"), "FOLLOWPUB_KAFKA_BROKER,"},
		{"unknown variable in a comment", func(d *deployment) {
			d.composeText += "\n# FOLLOWPUB_POLL_EVERY=5s\n"
		}, "FOLLOWPUB_POLL_EVERY"},
		{"http without allow-insecure", func(d *deployment) {
			delete(svc(d, followpubService).Environment, "FOLLOWPUB_API_ALLOW_INSECURE")
		}, "FOLLOWPUB_API_ALLOW_INSECURE must be true"},
		{"API on another port", setEnv(followpubService, "FOLLOWPUB_API_BASE_URL", "http://sim:8091"), "listens on port"},
		{"sim on loopback", func(d *deployment) { setArg(d, simService, "--addr", "127.0.0.1:8090") }, "--addr"},
		{"wrong secret", func(d *deployment) { setArg(d, simService, "--app-secret", "other") }, "FOLLOWPUB_API_APP_SECRET"},
		{"unknown sim flag", func(d *deployment) {
			s := svc(d, simService)
			s.Command = append(s.Command, "--ratee", "5")
		}, "no flag -ratee"},
		{"kafka not waited for", func(d *deployment) {
			svc(d, followpubService).DependsOn[kafkaService] = "service_started"
		}, "want service_healthy"},
		{"waiting for a health check that is not there", func(d *deployment) {
			svc(d, followpubService).DependsOn[simService] = "service_healthy"
		}, "has no health check"},
		{"voter is another node", setEnv(kafkaService, "KAFKA_CONTROLLER_QUORUM_VOTERS", "2@kafka:9093"), "KAFKA_NODE_ID"},
		{"voter on the broker port", setEnv(kafkaService, "KAFKA_CONTROLLER_QUORUM_VOTERS", "1@kafka:9092"), "not a controller listener"},
		{"broker only", setEnv(kafkaService, "KAFKA_PROCESS_ROLES", "broker"), "KAFKA_PROCESS_ROLES"},
		{"offsets replicated 3 times", setEnv(kafkaService, "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3"), "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"},
		{"advertised on loopback, not published", setEnv(kafkaService, "KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://localhost:9092"), "no port 9092:9092 is published"},
		{"unmapped controller listener", setEnv(kafkaService, "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT"), "listener CONTROLLER has no security protocol"},
		{"health check on the controller", func(d *deployment) {
			svc(d, kafkaService).Healthcheck.Test = yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Value: "CMD"}, {Kind: yaml.ScalarNode, Value: "/opt/kafka/bin/kafka-topics.sh"},
				{Kind: yaml.ScalarNode, Value: "--bootstrap-server"}, {Kind: yaml.ScalarNode, Value: "localhost:9093"},
				{Kind: yaml.ScalarNode, Value: "--list"},
			}}
		}, "health check --bootstrap-server"},
		{"metrics on loopback", setEnv(followpubService, "FOLLOWPUB_HTTP_ADDR", "127.0.0.1:9464"), "FOLLOWPUB_HTTP_ADDR"},
		{"metrics not published", func(d *deployment) { svc(d, followpubService).Ports = nil }, "is not published"},
		{"second replica's metrics not published", func(d *deployment) { svc(d, replica2).Ports = nil }, replica2 + ": port 9464"},
		{"replicas on one host port", func(d *deployment) {
			svc(d, replica2).Ports = slices.Clone(svc(d, followpubService).Ports)
		}, "the second replica would not start"},
		{"replica on the file store", setEnv(replica2, "FOLLOWPUB_STATE_STORE", "file"), replica2 + ": FOLLOWPUB_STATE_STORE=file with 2 replicas"},
		{"replicas in two groups", setEnv(replica2, "FOLLOWPUB_GROUP_ID", "other"), replica2 + `: FOLLOWPUB_GROUP_ID="other"`},
		{"replicas with one instance id", func(d *deployment) {
			svc(d, replica2).Environment["FOLLOWPUB_INSTANCE_ID"] = svc(d, followpubService).Environment["FOLLOWPUB_INSTANCE_ID"]
		}, replica2 + ": FOLLOWPUB_INSTANCE_ID="},
		{"replica without an instance id", setEnv(replica2, "FOLLOWPUB_INSTANCE_ID", ""), replica2 + `: FOLLOWPUB_INSTANCE_ID=""`},
		{"no state topic", setEnv(followpubService, "FOLLOWPUB_STATE_TOPIC", ""), "FOLLOWPUB_STATE_TOPIC empty"},
		{"session shorter than the broker allows", setEnv(followpubService, "FOLLOWPUB_GROUP_SESSION_TIMEOUT", "3s"), "FOLLOWPUB_GROUP_SESSION_TIMEOUT"},
		// With STATE_STORE=file the state's path and volume matter.
		{"state not on a volume", func(d *deployment) { fileStore(d).Volumes = nil }, "not a named volume"},
		{"state on a bind mount", func(d *deployment) {
			fileStore(d).Volumes = []string{"./state:/var/lib/followpub"}
		}, "not a named volume"},
		{"relative state path", func(d *deployment) {
			fileStore(d).Environment["FOLLOWPUB_STATE_PATH"] = "followpub.state"
		}, "absolute path"},
		{"short grace period", func(d *deployment) { svc(d, followpubService).StopGracePeriod = "" }, "stop_grace_period"},
		{"tail on another topic", setEnv(tailService, "FOLLOWPUB_KAFKA_TOPIC", "other"), "FOLLOWPUB_KAFKA_TOPIC"},
		{"root", func(d *deployment) { replaceDockerfile(d, "USER 65532:65532", "USER root") }, "is root"},
		{"no USER", func(d *deployment) { replaceDockerfile(d, "USER 65532:65532", "") }, "no USER"},
		{"cgo", func(d *deployment) { replaceDockerfile(d, "CGO_ENABLED=0 ", "") }, "CGO_ENABLED=0"},
		{"no trimpath", func(d *deployment) { replaceDockerfile(d, "-trimpath ", "") }, "-trimpath"},
		{"stamping a variable that is not there", func(d *deployment) {
			replaceDockerfile(d, "-X main.commit=", "-X main.gitCommit=")
		}, "no string variable gitCommit"},
		{"state directory owned by root", func(d *deployment) {
			replaceDockerfile(d, "--chown=65532:65532 ", "")
		}, "owned by"},
		{"volume declared before the directory is made", func(d *deployment) {
			replaceDockerfile(d, `VOLUME ["/var/lib/followpub"]`+"\n", "")
			replaceDockerfile(d, "COPY --from=build --chown", `VOLUME ["/var/lib/followpub"]`+"\nCOPY --from=build --chown")
		}, "owned by"},
		{"other port exposed", func(d *deployment) { replaceDockerfile(d, "EXPOSE 9464", "EXPOSE 8080") }, "EXPOSE"},
		{"shell-form entrypoint", func(d *deployment) {
			replaceDockerfile(d, `ENTRYPOINT ["/followpub"]`, "ENTRYPOINT /followpub")
		}, "exec form"},
		{"single stage", func(d *deployment) { replaceDockerfile(d, "FROM ${RUNTIME_IMAGE}", "") }, "one stage"},
		{"fat final image", func(d *deployment) {
			replaceDockerfile(d, "RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot", "RUNTIME_IMAGE=debian:12")
		}, "final image debian:12"},
		{"older Go", func(d *deployment) { replaceDockerfile(d, "GO_IMAGE=golang:1.26", "GO_IMAGE=golang:1.25") }, "go.mod says"},
		{"frontend pulled", func(d *deployment) {
			d.setDockerfile(t, "# syntax=docker/dockerfile:1\n"+d.dockerText)
		}, "# syntax="},
		{"base image fixed", func(d *deployment) {
			replaceDockerfile(d, "FROM ${RUNTIME_IMAGE}", "FROM gcr.io/distroless/static-debian12:nonroot")
		}, "not a build argument"},
		{"sources ignored", func(d *deployment) { d.dockerignore = append(d.dockerignore, "cmd") }, "cmd/followpub/main.go"},
	}
	baseline := load(t).check() // TestDeployment reports these
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := load(t)
			c.mutate(d)
			var added []string
			for _, p := range d.check() {
				if !slices.Contains(baseline, p) {
					added = append(added, p)
				}
			}
			if !slices.ContainsFunc(added, func(p string) bool { return strings.Contains(p, c.want) }) {
				t.Errorf("no new problem mentions %q; new problems: %q", c.want, added)
			}
		})
	}
}

// TestServiceCommands: every service built here runs a real subcommand with real flags.
func TestServiceCommands(t *testing.T) {
	d := load(t)
	for name, s := range d.compose.Services {
		if !builtHere(s) {
			continue
		}
		if _, _, err := parseArgs(d.command(s)); err != nil {
			t.Errorf("service %s: command %q: %v", name, d.command(s), err)
		}
	}
}

// TestServiceConfigAccepted runs the binary with each service's environment (the image's ENV, then
// the compose environment) and a scratch state file: the configuration must pass its validation.
func TestServiceConfigAccepted(t *testing.T) {
	d := load(t)
	for name, s := range d.compose.Services {
		if !builtHere(s) || len(d.command(s)) == 0 || d.command(s)[0] == "sim" {
			continue // the simulator reads flags, not the environment
		}
		t.Run(name, func(t *testing.T) {
			env := append(d.processEnv(s), "FOLLOWPUB_STATE_PATH="+filepath.Join(t.TempDir(), "followpub.state"))
			if d.effectiveEnv(s)["FOLLOWPUB_STATE_STORE"] == "kafka" {
				// The state is in Kafka: a valid configuration gets as far as asking a broker for
				// the state topic; here no broker listens, so that is exit 1 naming the topic, where
				// a configuration error is exit 2 naming its variable.
				env = append(env, "FOLLOWPUB_KAFKA_BROKERS="+e2etest.FreeAddr(t))
				_, stderr, code, err := runBinary(env, "watermark", "show")
				if err != nil || code != 1 || !strings.Contains(stderr, "state topic") {
					t.Fatalf("followpub watermark show with the %s service's environment and no broker: exit %d, %v; want 1, the state topic out of reach\n%s", name, code, err, stderr)
				}
				return
			}
			out, stderr, code, err := runBinary(env, "watermark", "show")
			if err != nil || code != 0 {
				t.Fatalf("followpub watermark show with the %s service's environment: exit %d, %v\n%s", name, code, err, stderr)
			}
			if !strings.Contains(out, `"watermark"`) {
				t.Errorf("watermark show printed %q", out)
			}
		})
	}
}

// TestSimAcceptsFollowpubCredentials starts the simulator with the sim service's own flags (on a
// free loopback port instead of 0.0.0.0:8090) and asks it for a token with followpub's
// credentials — and, so that the test can fail, with a wrong secret.
func TestSimAcceptsFollowpubCredentials(t *testing.T) {
	d := load(t)
	sim, fp := d.compose.Services[simService], d.compose.Services[followpubService]
	if sim == nil || fp == nil {
		t.Fatal("no sim or followpub service")
	}
	args := slices.Clone(d.command(sim))
	if i := slices.Index(args, "--addr"); i >= 0 && i+1 < len(args) {
		args[i+1] = "127.0.0.1:0"
	} else {
		args = append(args, "--addr", "127.0.0.1:0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = d.processEnv(sim)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	base := ""
	sc := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`simulator at (http://\S+)`)
	for base == "" && sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("followpub %q printed no address: %s", args, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	env := d.effectiveEnv(fp)
	code := func(t *testing.T, req *http.Request) int {
		t.Helper()
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Code *int `json:"code"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Code == nil {
			t.Fatalf("%s: HTTP %d, no code (%v)", req.URL.Path, resp.StatusCode, err)
		}
		return *body.Code
	}
	if tok := env["FOLLOWPUB_API_ACCESS_TOKEN"]; tok != "" {
		list := func(tok string) *http.Request {
			req, _ := http.NewRequest("POST", base+wshotosim.ListPath+"?access_token="+url.QueryEscape(tok),
				strings.NewReader(`{"current_index":1,"page_size":1}`))
			req.Header.Set("Content-Type", "application/json")
			return req
		}
		if c := code(t, list(tok)); c != 0 {
			t.Errorf("list with FOLLOWPUB_API_ACCESS_TOKEN: code %d, want 0", c)
		}
		if c := code(t, list(tok+"x")); c == 0 {
			t.Errorf("list with a wrong token: code 0: the simulator accepts anything, the check proves nothing")
		}
		return
	}
	token := func(id, secret string) *http.Request {
		req, _ := http.NewRequest("GET", base+wshotosim.TokenPath+"?appid="+url.QueryEscape(id)+"&app_secret="+url.QueryEscape(secret), nil)
		return req
	}
	id, secret := env["FOLLOWPUB_API_APP_ID"], env["FOLLOWPUB_API_APP_SECRET"]
	if c := code(t, token(id, secret)); c != 0 {
		t.Errorf("token with FOLLOWPUB_API_APP_ID=%s and FOLLOWPUB_API_APP_SECRET: code %d, want 0", id, c)
	}
	if c := code(t, token(id, secret+"x")); c == 0 {
		t.Errorf("token with a wrong secret: code 0: the simulator accepts anything, the check proves nothing")
	}
}
