package inject

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Every kind of the contract table is an annotation the webhook knows, and turns
// into the kind's variable, written by the kind's Format, and into the same
// dependencies for the controller (Dependencies reads it back).
func TestEveryKindIsInjected(t *testing.T) {
	cfg := testConfig()
	cfg.Controller = false // no gate mode: every variable stays in the container
	for _, k := range spec.Kinds() {
		t.Run(k.Annotation, func(t *testing.T) {
			pod := simplePod(map[string]string{AnnotationPrefix + k.Annotation: k.Example, AnnotationPrefix + keyContainers: "app"})
			// A container to wait for, which is not wrapped.
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "sidecar", Image: "registry.example/app:1.0"})
			out, outcome, err := Mutate(context.Background(), pod, cfg)
			if err != nil {
				t.Fatalf("Mutate: %v (%+v)", err, outcome)
			}
			want := &spec.Spec{Namespace: pod.Namespace}
			if err := k.Parse(want, k.Example); err != nil {
				t.Fatalf("the example does not parse: %v", err)
			}
			var got []string
			for _, e := range out.Spec.Containers[0].Env {
				if e.Name == k.Env {
					got = append(got, e.Value)
				}
			}
			if len(got) != 1 || got[0] != k.Format(want) {
				t.Errorf("container env %s = %q, want once %q", k.Env, got, k.Format(want))
			}
			deps, _, err := Dependencies(out)
			if err != nil {
				t.Fatalf("Dependencies: %v", err)
			}
			if f := k.Format(deps); f != k.Format(want) {
				t.Errorf("Dependencies read %s as %q, want %q", k.Env, f, k.Format(want))
			}
		})
	}
}

// notYetInREADME are annotations whose row of the annotation table in
// docs/webhook.md comes with a docs change of its own (the docs are edited apart
// from the code); the test fails once the table names one, so the list only
// shrinks.
var notYetInREADME = []string{}

// The annotation table of docs/webhook.md names exactly the annotations this
// package knows (the dependency kinds' rows are checked cell by cell in
// pkg/resolve/spec).
func TestREADMEAnnotationTableNamesEveryAnnotation(t *testing.T) {
	raw, err := os.ReadFile("../../docs/webhook.md")
	if err != nil {
		t.Fatalf("reading docs/webhook.md: %v", err)
	}
	_, webhook, _ := strings.Cut(string(raw), "\n## Annotate a pod template, get the resolver injected\n")
	webhook, _, _ = strings.Cut(webhook, "\n## ")
	var got []string
	for line := range strings.SplitSeq(webhook, "\n") {
		if name, ok := strings.CutPrefix(line, "| `"+AnnotationPrefix); ok {
			name, _, _ = strings.Cut(name, "`")
			got = append(got, name)
		}
	}
	var want []string
	for _, k := range append(fixedKeys(), keyCommandPrefix+"<container>") {
		if !slices.Contains(notYetInREADME, k) {
			want = append(want, k)
		}
	}
	for _, k := range notYetInREADME {
		if slices.Contains(got, k) {
			t.Errorf("docs/webhook.md names %s%s now: remove it from notYetInREADME", AnnotationPrefix, k)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the annotation table of docs/webhook.md names\n%q\nwant\n%q", got, want)
	}
}

func TestHasGateableDependencies(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing", nil, false},
		{"service", map[string]string{spec.EnvServices: "db"}, true},
		{"job", map[string]string{spec.EnvJobs: "migrate"}, true},
		{"job by labels", map[string]string{spec.EnvJobsJSON: `[{"labels":{"a":"b"}}]`}, true},
		{"custom resource", map[string]string{spec.EnvCustomResources: `[{"apiVersion":"v1","kind":"Secret","name":"s"}]`}, true},
		{"pod on any node", map[string]string{spec.EnvPodsJSON: `[{"labels":{"a":"b"}}]`}, true},
		// The controller judges same-node items on the pod's node, or narrows
		// the pod to the nodes where they are ready.
		{"pod on this node only", map[string]string{spec.EnvPodsJSON: `[{"labels":{"a":"b"},"requireSameNode":true}]`}, true},
		{"daemonset", map[string]string{spec.EnvDaemonSets: "ovs"}, true},
		{"in-pod kinds", map[string]string{
			spec.EnvContainers: "sidecar", spec.EnvConfigs: "/etc/a", spec.EnvSockets: "/run/s",
			spec.EnvTCP: "db:1", spec.EnvHTTP: "http://h",
		}, false},
		{"secret, without the operator's opt-in", map[string]string{spec.EnvSecrets: "creds"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{spec.EnvPodName: "web"}
			for k, v := range tt.env {
				env[k] = v
			}
			deps, err := spec.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			if got := HasGateableDependencies(deps); got != tt.want {
				t.Errorf("HasGateableDependencies = %v, want %v", got, tt.want)
			}
		})
	}
	if HasGateableDependencies(nil) {
		t.Error("HasGateableDependencies(nil) = true")
	}
}

// Gate mode on a pod waiting for a Service, which the gate always holds it
// for, and one kind: it is gate-only exactly when the kinds table says the
// controller judges that kind too (NodeFree, SameNode, or GateOptIn with
// --secret-dependencies); then no container changes and Dependencies still
// reads the kind back. Otherwise the resolver is injected for that kind.
func TestGateOnlyFollowsTheKindsTable(t *testing.T) {
	for _, k := range spec.Kinds() {
		for _, optIn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/secret-dependencies=%v", k.Annotation, optIn), func(t *testing.T) {
				cfg := testConfig()
				cfg.SecretDependencies = optIn
				pod := simplePod(map[string]string{
					AnnotationPrefix + "dependency-service": "mariadb", AnnotationPrefix + k.Annotation: k.Example,
					AnnotationPrefix + keyContainers: "app", AnnotationGate: "true",
				})
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "sidecar", Image: "registry.example/app:1.0"})
				out, outcome, err := Mutate(context.Background(), pod, cfg)
				if err != nil {
					t.Fatalf("Mutate: %v (%+v)", err, outcome)
				}
				want := k.NodeFree || k.SameNode || k.GateOptIn && optIn
				if GateOnly(out) != want {
					t.Fatalf("gate-only %v, want %v; status %s", GateOnly(out), want, out.Annotations[AnnotationStatus])
				}
				if want && (!reflect.DeepEqual(out.Spec.Containers, pod.Spec.Containers) || len(out.Spec.InitContainers) > 0 || len(out.Spec.Volumes) > 0) {
					t.Errorf("a gate-only pod's spec changed beyond the gate: %v", out.Spec)
				}
				if !want && !setsEnv(&out.Spec.Containers[0], k.Env) {
					t.Errorf("the wrapped container lacks %s, which only the resolver checks", k.Env)
				}
				deps, _, err := Dependencies(out)
				if err != nil {
					t.Fatalf("Dependencies: %v", err)
				}
				parsed := &spec.Spec{Namespace: pod.Namespace}
				if err := k.Parse(parsed, k.Example); err != nil {
					t.Fatalf("the example does not parse: %v", err)
				}
				if got, want := k.Format(deps), k.Format(parsed); got != want {
					t.Errorf("Dependencies read %s as %q, want %q", k.Env, got, want)
				}
			})
		}
	}
}
