package controller

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Node-aware gates. A gated pod's same-node dependencies (a DaemonSet's pod on
// its node, pods with requireSameNode) are judged on the one node the pod may
// run on when its required node affinity names it (a DaemonSet's pods: the
// DaemonSet controller sets matchFields metadata.name In [node]); otherwise the
// controller finds the nodes where all of them are ready and, in the write that
// removes the gate, narrows the pod's required node affinity to those nodes, as
// the API server lets a gated pod's be narrowed (KEP-3838).

// maxNarrowedNodes bounds the node names the controller writes into one pod:
// one term per node (a node-name requirement holds exactly one name), about 70
// bytes each. Past it the pod is narrowed to the first ones by name: it still
// runs where its dependencies are ready, on fewer candidate nodes.
const maxNarrowedNodes = 64

// requiredOf is the required node affinity of a; nil when there is none.
func requiredOf(a *corev1.Affinity) *corev1.NodeSelector {
	if a == nil || a.NodeAffinity == nil {
		return nil
	}
	return a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
}

// admitsByName tells whether the term's own node-name requirements let node
// through; its label requirements are the scheduler's to judge (the controller
// reads no Nodes).
func admitsByName(t corev1.NodeSelectorTerm, node string) bool {
	for _, f := range t.MatchFields {
		if f.Key != metav1.ObjectNameField {
			continue
		}
		switch f.Operator {
		case corev1.NodeSelectorOpIn:
			if !slices.Contains(f.Values, node) {
				return false
			}
		case corev1.NodeSelectorOpNotIn:
			if slices.Contains(f.Values, node) {
				return false
			}
		}
	}
	return true
}

// nameIs is the requirement that the node be node.
func nameIs(node string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}
}

// narrowed is required (the pod's required node affinity, nil for none)
// narrowed to nodes (sorted), as the API server lets a gated pod's be changed:
//
//   - with no terms, any may be set: one term per node (at most
//     maxNarrowedNodes), each requiring that node by name, so the pod may run
//     on any of them, its nodeSelector still applying;
//   - with terms, none may be added or removed, and each may only gain
//     requirements; a node-name requirement holds one name, so every term gains
//     metadata.name In [n] for the same n: the first of nodes that some term's
//     own node-name requirements admit. A term with no requirement at all
//     matches no node and may gain none: it stays as it is.
//
// used are the nodes the result admits; none (and nil) when no node of nodes
// is admitted by the terms.
func narrowed(required *corev1.NodeSelector, nodes []string) (out *corev1.NodeSelector, used []string) {
	if len(nodes) == 0 {
		return nil, nil
	}
	if required == nil || len(required.NodeSelectorTerms) == 0 {
		used = nodes[:min(len(nodes), maxNarrowedNodes)]
		out = &corev1.NodeSelector{}
		for _, n := range used {
			out.NodeSelectorTerms = append(out.NodeSelectorTerms, corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{nameIs(n)}})
		}
		return out, slices.Clone(used)
	}
	pick := ""
	for _, n := range nodes {
		for _, t := range required.NodeSelectorTerms {
			if !emptyTerm(t) && admitsByName(t, n) {
				pick = n
				break
			}
		}
		if pick != "" {
			break
		}
	}
	if pick == "" {
		return nil, nil
	}
	out = required.DeepCopy()
	for i := range out.NodeSelectorTerms {
		if !emptyTerm(out.NodeSelectorTerms[i]) {
			out.NodeSelectorTerms[i].MatchFields = append(out.NodeSelectorTerms[i].MatchFields, nameIs(pick))
		}
	}
	return out, []string{pick}
}

func emptyTerm(t corev1.NodeSelectorTerm) bool {
	return len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0
}

// narrowOps are the JSON patch operations that set the pod's required node
// affinity to required, at the deepest path the pod already has, so that the
// rest of its affinity (pod affinity, preferred terms) is left as it is.
func narrowOps(pod *corev1.Pod, required *corev1.NodeSelector) []map[string]any {
	a := pod.Spec.Affinity
	switch {
	case a == nil:
		return []map[string]any{{"op": "add", "path": "/spec/affinity",
			"value": corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: required}}}}
	case a.NodeAffinity == nil:
		return []map[string]any{{"op": "add", "path": "/spec/affinity/nodeAffinity",
			"value": corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: required}}}
	}
	// "add" of an existing member replaces it (RFC 6902).
	return []map[string]any{{"op": "add", "path": "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution", "value": required}}
}

// sameNodeSpec is the part of deps judged on the pod's node: its DaemonSets and
// its pods with requireSameNode; nil when it has none.
func sameNodeSpec(deps *spec.Spec) *spec.Spec {
	out := &spec.Spec{Namespace: deps.Namespace, PodName: deps.PodName, DaemonSets: deps.DaemonSets}
	for _, p := range deps.Pods {
		if p.RequireSameNode {
			out.Pods = append(out.Pods, p)
		}
	}
	if len(out.DaemonSets) == 0 && len(out.Pods) == 0 {
		return nil
	}
	return out
}

// onNodeItems are the items of deps kube.Items judges on node ("" when not
// known: their node lookups then carry a problem).
func onNodeItems(deps *spec.Spec, node string) []kube.Item {
	var out []kube.Item
	for _, it := range kube.Items(deps, kube.LookupOptions{NodeName: node}) {
		if it.Place == kube.OnNode {
			out = append(out, it)
		}
	}
	return out
}

// itemNodes is where one same-node dependency of a pod is ready.
type itemNodes struct {
	// text names it as the resolver does.
	text string
	// nodes are the nodes where it is ready, sorted.
	nodes []string
}

// readyOnAll are the nodes, sorted, where every item is ready.
func readyOnAll(items []itemNodes) []string {
	if len(items) == 0 {
		return nil
	}
	out := slices.Clone(items[0].nodes)
	for _, it := range items[1:] {
		out = slices.DeleteFunc(out, func(n string) bool { _, found := slices.BinarySearch(it.nodes, n); return !found })
	}
	return out
}

// maxNodesShown bounds the node names a condition lists per dependency.
const maxNodesShown = 3

// noReadyNode says why no node suits the pod: where each same-node dependency
// is ready, or that it is ready on none.
func noReadyNode(items []itemNodes) string {
	parts := make([]string, 0, len(items))
	for _, it := range items {
		parts = append(parts, blocker(it.text, "ready on "+nodeList(it.nodes)))
	}
	msg := "no node where every same-node dependency is ready"
	if len(items) == 1 {
		msg = "no node where the same-node dependency is ready"
	}
	return msg + " (" + strings.Join(parts, "; ") + ")"
}

// nodeList names a few nodes and counts the rest: "node n1", "nodes n1, n2
// and 4 more", "no node".
func nodeList(nodes []string) string {
	switch len(nodes) {
	case 0:
		return "no node"
	case 1:
		return "node " + nodes[0]
	}
	shown := nodes[:min(len(nodes), maxNodesShown)]
	s := "nodes " + strings.Join(shown, ", ")
	if n := len(nodes) - len(shown); n > 0 {
		s += fmt.Sprintf(" and %d more", n)
	}
	return s
}

// nodeOf is the node a pod object of the informer runs on; "" when none yet.
func nodeOf(pod *unstructured.Unstructured) string {
	n, _, _ := unstructured.NestedString(pod.Object, "spec", "nodeName")
	return n
}
