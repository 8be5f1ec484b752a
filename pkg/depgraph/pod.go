package depgraph

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Pod is one managed pod as the graph sees it: where it is, what it is labelled,
// which group it belongs to, and what it waits for.
type Pod struct {
	Namespace string
	Name      string
	Labels    map[string]string
	// Owner is the pod's group as it is shown in messages, "deployment ns/api"
	// (see PodFrom). Empty means the pod is a group of its own, "pod ns/name".
	Owner string

	Services   []spec.ObjectRef // with or without a minimum (name#n): the same Service's pods
	Jobs       []spec.JobRef
	Pods       []spec.PodRef
	DaemonSets []spec.ObjectRef
	// Rollouts wait for a Deployment's, StatefulSet's or DaemonSet's pods.
	Rollouts []spec.WorkloadRef
	// Objects are the pods and workloads named by custom-resource and CEL
	// items (ObjectsOf): the pod waits for their pods too.
	Objects []Object
}

// Object is a pod or a workload that a custom-resource or CEL item names. Items
// naming anything else (a ConfigMap, a custom kind) wait for no pod, so they
// cannot close a cycle and are not kept.
type Object struct {
	// CEL tells a CEL item ("cel apps/v1 Deployment ns/api") from a custom
	// resource ("deployment ns/api (apps/v1)"): the two are named differently.
	CEL        bool
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
}

// ObjectsOf lists the pods and workloads the custom-resource and CEL items of
// deps name (see Object).
func ObjectsOf(deps *spec.Spec) []Object {
	var out []Object
	for _, ref := range deps.CustomResources {
		if o := (Object{APIVersion: ref.APIVersion, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}); o.Workload() != "" || o.IsPod() {
			out = append(out, o)
		}
	}
	for _, ref := range deps.CEL {
		if o := (Object{CEL: true, APIVersion: ref.APIVersion, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}); o.Workload() != "" || o.IsPod() {
			out = append(out, o)
		}
	}
	return out
}

// name is the dependency's name as the resolver writes it (kube.CEL,
// kube.CustomResource).
func (o Object) name() string {
	if o.CEL {
		return "cel " + o.APIVersion + " " + o.Kind + " " + o.Namespace + "/" + o.Name
	}
	return strings.ToLower(o.Kind) + " " + o.Namespace + "/" + o.Name + " (" + o.APIVersion + ")"
}

// Workload is the group of the workload o names, as PodFrom names groups
// ("deployment ns/api"); "" when o is no Deployment, StatefulSet, DaemonSet or
// Job.
func (o Object) Workload() string {
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil {
		return ""
	}
	switch {
	case gv.Group == appsv1.GroupName && (o.Kind == "Deployment" || o.Kind == "StatefulSet" || o.Kind == "DaemonSet"),
		gv.Group == batchv1.GroupName && o.Kind == "Job":
		return strings.ToLower(o.Kind) + " " + o.Namespace + "/" + o.Name
	}
	return ""
}

// IsPod tells that o names a pod.
func (o Object) IsPod() bool { return o.APIVersion == "v1" && o.Kind == "Pod" }

// Dependency is the dependency's name, as the resolver writes it: "cel apps/v1
// Deployment ns/api", "deployment ns/api (apps/v1)".
func (o Object) Dependency() string { return o.name() }

// Service is what the graph needs of a Service: its selector picks the pods that
// serve it, in its own namespace. A nil or empty selector (a Service whose
// endpoints are managed by hand) is served by no managed pod.
type Service struct {
	Namespace string
	Name      string
	Selector  map[string]string
}

// PodFrom takes what the graph needs from a pod and its parsed dependencies (nil:
// none). The group is the pod's controller: a ReplicaSet whose name ends in the
// pod's pod-template-hash shows as its Deployment, "deployment ns/api"; any other
// controller as "<kind in lower case> ns/name"; a pod without one as "pod ns/name".
func PodFrom(pod *corev1.Pod, deps *spec.Spec) Pod {
	p := Pod{
		Namespace: pod.Namespace,
		Name:      pod.Name,
		Labels:    pod.Labels,
		Owner:     ownerGroup(pod),
	}
	if deps != nil {
		p.Services = deps.Services
		p.Jobs = deps.Jobs
		p.Pods = deps.Pods
		p.DaemonSets = deps.DaemonSets
		p.Rollouts = deps.Rollouts
		p.Objects = ObjectsOf(deps)
	}
	return p
}

func ownerGroup(pod *corev1.Pod) string {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return podGroup(pod.Namespace, pod.Name)
	}
	kind, name := strings.ToLower(ref.Kind), ref.Name
	if isAppsReplicaSet(ref) {
		// The Deployment controller names its ReplicaSets "<deployment>-<hash>" and
		// labels their pods with the hash; without that suffix the ReplicaSet is
		// someone else's and keeps its own name.
		hash := pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		if base, ok := strings.CutSuffix(name, "-"+hash); ok && hash != "" && base != "" {
			kind, name = "deployment", base
		}
	}
	return kind + " " + pod.Namespace + "/" + name
}

func isAppsReplicaSet(ref *metav1.OwnerReference) bool {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && gv.Group == appsv1.GroupName && ref.Kind == "ReplicaSet"
}

func podGroup(namespace, name string) string { return "pod " + namespace + "/" + name }

// group is the pod's group, itself when Owner is empty.
func (p *Pod) group() string {
	if p.Owner == "" {
		return podGroup(p.Namespace, p.Name)
	}
	return p.Owner
}
