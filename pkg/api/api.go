// Package api holds the names that entrypoint-webhook's dependency controller
// publishes on pods and that its readers (the kubectl plugin, the tests, the
// demos) look for: the pod condition and its reasons. It imports only the
// Kubernetes API types, so a reader links neither the controller nor
// controller-runtime to know them.
//
// The names the webhook writes on a pod (the annotations, the managed label,
// the scheduling gate of gate mode) are pkg/inject's, which is pure too.
package api

import corev1 "k8s.io/api/core/v1"

// The pod condition the dependency controller keeps.
const (
	ConditionType = corev1.PodConditionType("entrypoint.io/DependenciesReady")
	// ReasonWaiting: some dependency is not ready; the message names each one.
	ReasonWaiting = "Waiting"
	// ReasonReady: every dependency the controller checks is ready.
	ReasonReady = "Ready"
	// ReasonCycle: the pod waits, directly or not, for itself; the message names
	// the cycle's members in order.
	ReasonCycle = "Cycle"
	// ReasonNoReadyNode: a gated pod's same-node dependencies (a DaemonSet's
	// pod, pods with requireSameNode) are not all ready on any one node; the
	// message says where each is ready. The pod keeps its gate.
	ReasonNoReadyNode = "NoReadyNode"
	// ReasonTooManyDependencies: the pod names more dependency items than
	// spec.MaxItems (or selectors than spec.MaxSelectorItems); none is checked.
	ReasonTooManyDependencies = "TooManyDependencies"
)
