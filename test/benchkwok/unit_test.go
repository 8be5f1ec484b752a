package benchkwok

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// TestGatedPod checks the pods the scenarios create are what the webhook
// leaves in gate mode, and that the scheduler-alone copy differs only by the gate.
func TestGatedPod(t *testing.T) {
	tests := []struct {
		name     string
		deps     map[string]string
		affinity *corev1.Affinity
		wantDep  string // in the status annotation
	}{
		{name: "service", deps: map[string]string{"dependency-service": "svc-7"}, wantDep: "svc-7"},
		{name: "daemonset pinned to a node", deps: map[string]string{"dependency-daemonset": "agent"}, affinity: onNode("kwok-node-3"), wantDep: "agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod, err := gatedPod("ns", "pod-1", tt.deps, tt.affinity)
			if err != nil {
				t.Fatal(err)
			}
			if !hasGate(pod) {
				t.Fatalf("no scheduling gate %s: %v", inject.SchedulingGate, pod.Spec.SchedulingGates)
			}
			if pod.Labels[inject.LabelManaged] == "" {
				t.Errorf("no managed label %s: %v", inject.LabelManaged, pod.Labels)
			}
			if st := pod.Annotations[inject.AnnotationStatus]; !strings.Contains(st, tt.wantDep) {
				t.Errorf("status annotation %q does not name %q", st, tt.wantDep)
			}
			if tt.affinity != nil && pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields[0].Values[0] != "kwok-node-3" {
				t.Errorf("node affinity lost: %+v", pod.Spec.Affinity)
			}
			plain := ungated(pod)
			if hasGate(plain) || !hasGate(pod) {
				t.Fatalf("ungated copy: gate %v, original: gate %v", hasGate(plain), hasGate(pod))
			}
			plain.Spec.SchedulingGates = pod.Spec.SchedulingGates
			if !equalYAML(t, plain, pod) {
				t.Errorf("the ungated copy differs by more than the gate")
			}
		})
	}
}

func equalYAML(t *testing.T, a, b any) bool {
	t.Helper()
	ya, err := yaml.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	yb, err := yaml.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ya) == string(yb)
}

// TestAgentPod checks the DaemonSet's pods are found by the controller's rule:
// controlled by the DaemonSet, on their node, matching its selector.
func TestAgentPod(t *testing.T) {
	ds := agentDaemonSet("ns")
	ds.UID = types.UID("uid-1")
	for _, node := range []string{"kwok-node-0", "kwok-node-499"} {
		pod := agentPod(ds, node)
		ref := metav1.GetControllerOf(pod)
		if ref == nil || ref.UID != ds.UID || ref.Kind != "DaemonSet" || ref.Name != ds.Name {
			t.Errorf("%s: controller reference %+v, want DaemonSet %s (%s)", node, ref, ds.Name, ds.UID)
		}
		sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		if pod.Spec.NodeName != node || pod.Namespace != "ns" || !sel.Matches(labels.Set(pod.Labels)) {
			t.Errorf("%s: pod on %q in %q, labels %v", node, pod.Spec.NodeName, pod.Namespace, pod.Labels)
		}
	}
}

// TestFakeNode checks kwok manages the nodes (its selector) and the scheduler
// finds room on them.
func TestFakeNode(t *testing.T) {
	n := fakeNode("kwok-node-1")
	if n.Annotations[kwokAnnotation] != kwokValue {
		t.Errorf("annotations %v lack %s=%s, which kwok is started to manage", n.Annotations, kwokAnnotation, kwokValue)
	}
	if got := n.Status.Allocatable.Pods().Value(); got != podsPerNode {
		t.Errorf("allocatable pods %d, want %d", got, podsPerNode)
	}
	if nodeReady(n) {
		t.Error("a node is Ready before kwok made it so")
	}
}

func TestReadSettings(t *testing.T) {
	tests := []struct {
		nodes, pods string
		want        settings
		wantErr     string
	}{
		{want: settings{nodes: 500, pods: 10000}},
		{nodes: "20", pods: "200", want: settings{nodes: 20, pods: 200}},
		{pods: "50000", want: settings{nodes: 500, pods: 50000}},
		{pods: "150", wantErr: "multiple of 100"},
		{nodes: "-1", wantErr: "BENCH_KWOK_NODES"},
		{pods: "many", wantErr: "BENCH_KWOK_PODS"},
	}
	for _, tt := range tests {
		t.Run(tt.nodes+"/"+tt.pods, func(t *testing.T) {
			t.Setenv("BENCH_KWOK_NODES", tt.nodes)
			t.Setenv("BENCH_KWOK_PODS", tt.pods)
			got, err := readSettings()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestKwokStages checks the stages are YAML documents kwok reads: a Stage each,
// for Nodes and Pods.
func TestKwokStages(t *testing.T) {
	var kinds []string
	for doc := range strings.SplitSeq(kwokStages, "\n---\n") {
		var stage struct {
			Kind string `json:"kind"`
			Spec struct {
				ResourceRef struct{ Kind string } `json:"resourceRef"`
				Next        map[string]any        `json:"next"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &stage); err != nil {
			t.Fatalf("stage %q: %v", doc, err)
		}
		if stage.Kind != "Stage" || len(stage.Spec.Next) == 0 {
			t.Errorf("not a Stage with a next step: %q", doc)
		}
		kinds = append(kinds, stage.Spec.ResourceRef.Kind)
	}
	if strings.Join(kinds, ",") != "Node,Pod,Pod" {
		t.Errorf("stages for %v, want Node,Pod,Pod", kinds)
	}
}
