package kubernetes_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// objects is every document of the manifests, decoded.
type objects struct {
	deployments []*appsv1.Deployment
	pdbs        []*policyv1.PodDisruptionBudget
	services    []*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	accounts    map[string]*corev1.ServiceAccount
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// decode decodes each YAML document of data strictly (unknown or duplicate fields fail) into the
// API type its apiVersion and kind name.
func decode(data []byte, into *objects) error {
	for i, doc := range docSeparator.Split(string(data), -1) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return fmt.Errorf("document %d: %v", i+1, err)
		}
		if tm.Kind == "" && strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			into.deployments, obj = append(into.deployments, d), d
		case "policy/v1 PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			into.pdbs, obj = append(into.pdbs, p), p
		case "v1 Service":
			s := &corev1.Service{}
			into.services, obj = append(into.services, s), s
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 Secret":
			obj = &corev1.Secret{}
		case "v1 ServiceAccount":
			obj = &corev1.ServiceAccount{}
		default:
			return fmt.Errorf("document %d: %s %s is not a kind this test knows", i+1, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return fmt.Errorf("document %d (%s): %v", i+1, tm.Kind, err)
		}
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			into.configMaps[o.Name] = o
		case *corev1.Secret:
			into.secrets[o.Name] = o
		case *corev1.ServiceAccount:
			into.accounts[o.Name] = o
		}
	}
	return nil
}

func stripComments(doc string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(doc))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func load(t *testing.T) *objects {
	t.Helper()
	objs := &objects{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, accounts: map[string]*corev1.ServiceAccount{}}
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := decode(b, objs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	return objs
}

func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	b, err := os.ReadFile("followpub.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, broken := range map[string]string{
		"misspelt field":  strings.Replace(string(b), "  replicas: 2", "  replica: 2", 1),
		"duplicate field": strings.Replace(string(b), "  replicas: 2", "  replicas: 2\n  replicas: 3", 1),
		"unknown kind":    strings.Replace(string(b), "kind: PodDisruptionBudget", "kind: PodDisruptionBudgets", 1),
	} {
		if broken == string(b) {
			t.Fatalf("%s: the edit did not apply", name)
		}
		objs := &objects{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, accounts: map[string]*corev1.ServiceAccount{}}
		if err := decode([]byte(broken), objs); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}

func TestManifests(t *testing.T) {
	objs := load(t)
	if len(objs.deployments) != 1 || len(objs.pdbs) != 1 || len(objs.services) != 1 {
		t.Fatalf("want one Deployment, PodDisruptionBudget and Service; got %d, %d, %d", len(objs.deployments), len(objs.pdbs), len(objs.services))
	}
	d := objs.deployments[0]
	pod := d.Spec.Template
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2 (one owner, one warm standby)", d.Spec.Replicas)
	}
	if !selects(d.Spec.Selector, pod.Labels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", d.Spec.Selector, pod.Labels)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v: want maxUnavailable 0, so the tenant keeps an owner", ru)
	}
	pdb := objs.pdbs[0]
	if !selects(pdb.Spec.Selector, pod.Labels) || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget %+v: want minAvailable 1 over the Deployment's pods", pdb.Spec)
	}
	if svc := objs.services[0]; !selectsMap(svc.Spec.Selector, pod.Labels) {
		t.Errorf("the Service selects %v, not the pods %v", svc.Spec.Selector, pod.Labels)
	}
	if _, ok := objs.accounts[pod.Spec.ServiceAccountName]; !ok {
		t.Errorf("service account %q is not defined", pod.Spec.ServiceAccountName)
	}

	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod security context %+v: want runAsNonRoot and a non-zero runAsUser", psc)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container security context %+v: want no privilege escalation, a read-only root and every capability dropped", sc)
	}
	if !slices.Equal(c.Args, []string{"run"}) {
		t.Errorf("args %v, want [run]", c.Args)
	}
	for name, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || !namesPort(c, p.HTTPGet.Port.String()) {
			t.Errorf("probe on %s: %+v; want an HTTP GET of %s on the container's port", name, p, name)
		}
	}
	req, lim := c.Resources.Requests, c.Resources.Limits
	if req.Cpu().IsZero() || req.Memory().Value() < 64<<20 || lim.Memory().Value() < req.Memory().Value() {
		t.Errorf("resources %+v: want a CPU request, at least 64 MiB requested (a backfill's peak), a memory limit above it", c.Resources)
	}

	// The environment: the ConfigMap, then the container's own entries.
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Fatalf("envFrom %+v: only ConfigMaps expected", ef)
		}
		cm, ok := objs.configMaps[ef.ConfigMapRef.Name]
		if !ok {
			t.Fatalf("ConfigMap %q is not defined", ef.ConfigMapRef.Name)
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, ok := objs.secrets[ref.Name]
			if !ok {
				t.Errorf("%s: Secret %q is not defined (secret.example.yaml shows its keys)", e.Name, ref.Name)
			} else if _, ok := s.StringData[ref.Key]; !ok {
				t.Errorf("%s: Secret %q has no key %q", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = "(secret)"
		case e.ValueFrom.ResourceFieldRef != nil:
			env[e.Name] = "(resource)"
		default:
			t.Errorf("%s: unexpected valueFrom %+v", e.Name, e.ValueFrom)
		}
	}
	for _, secret := range []string{"FOLLOWPUB_API_APP_SECRET", "FOLLOWPUB_KAFKA_SASL_PASSWORD", "FOLLOWPUB_API_ACCESS_TOKEN"} {
		if v, ok := env[secret]; ok && v != "(secret)" {
			t.Errorf("%s is set in plain text: it must come from a Secret", secret)
		}
	}
	if env["FOLLOWPUB_STATE_STORE"] != "kafka" {
		t.Errorf("FOLLOWPUB_STATE_STORE=%q, want kafka: two replicas need the shared store", env["FOLLOWPUB_STATE_STORE"])
	}
	host, port, err := net.SplitHostPort(env["FOLLOWPUB_HTTP_ADDR"])
	if err != nil || host != "0.0.0.0" || !namesPort(c, port) {
		t.Errorf("FOLLOWPUB_HTTP_ADDR=%q: want 0.0.0.0 and the container's port, so the probes reach it", env["FOLLOWPUB_HTTP_ADDR"])
	}
	shutdown, err := time.ParseDuration(env["FOLLOWPUB_SHUTDOWN_TIMEOUT"])
	if err != nil {
		shutdown = 30 * time.Second
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= shutdown {
		t.Errorf("terminationGracePeriodSeconds %v: want more than FOLLOWPUB_SHUTDOWN_TIMEOUT (%v)", g, shutdown)
	}

	known := binaryVariables(t)
	for name := range env {
		if strings.HasPrefix(name, "FOLLOWPUB_") && !known[name] {
			t.Errorf("%s: followpub does not read this variable (followpub env)", name)
		}
	}
}

// binaryVariables returns the FOLLOWPUB_ variables the binary reads, from `followpub env` run
// from the repository's own source.
func binaryVariables(t *testing.T) map[string]bool {
	t.Helper()
	cmd := exec.Command("go", "run", "./cmd/followpub", "env")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("followpub env: %v\n%s", err, stderr.String())
	}
	known := map[string]bool{}
	for _, f := range regexp.MustCompile(`(?m)^(FOLLOWPUB_[A-Z0-9_]+)`).FindAllString(string(out), -1) {
		known[f] = true
	}
	if len(known) < 10 {
		t.Fatalf("followpub env listed %d variables:\n%s", len(known), out)
	}
	return known
}

func selects(sel *metav1.LabelSelector, labels map[string]string) bool {
	return sel != nil && len(sel.MatchExpressions) == 0 && selectsMap(sel.MatchLabels, labels)
}

func selectsMap(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// namesPort reports whether p is the name or number of one of c's ports.
func namesPort(c corev1.Container, p string) bool {
	for _, cp := range c.Ports {
		if p == cp.Name || p == fmt.Sprintf("%d", cp.ContainerPort) {
			return true
		}
	}
	return false
}
