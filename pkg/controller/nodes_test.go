package controller

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func fieldReq(op corev1.NodeSelectorOperator, node string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: metav1.ObjectNameField, Operator: op, Values: []string{node}}
}

func labelReq(key string, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: corev1.NodeSelectorOpIn, Values: values}
}

// The pod's required node affinity narrowed to the nodes where its same-node
// dependencies are ready: only what the API server lets a gated pod gain.
func TestNarrowed(t *testing.T) {
	term := func(exprs []corev1.NodeSelectorRequirement, fields ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: exprs, MatchFields: fields}
	}
	sel := func(terms ...corev1.NodeSelectorTerm) *corev1.NodeSelector {
		return &corev1.NodeSelector{NodeSelectorTerms: terms}
	}
	in := func(n string) corev1.NodeSelectorRequirement { return fieldReq(corev1.NodeSelectorOpIn, n) }
	ssd := []corev1.NodeSelectorRequirement{labelReq("disk", "ssd")}
	zoneA := []corev1.NodeSelectorRequirement{labelReq("zone", "a")}
	var many []string
	var manyTerms []corev1.NodeSelectorTerm
	for i := range maxNarrowedNodes + 10 {
		n := fmt.Sprintf("node-%03d", i)
		many = append(many, n)
		if i < maxNarrowedNodes {
			manyTerms = append(manyTerms, term(nil, in(n)))
		}
	}
	tests := []struct {
		name     string
		required *corev1.NodeSelector
		nodes    []string
		want     *corev1.NodeSelector
		used     []string
	}{
		{"no affinity (a nodeSelector alone is no term): one term per node",
			nil, []string{"n1", "n2"}, sel(term(nil, in("n1")), term(nil, in("n2"))), []string{"n1", "n2"}},
		{"no terms: as without affinity", sel(), []string{"n1"}, sel(term(nil, in("n1"))), []string{"n1"}},
		{"past the bound: the first nodes by name", nil, many, sel(manyTerms...), many[:maxNarrowedNodes]},
		{"a term with matchExpressions: it gains the first node, its expressions kept",
			sel(term(ssd)), []string{"n1", "n2"}, sel(term(ssd, in("n1"))), []string{"n1"}},
		{"a term with matchFields: the node its own fields admit",
			sel(term(nil, fieldReq(corev1.NodeSelectorOpNotIn, "n1"))), []string{"n1", "n2", "n3"},
			sel(term(nil, fieldReq(corev1.NodeSelectorOpNotIn, "n1"), in("n2"))), []string{"n2"}},
		{"a term naming a node none is ready on: nothing",
			sel(term(nil, in("n9"))), []string{"n1", "n2"}, nil, nil},
		{"several terms: each gains the same node, the first some term admits",
			sel(term(ssd, in("n3")), term(zoneA)), []string{"n1", "n3"},
			sel(term(ssd, in("n3"), in("n1")), term(zoneA, in("n1"))), []string{"n1"}},
		{"an empty term matches no node and may gain nothing: left as it is",
			sel(term(nil), term(ssd)), []string{"n1"}, sel(term(nil), term(ssd, in("n1"))), []string{"n1"}},
		{"only empty terms: nothing", sel(term(nil)), []string{"n1"}, nil, nil},
		{"no node: nothing", nil, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.required.DeepCopy()
			got, used := narrowed(tt.required, tt.nodes)
			if !reflect.DeepEqual(got, tt.want) || !reflect.DeepEqual(used, tt.used) {
				t.Errorf("narrowed:\n got %+v (%v)\nwant %+v (%v)", got, used, tt.want, tt.used)
			}
			if !reflect.DeepEqual(before, tt.required) {
				t.Errorf("narrowed changed its argument: %+v", tt.required)
			}
		})
	}
}

// The patch sets the required node affinity at the deepest path the pod has,
// so that its pod affinity, preferred terms and nodeSelector stay as they are.
func TestNarrowOps(t *testing.T) {
	required := &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{nameIs("n1")}}}}
	preferred := []corev1.PreferredSchedulingTerm{{Weight: 1, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{labelReq("disk", "ssd")}}}}
	podAffinity := &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{TopologyKey: "zone"}}}
	tests := []struct {
		name     string
		affinity *corev1.Affinity
		want     *corev1.Affinity
	}{
		{"no affinity", nil, &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: required}}},
		{"pod affinity only", &corev1.Affinity{PodAffinity: podAffinity},
			&corev1.Affinity{PodAffinity: podAffinity, NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: required}}},
		{"preferred node affinity only", &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: preferred}},
			&corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: preferred, RequiredDuringSchedulingIgnoredDuringExecution: required}}},
		{"required terms replaced by their narrowing", &corev1.Affinity{PodAffinity: podAffinity, NodeAffinity: &corev1.NodeAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: preferred,
			RequiredDuringSchedulingIgnoredDuringExecution:  &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{}}}}},
			&corev1.Affinity{PodAffinity: podAffinity, NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: preferred, RequiredDuringSchedulingIgnoredDuringExecution: required}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}, Affinity: tt.affinity,
				Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
			doc, err := json.Marshal(pod)
			if err != nil {
				t.Fatal(err)
			}
			ops, err := json.Marshal(narrowOps(slimPodOf(t, pod), required))
			if err != nil {
				t.Fatal(err)
			}
			patch, err := jsonpatch.DecodePatch(ops)
			if err != nil {
				t.Fatal(err)
			}
			out, err := patch.Apply(doc)
			if err != nil {
				t.Fatalf("applying %s: %v", ops, err)
			}
			var got corev1.Pod
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Spec.Affinity, tt.want) || got.Spec.NodeSelector["disk"] != "ssd" {
				t.Errorf("after %s:\n got %+v, nodeSelector %v\nwant %+v", ops, got.Spec.Affinity, got.Spec.NodeSelector, tt.want)
			}
		})
	}
}

// slimPodOf is the pod as the controller's cache holds it, which narrowOps reads.
func slimPodOf(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	slim, err := slimPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	return slim.(*corev1.Pod)
}

func TestReadyOnAll(t *testing.T) {
	tests := []struct {
		name  string
		items []itemNodes
		want  []string
	}{
		{"none", nil, nil},
		{"one", []itemNodes{{nodes: []string{"a", "b"}}}, []string{"a", "b"}},
		{"intersection", []itemNodes{{nodes: []string{"a", "b", "c"}}, {nodes: []string{"b", "c", "d"}}, {nodes: []string{"c", "b"}[1:]}}, []string{"b"}},
		{"disjoint", []itemNodes{{nodes: []string{"a"}}, {nodes: []string{"b"}}}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readyOnAll(tt.items); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("readyOnAll = %#v, want %#v", got, tt.want)
			}
		})
	}
	if got := nodeList([]string{"a", "b", "c", "d", "e"}); got != "nodes a, b, c and 2 more" {
		t.Errorf("nodeList = %q", got)
	}
}
