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

// The annotation the dependency controller keeps on the workload that owns
// waiting pods (a Deployment, through its ReplicaSet; a StatefulSet; a
// DaemonSet; a Job; a CronJob, through its Job), so that tools that show
// workloads and not pods (kubectl get deploy, Argo CD) see why a rollout does
// not progress. It is absent while none of the workload's pods waits.
//
// Its value is one line, at most MaxWaitingBytes, built only from the pods'
// conditions: "<reason>: <n> of <m> pods wait for <blocker>; <blocker>", where
// <reason> is the most severe reason among the waiting pods (see
// UnsatisfiableReasons) and each blocker is the name of a dependency as the
// pods' condition messages give it, e.g.
// "Waiting: 2 of 3 pods wait for service ns/db; job ns/migrate".
const (
	AnnotationWaiting = "entrypoint.io/waiting"
	MaxWaitingBytes   = 1024
)

// UnsatisfiableReasons are the reasons that waiting alone never resolves: a
// dependency cycle, or more dependencies than the controller checks. A health
// check may call a workload whose summary starts with one of them degraded
// rather than progressing.
func UnsatisfiableReasons() []string { return []string{ReasonCycle, ReasonTooManyDependencies} }

// ReasonSeverity orders the reasons of a waiting pod, the most severe first:
// the owner's summary names the first that any of its waiting pods has.
func ReasonSeverity() []string {
	return []string{ReasonCycle, ReasonTooManyDependencies, ReasonNoReadyNode, ReasonWaiting}
}
