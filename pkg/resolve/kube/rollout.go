package kube

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

var (
	deploymentsResource  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	statefulSetsResource = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
)

// WorkloadResource is the resource of a rollout dependency's workload kind
// (spec.WorkloadDeployment, ...).
func WorkloadResource(kind string) schema.GroupVersionResource {
	switch kind {
	case spec.WorkloadStatefulSet:
		return statefulSetsResource
	case spec.WorkloadDaemonSet:
		return daemonSetsResource
	}
	return deploymentsResource
}

// Rollout is ready when the workload's rollout is complete, as kubectl rollout
// status decides it.
type Rollout struct {
	Client *Client
	Ref    spec.WorkloadRef
}

func (d *Rollout) String() string { return "rollout " + d.Ref.String() }

// Wait waits until the Rollout dependency is ready, reporting each change of its status.
func (d *Rollout) Wait(ctx context.Context, report func(resolve.Status)) error {
	src := source{resource: WorkloadResource(d.Ref.Kind), namespace: d.Ref.Namespace, fieldSelector: "metadata.name=" + d.Ref.Name}
	return d.Client.followOne(ctx, src, report, func(objects []*unstructured.Unstructured) resolve.Status {
		return RolloutReadiness(objects, d.Ref.Kind)
	})
}

// RolloutReadiness is the rollout rule over the workload named by the dependency
// (zero or one object of kind): the rules of kubectl rollout status
// (k8s.io/kubectl/pkg/polymorphichelpers), with two differences. A Deployment
// past its progress deadline is still waited for (a fix may be rolled out) and
// says so. And where kubectl refuses to judge a StatefulSet or DaemonSet that
// updates OnDelete, it is ready once every desired replica is ready (a
// StatefulSet) or available (a DaemonSet): its pods change only when deleted, so
// "updated" never becomes true by itself. The resolver and the dependency
// controller both decide with it.
func RolloutReadiness(objects []*unstructured.Unstructured, kind string) resolve.Status {
	if len(objects) == 0 {
		return resolve.Status{Reason: "not found"}
	}
	obj := objects[0]
	switch kind {
	case spec.WorkloadStatefulSet:
		return statefulSetRollout(obj)
	case spec.WorkloadDaemonSet:
		return daemonSetRollout(obj)
	}
	return deploymentRollout(obj)
}

func waiting(format string, args ...any) resolve.Status {
	return resolve.Status{Reason: fmt.Sprintf(format, args...)}
}

// notObserved is the reason while the workload's controller has not seen its
// latest spec: its status still describes the one before.
func notObserved(obj *unstructured.Unstructured) (resolve.Status, bool) {
	generation := nestedInt(obj.Object, "metadata", "generation")
	observed := nestedInt(obj.Object, "status", "observedGeneration")
	if generation > observed {
		return waiting("spec update not observed yet (generation %d, observed %d)", generation, observed), true
	}
	return resolve.Status{}, false
}

func deploymentRollout(d *unstructured.Unstructured) resolve.Status {
	if st, ok := notObserved(d); ok {
		return st
	}
	if _, reason, message := condition(d.Object, "Progressing"); reason == "ProgressDeadlineExceeded" {
		return waiting("exceeded its progress deadline: %s", message)
	}
	replicas, hasReplicas := nestedIntOK(d.Object, "spec", "replicas")
	updated := nestedInt(d.Object, "status", "updatedReplicas")
	total := nestedInt(d.Object, "status", "replicas")
	available := nestedInt(d.Object, "status", "availableReplicas")
	switch {
	case hasReplicas && updated < replicas:
		return waiting("%d of %d replicas updated", updated, replicas)
	case total > updated:
		return waiting("%d old replicas pending termination", total-updated)
	case available < updated:
		return waiting("%d of %d updated replicas available", available, updated)
	}
	return resolve.Status{Ready: true}
}

func statefulSetRollout(s *unstructured.Unstructured) resolve.Status {
	// kubectl also waits while observedGeneration is 0: the controller has not
	// written any status yet.
	if nestedInt(s.Object, "status", "observedGeneration") == 0 {
		return waiting("spec update not observed yet (generation %d, observed 0)", nestedInt(s.Object, "metadata", "generation"))
	}
	if st, ok := notObserved(s); ok {
		return st
	}
	replicas, hasReplicas := nestedIntOK(s.Object, "spec", "replicas")
	ready := nestedInt(s.Object, "status", "readyReplicas")
	if hasReplicas && ready < replicas {
		return waiting("%d of %d replicas ready", ready, replicas)
	}
	strategy := nestedString(s.Object, "spec", "updateStrategy", "type")
	if strategy == "OnDelete" {
		return resolve.Status{Ready: true}
	}
	updated := nestedInt(s.Object, "status", "updatedReplicas")
	if _, hasRolling := nestedMap(s.Object, "spec", "updateStrategy", "rollingUpdate"); hasRolling {
		// Pods below the partition keep the old revision on purpose: done once
		// those at or above it are updated.
		partition, hasPartition := nestedIntOK(s.Object, "spec", "updateStrategy", "rollingUpdate", "partition")
		if hasReplicas && hasPartition && updated < replicas-partition {
			return waiting("%d of %d replicas updated (partition %d)", updated, replicas-partition, partition)
		}
		return resolve.Status{Ready: true}
	}
	if rev := nestedString(s.Object, "status", "updateRevision"); rev != nestedString(s.Object, "status", "currentRevision") {
		return waiting("%d replicas at revision %s, rolling update not complete", updated, rev)
	}
	return resolve.Status{Ready: true}
}

func daemonSetRollout(ds *unstructured.Unstructured) resolve.Status {
	if st, ok := notObserved(ds); ok {
		return st
	}
	desired := nestedInt(ds.Object, "status", "desiredNumberScheduled")
	available := nestedInt(ds.Object, "status", "numberAvailable")
	if nestedString(ds.Object, "spec", "updateStrategy", "type") == "OnDelete" {
		if available < desired {
			return waiting("%d of %d pods available", available, desired)
		}
		return resolve.Status{Ready: true}
	}
	updated := nestedInt(ds.Object, "status", "updatedNumberScheduled")
	switch {
	case updated < desired:
		return waiting("%d of %d pods updated", updated, desired)
	case available < desired:
		return waiting("%d of %d updated pods available", available, desired)
	}
	return resolve.Status{Ready: true}
}
