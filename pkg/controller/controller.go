// Package controller is the dependency controller: for every pod the webhook
// injected (found by its label), it keeps the pod condition
// entrypoint.io/DependenciesReady saying which dependencies it still waits for and
// why, in the resolver's own words; it removes the scheduling gate of gate mode
// once the gated dependencies are ready; it reports dependency cycles; and it
// sums up, on the workload that owns waiting pods, why they wait (the
// annotation entrypoint.io/waiting, owners.go).
//
// It watches each kind it needs once (EndpointSlices, Jobs, Pods, Deployments,
// StatefulSets, DaemonSets, PersistentVolumeClaims, ConfigMaps, CRDs and
// APIServices, each custom resource kind, and Secrets only when its operator
// opts in), started when the first pod needs it, never once per pod, and decides
// readiness with the resolver's own rules (pkg/resolve/kube).
package controller

import (
	"errors"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/access"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// The pod condition the controller keeps, defined in pkg/api for its readers;
// the names here are the controller's own shorthand for them.
const (
	ConditionType             = api.ConditionType
	ReasonWaiting             = api.ReasonWaiting
	ReasonReady               = api.ReasonReady
	ReasonCycle               = api.ReasonCycle
	ReasonNoReadyNode         = api.ReasonNoReadyNode
	ReasonTooManyDependencies = api.ReasonTooManyDependencies
)

// Name is the controller's name in logs, metrics and Events.
const Name = "entrypoint-dependencies"

// LeaseName is the Lease of the controller's leader election.
const LeaseName = "kubernetes-entrypoint-controller"

// DependenciesFunc reads the dependencies of an injected pod, and whether it is
// gated (inject.Dependencies).
type DependenciesFunc func(pod *corev1.Pod) (deps *spec.Spec, gated bool, err error)

// Options configure the controller.
type Options struct {
	// Dependencies reads an injected pod's dependencies; required.
	Dependencies DependenciesFunc
	// Dynamic is the client of the dependency informers; required.
	Dynamic dynamic.Interface
	// Workers is how many pods are reconciled at once; 0 means DefaultWorkers.
	Workers int
	// Cycles reports whether a pod sits in a dependency cycle; nil: never.
	Cycles CycleFinder
	// SecretDependencies lets the controller watch Secrets (their keys only: the
	// values are dropped before anything is cached) and so wait for secret
	// dependencies; off, they are left to the resolver in the pod, as the
	// webhook leaves them (inject.Config.SecretDependencies).
	SecretDependencies bool
	// AllowedResources are the resources besides the contract's own kinds
	// (plural.group, or *.group for every resource of a group) that
	// custom-resource and CEL dependencies may name; any other kind is never
	// read for a pod (see allow.go).
	AllowedResources []string
	// RememberedJobGrace is how old a pod must be before the remembered
	// completion of a Job deleted since satisfies it (see jobmemory.go); 0
	// means DefaultRememberedJobGrace.
	RememberedJobGrace time.Duration
	// Access answers whether a pod's ServiceAccount may read a dependency
	// outside its namespace; nil: a checker on the manager's config.
	Access *access.Checker
	// InformerIdle is how long the informer of a kind no pod waits for is kept
	// before it is stopped; 0 means DefaultInformerIdle.
	InformerIdle time.Duration
	// OwnerWriteInterval is the least time between two writes of one
	// workload's api.AnnotationWaiting (owners.go); 0 means
	// DefaultOwnerWriteInterval.
	OwnerWriteInterval time.Duration
	// WaitingGrace is how long a gated pod may wait before its Waiting
	// condition is written (coalesce.go): one released sooner never gets one.
	// 0 means DefaultWaitingGrace; negative, no grace.
	WaitingGrace time.Duration
	// Metrics, when set, receives the controller's metrics.
	Metrics *Metrics
	Log     logr.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// woken, when set (by tests), is told of the pods each change of what they
	// wait for wakes.
	woken func(pods []types.NamespacedName)
}

// DefaultWorkers reconcile pods at once: releases are API writes, each waiting
// for its answer, so the release rate is at most workers / write latency. With
// writes at 50 to 100 ms on a loaded API server, 64 keep it busy (make
// bench-gate: 32 released about 520 pods/s, 128 about 590, the API server's own
// limit on the 2-core machine).
const DefaultWorkers = 64

// DefaultInformerIdle keeps a kind's informer this long after the last pod
// that waited for it: pods of one rollout come and go in waves, and a new
// informer lists the whole kind again.
const DefaultInformerIdle = 5 * time.Minute

// CycleFinder tells whether a pod sits in a dependency cycle, and names its members.
type CycleFinder interface {
	// CycleOf returns the cycle the pod (namespace/name) sits in, rendered for
	// people, and whether there is one.
	CycleOf(namespace, name string) (string, bool)
}

func (o Options) validate() error {
	var errs []error
	if o.Dependencies == nil {
		errs = append(errs, errors.New("controller: Options.Dependencies is required"))
	}
	if o.Dynamic == nil {
		errs = append(errs, errors.New("controller: Options.Dynamic is required"))
	}
	return errors.Join(errs...)
}

// ManagedPods selects the pods the webhook injected.
func ManagedPods() labels.Selector {
	return labels.SelectorFromSet(labels.Set{inject.LabelManaged: "true"})
}

// CacheByObject is what the manager's cache must be told so that its Pod informer
// holds only the managed pods (one label-selected watch), each reduced to what the
// controller and the cycle detector read (slimPod).
func CacheByObject() map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&corev1.Pod{}: {Label: ManagedPods(), Transform: slimPod},
	}
}

// slimPod keeps of a pod its metadata (without managed fields), its scheduling
// gates, node and required node affinity, each container's name and environment (its dependencies), and
// its phase and conditions: a pod as injected is several times that, and ten
// thousand gated pods are cached at once. The gate's removal and the condition
// are patches that name only these fields.
func slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // e.g. a deleted pod's tombstone
	}
	slim := &corev1.Pod{TypeMeta: pod.TypeMeta, ObjectMeta: pod.ObjectMeta}
	slim.ManagedFields = nil
	slim.Spec.NodeName = pod.Spec.NodeName
	slim.Spec.ServiceAccountName = pod.Spec.ServiceAccountName // whose rights the dependencies are judged with
	slim.Spec.SchedulingGates = pod.Spec.SchedulingGates
	slim.Spec.Affinity = slimAffinity(pod.Spec.Affinity) // narrowed by node-aware gates
	slim.Spec.Containers = namesAndEnv(pod.Spec.Containers)
	slim.Spec.InitContainers = namesAndEnv(pod.Spec.InitContainers)
	slim.Status.Phase = pod.Status.Phase
	slim.Status.Conditions = pod.Status.Conditions
	return slim, nil
}

func namesAndEnv(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{Name: c.Name, Env: c.Env}
	}
	return out
}

// slimAffinity keeps of an affinity its required node affinity, and whether
// the affinity and its node affinity exist at all (so that narrowing patches
// the right path): the rest is never read.
func slimAffinity(a *corev1.Affinity) *corev1.Affinity {
	if a == nil {
		return nil
	}
	if a.NodeAffinity == nil {
		return &corev1.Affinity{}
	}
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution}}
}
