package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func fieldReq(op corev1.NodeSelectorOperator, node string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: metav1.ObjectNameField, Operator: op, Values: []string{node}}
}

func labelReq(key string, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: corev1.NodeSelectorOpIn, Values: values}
}

// A DaemonSet's pod is bound to its node by the DaemonSet controller's term
// (kubernetes pkg/controller/daemon/util: matchFields metadata.name In [node]).
func TestBoundNode(t *testing.T) {
	required := func(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
	}
	on := func(node string, more ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: more, MatchFields: []corev1.NodeSelectorRequirement{fieldReq(corev1.NodeSelectorOpIn, node)}}
	}
	tests := []struct {
		name     string
		affinity *corev1.Affinity
		want     string
	}{
		{"a DaemonSet's pod", required(on("n1")), "n1"},
		{"every term names the same node", required(on("n1"), on("n1", labelReq("disk", "ssd"))), "n1"},
		{"no affinity", nil, ""},
		{"pod affinity only", &corev1.Affinity{PodAffinity: &corev1.PodAffinity{}}, ""},
		{"terms naming two nodes", required(on("n1"), on("n2")), ""},
		{"a term naming none", required(on("n1"), corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{labelReq("disk", "ssd")}}), ""},
		{"NotIn names no node", required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{fieldReq(corev1.NodeSelectorOpNotIn, "n1")}}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BoundNode(&corev1.Pod{Spec: corev1.PodSpec{Affinity: tt.affinity}}); got != tt.want {
				t.Errorf("BoundNode = %q, want %q", got, tt.want)
			}
		})
	}
}
