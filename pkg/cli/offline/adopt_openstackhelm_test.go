package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/openstackhelm"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/manifest"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// minGatedShare is the least share of the node-free dependency items of the
// rendered openstack-helm charts that adoption must move to the gate.
const minGatedShare = 0.90

// TestAdoptOpenstackHelm runs every rendered openstack-helm chart through inject
// as a namespace labelled entrypoint.io/adopt=true would have it, and wants:
// every workload with a node-free or same-node dependency adopted, at least
// minGatedShare of all node-free items gated and every same-node one (node-aware
// gates), the controller reading each adopted pod's
// dependencies as its init container read them, and nothing else of the pod
// changed: no application container, no init container's image or command.
// go test -v prints the share.
func TestAdoptOpenstackHelm(t *testing.T) {
	cfg := inject.Config{Image: "registry.example/kubernetes-entrypoint:1", Controller: true, NamespaceAdopted: true}
	var nodeFree, gated, sameNode, gatedSameNode, workloads, adopted int
	for _, chart := range openstackhelm.Charts() {
		docs := chartDocuments(t, chart)
		before := map[*manifest.Document]*corev1.Pod{}
		for _, d := range docs {
			if pod, ok, err := d.Pod(); ok && err == nil {
				before[d] = pod
			}
		}
		results, err := Inject(context.Background(), docs, Options{Config: cfg, Namespace: openstackhelm.Namespace})
		if err != nil {
			t.Fatalf("chart %s: %v", chart, err)
		}
		for _, r := range results {
			what := chart + " " + r.Doc.Kind() + " " + r.Doc.Name()
			pod := before[r.Doc]
			if pod == nil {
				t.Fatalf("%s: no pod before inject", what)
			}
			workloads++
			free, same := nodeFreeItems(t, what, pod)
			nodeFree += free
			sameNode += same
			if r.Outcome.Reason != inject.ReasonAdopted {
				if free+same > 0 {
					t.Errorf("%s: %d node-free and %d same-node items, not adopted: %+v", what, free, same, r.Outcome)
				}
				continue
			}
			adopted++
			movedFree, movedSame := gatedItems(t, what, r.Mutated)
			gated += movedFree
			gatedSameNode += movedSame
			if movedFree > free || movedSame != same {
				t.Errorf("%s: %d node-free and %d same-node items gated, of %d and %d; want at most the first, all the second", what, movedFree, movedSame, free, same)
			}
			assertOnlyAdoptionChanged(t, what, pod, r.Mutated)
			assertSameDependencies(t, what, pod, r.Mutated)
		}
	}
	if nodeFree == 0 {
		t.Fatal("the rendered charts have no node-free dependency item: the test data is gone")
	}
	share := float64(gated) / float64(nodeFree)
	t.Logf("openstack-helm (%d charts): %d of %d workloads adopted; %d of %d node-free dependency items gated (%.1f%%), and %d of %d same-node ones",
		len(openstackhelm.Charts()), adopted, workloads, gated, nodeFree, 100*share, gatedSameNode, sameNode)
	if share < minGatedShare {
		t.Errorf("%.1f%% of the node-free items gated, want at least %.0f%%", 100*share, 100*minGatedShare)
	}
}

// chartDocuments are the rendered chart's objects as kubectl-entrypoint reads
// them.
func chartDocuments(t *testing.T, chart string) []*manifest.Document {
	t.Helper()
	objs, err := openstackhelm.Objects(chart)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, o := range objs {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	docs, err := manifest.Parse(chart+".yaml", b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// contractIndex is the index of pod's one init container with DEPENDENCY_SERVICE.
func contractIndex(t *testing.T, what string, pod *corev1.Pod) int {
	t.Helper()
	found := -1
	for i, c := range pod.Spec.InitContainers {
		for _, e := range c.Env {
			if e.Name == spec.EnvServices {
				if found >= 0 {
					t.Fatalf("%s: two init containers carry the contract", what)
				}
				found = i
			}
		}
	}
	if found < 0 {
		t.Fatalf("%s: no init container carries the contract", what)
	}
	return found
}

// contractSpec parses c's env as the resolver does, in pod's namespace.
func contractSpec(t *testing.T, what string, c corev1.Container, namespace string) *spec.Spec {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	env[spec.EnvNamespace], env[spec.EnvPodName] = namespace, "pod-0"
	s, err := spec.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("%s: init container %s: %v", what, c.Name, err)
	}
	return s
}

// nodeFreeItems counts the items of pod's contract container that gate mode may
// hold a pod for, by the kinds table: node-free kinds, and pods on any node.
func nodeFreeItems(t *testing.T, what string, pod *corev1.Pod) (free, sameNode int) {
	t.Helper()
	return countItems(contractSpec(t, what, pod.Spec.InitContainers[contractIndex(t, what, pod)], pod.Namespace))
}

// countItems counts the items of s that need no node and those judged on a
// node (DaemonSets, pods with requireSameNode), from the kinds table.
func countItems(s *spec.Spec) (free, sameNode int) {
	for _, k := range spec.Kinds() {
		// A kind that supersedes another counts the same items: once.
		switch {
		case k.Supersedes != "":
		case k.NodeFree:
			free += k.Count(s)
		case k.SameNode && k.Env != spec.EnvPodsJSON:
			sameNode += k.Count(s)
		}
	}
	for _, p := range s.Pods {
		if p.RequireSameNode {
			sameNode++
		} else {
			free++
		}
	}
	return free, sameNode
}

// gatedItems counts the items the status annotation of an adopted pod gates,
// node-free and same-node apart.
func gatedItems(t *testing.T, what string, pod *corev1.Pod) (free, sameNode int) {
	t.Helper()
	var status struct {
		Mode       string   `json:"mode"`
		Containers []string `json:"containers"`
		Gated      []struct{ Name, Value string }
	}
	if err := json.Unmarshal([]byte(pod.Annotations[inject.AnnotationStatus]), &status); err != nil {
		t.Fatalf("%s: status annotation: %v", what, err)
	}
	if status.Mode != "adopted" || len(status.Containers) != 1 || status.Containers[0] != pod.Spec.InitContainers[contractIndex(t, what, pod)].Name {
		t.Errorf("%s: status %+v, want mode adopted naming the contract's init container", what, status)
	}
	gated := &spec.Spec{Namespace: pod.Namespace}
	for _, g := range status.Gated {
		k, ok := spec.KindOf(g.Name)
		if !ok {
			t.Fatalf("%s: gated variable %s is not of the contract", what, g.Name)
		}
		if err := k.Parse(gated, g.Value); err != nil {
			t.Fatalf("%s: gated %s: %v", what, g.Name, err)
		}
	}
	return countItems(gated)
}

// assertOnlyAdoptionChanged: the adopted pod is the pod but for its labels,
// annotations, scheduling gates and the values of the contract container's
// DEPENDENCY_* variables.
func assertOnlyAdoptionChanged(t *testing.T, what string, before, after *corev1.Pod) {
	t.Helper()
	rest := after.DeepCopy()
	rest.Labels, rest.Annotations, rest.Spec.SchedulingGates = before.Labels, before.Annotations, before.Spec.SchedulingGates
	if len(rest.Spec.InitContainers) == len(before.Spec.InitContainers) {
		i := contractIndex(t, what, before)
		env, was := rest.Spec.InitContainers[i].Env, before.Spec.InitContainers[i].Env
		for j := range env {
			if j < len(was) && env[j].Name == was[j].Name && strings.HasPrefix(env[j].Name, "DEPENDENCY_") {
				env[j].Value = was[j].Value
			}
		}
	}
	if !reflect.DeepEqual(rest, before) {
		b, _ := yaml.Marshal(before)
		a, _ := yaml.Marshal(after)
		t.Errorf("%s: adoption changed more than labels, annotations, gates and DEPENDENCY_* values:\nbefore:\n%s\nafter:\n%s", what, b, a)
	}
	if after.Labels[inject.LabelManaged] != "true" || len(after.Spec.SchedulingGates) != len(before.Spec.SchedulingGates)+1 {
		t.Errorf("%s: adopted without the label %s or the scheduling gate", what, inject.LabelManaged)
	}
}

// assertSameDependencies: what the controller and kubectl entrypoint why read
// of the adopted pod (inject.Dependencies) is what its init container waited for.
func assertSameDependencies(t *testing.T, what string, before, after *corev1.Pod) {
	t.Helper()
	created := after.DeepCopy()
	created.Name = "pod-0"
	got, gated, err := inject.Dependencies(created)
	if err != nil || !gated {
		t.Fatalf("%s: Dependencies of the adopted pod: gated %v, %v", what, gated, err)
	}
	want := contractSpec(t, what, before.Spec.InitContainers[contractIndex(t, what, before)], before.Namespace)
	for _, k := range spec.Kinds() {
		if g, w := k.Count(got), k.Count(want); g != w {
			t.Errorf("%s: %s: %d items read back from the adopted pod, %d in its init container", what, k.Env, g, w)
		}
	}
}
