package kube

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod's node before it is scheduled. A DaemonSet's pods are bound to their
// node at creation by the DaemonSet controller's required node affinity
// (matchFields metadata.name In [node]), so same-node dependencies can be
// judged for them while they wait unscheduled (the dependency controller's
// node-aware gates, kubectl entrypoint why).

// BoundNode is the one node the pod's required node affinity admits by name:
// every term requires metadata.name In [that node]. "" when no term names a
// node, or they name different ones.
func BoundNode(pod *corev1.Pod) string {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil {
		return ""
	}
	req := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	if req == nil || len(req.NodeSelectorTerms) == 0 {
		return ""
	}
	node := ""
	for _, t := range req.NodeSelectorTerms {
		n := termNode(t)
		if n == "" || node != "" && n != node {
			return ""
		}
		node = n
	}
	return node
}

// termNode is the node a term requires by name; "" when it requires none.
func termNode(t corev1.NodeSelectorTerm) string {
	for _, f := range t.MatchFields {
		if f.Key == metav1.ObjectNameField && f.Operator == corev1.NodeSelectorOpIn && len(f.Values) == 1 {
			return f.Values[0]
		}
	}
	return ""
}
