package inject

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// contractPod is a pod in namespace openstack whose one init container runs the
// original image with env, before a regular container app.
func contractPod(env ...corev1.EnvVar) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "api-", Namespace: "openstack"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "quay.io/airshipit/kubernetes-entrypoint:v1", Command: []string{"kubernetes-entrypoint"}, Env: env}},
			Containers:     []corev1.Container{{Name: "app", Image: "registry.example/app:1.0", Command: []string{"/usr/bin/app"}}},
		},
	}
}

func literal(name, value string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: value} }

func fromField(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
}

func adoptConfig() Config {
	cfg := testConfig()
	cfg.NamespaceAdopted = true
	return cfg
}

// TestAdopt runs Mutate, with adoption asked, on each case: an adopted pod must
// equal testdata/adopt/<case>.out.yaml (go test -update rewrites it), read back
// through Dependencies as the container read it before, and be left alone by a
// second call; any other must come back exactly as it was.
func TestAdopt(t *testing.T) {
	services := make([]string, spec.MaxItems+1)
	for i := range services {
		services[i] = "svc-" + strconv.Itoa(i)
	}
	selectors := make([]string, spec.MaxSelectorItems+1)
	for i := range selectors {
		selectors[i] = `{"labels":{"app":"a` + strconv.Itoa(i) + `"}}`
	}
	noController := adoptConfig()
	noController.Controller = false
	everywhere := testConfig()
	everywhere.AdoptAllNamespaces = true
	notAsked := testConfig()
	withNode := contractPod(literal(spec.EnvServices, "mariadb"))
	withNode.Spec.NodeName = "node-a"
	optedOut := contractPod(literal(spec.EnvServices, "mariadb"))
	optedOut.Annotations = map[string]string{AnnotationInject: "false"}
	several := contractPod(literal(spec.EnvServices, "mariadb"))
	several.Spec.InitContainers = append(several.Spec.InitContainers, corev1.Container{
		Name: "init-2", Image: "quay.io/airshipit/kubernetes-entrypoint:v1", Env: []corev1.EnvVar{literal(spec.EnvServices, "memcached")}})
	mirror := contractPod(literal(spec.EnvServices, "mariadb"))
	mirror.Annotations = map[string]string{annotationMirror: "x"}

	tests := []struct {
		name    string
		file    string // testdata/adopt/<file>.in.yaml, when pod is nil
		pod     *corev1.Pod
		cfg     Config
		reason  string
		warning string // a part of the one warning; "" when none
	}{
		{name: "keystone Deployment", file: "keystone-api", cfg: adoptConfig(), reason: ReasonAdopted},
		{name: "keystone Job", file: "keystone-db-sync", cfg: adoptConfig(), reason: ReasonAdopted},
		{name: "pod JSON split by node", file: "pod-json-mixed", cfg: adoptConfig(), reason: ReasonAdopted},
		{name: "pod JSON on any node", file: "pod-json-any-node", cfg: adoptConfig(), reason: ReasonAdopted},
		{name: "jobs JSON supersedes jobs", file: "jobs-json-supersedes", cfg: adoptConfig(), reason: ReasonAdopted},
		{name: "every namespace", file: "keystone-db-sync", cfg: everywhere, reason: ReasonAdopted},
		{name: "annotated pod takes the annotated path", file: "annotated", cfg: adoptConfig(), reason: ReasonInjected},
		{name: "adoption not asked", file: "keystone-api", cfg: notAsked, reason: ReasonNoAnnotations},
		{name: "opted out", pod: optedOut, cfg: adoptConfig(), reason: ReasonOptOut},
		{name: "mirror pod", pod: mirror, cfg: adoptConfig(), reason: ReasonMirrorPod},
		{name: "no contract", pod: simplePod(nil), cfg: adoptConfig(), reason: ReasonNoAnnotations},
		{name: "no controller", file: "keystone-api", cfg: noController, reason: ReasonAdoptNoController, warning: "--controller=false"},
		{name: "node name", pod: withNode, cfg: adoptConfig(), reason: ReasonAdoptNodeName, warning: "spec.nodeName is set"},
		{name: "two contract containers", pod: several, cfg: adoptConfig(), reason: ReasonAdoptSeveral, warning: "(init, init-2)"},
		{
			name: "nothing the gate can hold", cfg: adoptConfig(), reason: ReasonAdoptNothingToGate,
			pod: contractPod(literal(spec.EnvServices, ""), literal(spec.EnvSockets, "/run/openvswitch/db.sock"), fromField(spec.EnvPodName, "metadata.name")),
		},
		{
			name: "unparsable", cfg: adoptConfig(), reason: ReasonAdoptUnreadable, warning: "do not parse",
			pod: contractPod(literal(spec.EnvServices, "mariadb,,keystone"), literal(spec.EnvJobs, "db-sync")),
		},
		{
			name: "too many items", cfg: adoptConfig(), reason: ReasonAdoptTooMany, warning: "101 dependency items",
			pod: contractPod(literal(spec.EnvServices, strings.Join(services, ","))),
		},
		{
			name: "too many selectors", cfg: adoptConfig(), reason: ReasonAdoptTooMany, warning: "21 dependency items select by labels",
			pod: contractPod(literal(spec.EnvServices, ""), literal(spec.EnvJobsJSON, "["+strings.Join(selectors, ",")+"]")),
		},
		{
			name: "CEL that does not compile", cfg: adoptConfig(), reason: ReasonAdoptUnreadable, warning: spec.EnvCEL + " item 1",
			pod: contractPod(literal(spec.EnvServices, ""), literal(spec.EnvCEL, `[{"apiVersion":"v1","kind":"ConfigMap","name":"c","expression":"object.data."}]`)),
		},
		{
			name: "variable reference", cfg: adoptConfig(), reason: ReasonAdoptUnreadable, warning: "$(...)",
			pod: contractPod(literal(spec.EnvServices, "$(DB_HOST)")),
		},
		{
			name: "another namespace", cfg: adoptConfig(), reason: ReasonAdoptUnreadable, warning: `NAMESPACE is set to "nova"`,
			pod: contractPod(literal(spec.EnvNamespace, "nova"), literal(spec.EnvServices, "mariadb")),
		},
		{
			name: "superseding variable from the API", cfg: adoptConfig(), reason: ReasonAdoptUnreadable, warning: "valueFrom",
			pod: contractPod(literal(spec.EnvServices, ""), literal(spec.EnvJobs, "db-sync"),
				corev1.EnvVar{Name: spec.EnvJobsJSON, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "deps"}, Key: "jobs"}}}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := tt.pod
			if pod == nil {
				pod = readPod(t, filepath.Join("testdata", "adopt", tt.file+".in.yaml"))
			}
			before := pod.DeepCopy()
			got, outcome, err := Mutate(context.Background(), pod, tt.cfg)
			if err != nil {
				t.Fatalf("Mutate: %v (adoption must never deny)", err)
			}
			if outcome.Reason != tt.reason {
				t.Fatalf("outcome %+v, want reason %s", outcome, tt.reason)
			}
			if !reflect.DeepEqual(pod, before) {
				t.Fatal("Mutate modified its input pod")
			}
			switch {
			case tt.warning == "" && len(outcome.Warnings) > 0:
				t.Errorf("warnings %q, want none", outcome.Warnings)
			case tt.warning != "" && (len(outcome.Warnings) != 1 || !strings.Contains(outcome.Warnings[0], tt.warning)):
				t.Errorf("warnings %q, want one with %q", outcome.Warnings, tt.warning)
			}
			switch outcome.Reason {
			case ReasonAdopted:
				checkAdopted(t, tt.file, before, got, tt.cfg)
			case ReasonInjected:
				if !reflect.DeepEqual(got.Spec.InitContainers[len(got.Spec.InitContainers)-1], before.Spec.InitContainers[0]) {
					t.Error("the annotated path changed the pod's own init container")
				}
			default:
				if outcome.Result != ResultSkipped || !reflect.DeepEqual(got, before) {
					t.Errorf("result %s and a changed pod; want the pod unchanged", outcome.Result)
				}
			}
		})
	}
}

// checkAdopted compares an adopted pod with its golden file, checks that
// Dependencies reads it as the container read its env before, and that a second
// Mutate leaves it alone.
func checkAdopted(t *testing.T, file string, before, got *corev1.Pod, cfg Config) {
	t.Helper()
	compareGolden(t, filepath.Join("testdata", "adopt", file+".out.yaml"), got)

	// The pod as it is created: named, in its namespace.
	named := func(p *corev1.Pod) *corev1.Pod {
		p = p.DeepCopy()
		p.Name = "created-0"
		return p
	}
	afterDeps, gated, err := Dependencies(named(got))
	if err != nil || !gated {
		t.Fatalf("Dependencies of the adopted pod: gated %v, %v", gated, err)
	}
	c := before.Spec.InitContainers[slices.IndexFunc(before.Spec.InitContainers, func(c corev1.Container) bool {
		return c.Name == statusOf(t, got).Containers[0]
	})]
	env := map[string]string{spec.EnvNamespace: before.Namespace, spec.EnvPodName: "created-0"}
	for _, e := range c.Env {
		if e.ValueFrom == nil && e.Name != spec.EnvNamespace && e.Name != spec.EnvPodName {
			env[e.Name] = e.Value
		}
	}
	beforeDeps, err := spec.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	sortPods := func(s *spec.Spec) {
		slices.SortFunc(s.Pods, func(a, b spec.PodRef) int { return strings.Compare(mustJSON(t, a), mustJSON(t, b)) })
	}
	sortPods(afterDeps)
	sortPods(beforeDeps)
	if !reflect.DeepEqual(afterDeps, beforeDeps) {
		t.Errorf("Dependencies of the adopted pod differ from what its init container waited for:\n got  %+v\n want %+v", afterDeps, beforeDeps)
	}

	again, outcome, err := Mutate(context.Background(), got, cfg)
	if err != nil || outcome.Reason != ReasonAlreadyInjected || !reflect.DeepEqual(again, got) {
		t.Fatalf("second Mutate: outcome %+v, err %v; want the adopted pod skipped as already injected, unchanged", outcome, err)
	}
}

func statusOf(t *testing.T, pod *corev1.Pod) injectionStatus {
	t.Helper()
	var s injectionStatus
	if err := json.Unmarshal([]byte(pod.Annotations[AnnotationStatus]), &s); err != nil {
		t.Fatalf("status annotation: %v", err)
	}
	return s
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAdoptBlankIsNone: adoption empties the variables it moves to the gate, so
// an empty variable must mean no dependency of its kind to the resolver, as it
// does to the original image; and the same value set must mean some.
func TestAdoptBlankIsNone(t *testing.T) {
	for _, k := range spec.Kinds() {
		t.Run(k.Env, func(t *testing.T) {
			for _, tt := range []struct {
				value string
				none  bool
			}{{"", true}, {"  ", true}, {k.Example, false}} {
				env := map[string]string{k.Env: tt.value, spec.EnvPodName: "p", spec.EnvNamespace: "ns"}
				s, err := spec.FromEnv(func(name string) (string, bool) { v, ok := env[name]; return v, ok })
				if err != nil {
					t.Fatalf("%s=%q: %v", k.Env, tt.value, err)
				}
				if got := spec.Count(s).Items == 0; got != tt.none {
					t.Errorf("%s=%q: %d items, want none %v", k.Env, tt.value, spec.Count(s).Items, tt.none)
				}
			}
		})
	}
}

// TestNamespaceDecidesAdoption: the namespace is read only for a pod adoption
// could take and when the webhook does not adopt everywhere anyway.
func TestNamespaceDecidesAdoption(t *testing.T) {
	annotated := contractPod(literal(spec.EnvServices, "mariadb"))
	annotated.Annotations = map[string]string{AnnotationGate: "true"}
	everywhere := testConfig()
	everywhere.AdoptAllNamespaces = true
	for _, tt := range []struct {
		name string
		pod  *corev1.Pod
		cfg  Config
		want bool
	}{
		{"contract", contractPod(literal(spec.EnvServices, "")), testConfig(), true},
		{"contract from the API", contractPod(fromField(spec.EnvServices, "metadata.name")), testConfig(), true},
		{"every namespace adopted", contractPod(literal(spec.EnvServices, "")), everywhere, false},
		{"annotated", annotated, testConfig(), false},
		{"no contract", simplePod(nil), testConfig(), false},
		{"no pod", nil, testConfig(), false},
	} {
		if got := NamespaceDecidesAdoption(tt.pod, tt.cfg); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestAdoptedStatusWithoutItsContainer: a status annotation of mode adopted that
// names an init container the pod lacks does not make the pod injected.
func TestAdoptedStatusWithoutItsContainer(t *testing.T) {
	for _, tt := range []struct {
		container string
		want      bool
	}{{"init", true}, {"gone", false}} {
		pod := contractPod(literal(spec.EnvServices, ""))
		pod.Annotations = map[string]string{AnnotationStatus: injectionStatus{Version: statusVersion, Mode: ModeAdopted, Containers: []string{tt.container}}.encode()}
		if got := wasInjected(pod); got != tt.want {
			t.Errorf("adopted status naming %q: wasInjected %v, want %v", tt.container, got, tt.want)
		}
	}
}

// FuzzAdopt feeds arbitrary values of the original image's variables to
// adoption. It must never deny, never panic, and leave a pod it does not adopt
// exactly as it was; an adopted pod must read back (Dependencies) as its init
// container read its env, and be left alone by a second call.
func FuzzAdopt(f *testing.F) {
	f.Add("openstack:mariadb,memcached", "db-sync", "", "libvirt", `[{"labels":{"a":"b"},"requireSameNode":true},{"labels":{"c":"d"}}]`, "", true)
	f.Add("", "", `[{"labels":{"application":"glance"}}]`, "", "", `[{"apiVersion":"v1","kind":"ConfigMap","name":"c"}]`, false)
	f.Add("a,,b", "x", "[1]", "a:b:c", "{}", "[", true)
	f.Add("$(DB)", "", "", "", "", "", false)
	f.Fuzz(func(t *testing.T, service, jobs, jobsJSON, daemonSet, pods, customResources string, nodeNameVar bool) {
		env := []corev1.EnvVar{
			fromField(spec.EnvPodName, "metadata.name"), fromField(spec.EnvNamespace, "metadata.namespace"),
			literal(spec.EnvServices, service), literal(spec.EnvJobs, jobs), literal(spec.EnvJobsJSON, jobsJSON),
			literal(spec.EnvDaemonSets, daemonSet), literal(spec.EnvPodsJSON, pods), literal(spec.EnvCustomResources, customResources),
		}
		if nodeNameVar {
			env = append(env, fromField(spec.EnvNodeName, "spec.nodeName"))
		}
		pod := contractPod(env...)
		before := pod.DeepCopy()
		got, outcome, err := Mutate(context.Background(), pod, adoptConfig())
		if err != nil || outcome.Result == ResultDenied {
			t.Fatalf("adoption denied: %+v, %v", outcome, err)
		}
		if outcome.Reason != ReasonAdopted {
			if !reflect.DeepEqual(got, before) {
				t.Fatalf("not adopted (%s) but changed", outcome.Reason)
			}
			return
		}
		named := got.DeepCopy()
		named.Name = "created-0"
		after, gated, err := Dependencies(named)
		if err != nil || !gated {
			t.Fatalf("the adopted pod does not read back: gated %v, %v", gated, err)
		}
		waited := map[string]string{spec.EnvNamespace: pod.Namespace, spec.EnvPodName: named.Name}
		for _, e := range env {
			if e.ValueFrom == nil {
				waited[e.Name] = e.Value
			}
		}
		want, err := spec.FromEnv(func(k string) (string, bool) { v, ok := waited[k]; return v, ok })
		if err != nil {
			t.Fatalf("adopted a container whose env does not parse: %v", err)
		}
		for _, k := range spec.Kinds() {
			if k.Count(after) != k.Count(want) {
				t.Fatalf("%s: %d items read back, %d waited for", k.Env, k.Count(after), k.Count(want))
			}
		}
		again, outcome, err := Mutate(context.Background(), got, adoptConfig())
		if err != nil || outcome.Reason != ReasonAlreadyInjected || !reflect.DeepEqual(again, got) {
			t.Fatalf("second Mutate: %+v, %v", outcome, err)
		}
	})
}
