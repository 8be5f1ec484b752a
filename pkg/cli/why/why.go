// Package why explains what a pod waits for: each of its dependencies, read the
// way the controller and the resolver read them (inject.Dependencies for pods the
// webhook injected, spec.FromEnv for the DEPENDENCY_* environment of pods that run
// the original image), judged live by the resolver's own rules (pkg/resolve/kube's
// readiness functions) from a few GETs and LISTs, next to the controller's
// condition on the pod.
package why

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// States of a dependency.
const (
	StateReady   = "ready"
	StateWaiting = "waiting"
	// StateUnknown: only the resolver, in the pod, can tell (a socket, a TCP
	// port, an HTTP endpoint), or the API could not be read.
	StateUnknown = "unknown"
)

// Dependency is one thing the pod waits for, and its state now.
type Dependency struct {
	// Name is the resolver's: "service openstack/mariadb".
	Name   string `json:"name"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// Condition is the controller's condition on the pod.
type Condition struct {
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// Report is what one pod waits for.
type Report struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod,omitempty"`
	// Workload, instead of Pod, when it has no pods: the report is about the
	// pods its template would make ("deployment ns/web").
	Workload string `json:"workload,omitempty"`
	// Source says where the dependencies were read: the webhook's injection, or
	// a container's DEPENDENCY_* environment.
	Source string `json:"source"`
	// Gated: in gate mode; HeldByGate: the scheduling gate is still on the pod.
	Gated        bool         `json:"gated,omitempty"`
	HeldByGate   bool         `json:"heldByGate,omitempty"`
	Dependencies []Dependency `json:"dependencies"`
	// Condition is the controller's entrypoint.io/DependenciesReady, if set.
	Condition *Condition `json:"condition,omitempty"`
	// Blocked: a dependency is waiting, or the gate still holds the pod.
	Blocked bool `json:"blocked"`
	// Problem is why the pod's dependencies could not be read, if they could not.
	Problem string `json:"problem,omitempty"`
}

// Explainer reads what it needs through a dynamic client and a REST mapper (for
// custom resource kinds).
type Explainer struct {
	Client dynamic.Interface
	Mapper meta.RESTMapper
}

var (
	podsResource           = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	endpointSlicesResource = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
	jobsResource           = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
	daemonSetsResource     = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}
)

// Sources is where a pod's dependencies are declared: each entry is a place
// ("injected by the webhook", `container "init"'s environment`) and the
// dependencies read there. A pod with neither has none; an injected pod whose
// annotation cannot be read is an error.
type Source struct {
	Where string
	Deps  *spec.Spec
	Gated bool
}

// Sources reads a pod's dependencies as the controller and the resolver do.
func Sources(pod *corev1.Pod) ([]Source, error) {
	if _, ok := pod.Annotations[inject.AnnotationStatus]; ok {
		deps, gated, err := inject.Dependencies(pod)
		if err != nil {
			return nil, err
		}
		return []Source{{Where: "injected by the entrypoint webhook", Deps: deps, Gated: gated}}, nil
	}
	var out []Source
	all := append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...)
	for _, c := range all {
		deps, ok, err := EnvDependencies(pod, c)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, Source{Where: fmt.Sprintf("from the DEPENDENCY_* environment of container %q", c.Name), Deps: deps})
		}
	}
	return out, nil
}

// EnvDependencies reads the DEPENDENCY_* variables of container c of pod, as the
// original image's binary in that container would: ok is false when it sets none
// (or only empty ones, as openstack-helm renders them).
func EnvDependencies(pod *corev1.Pod, c corev1.Container) (deps *spec.Spec, ok bool, err error) {
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
		if strings.HasPrefix(e.Name, "DEPENDENCY_") && e.Value != "" {
			ok = true
		}
	}
	if !ok {
		return nil, false, nil
	}
	// The downward API values the kubelet would give.
	env[spec.EnvNamespace] = pod.Namespace
	env[spec.EnvPodName] = pod.Name
	if pod.Spec.NodeName != "" {
		env[spec.EnvNodeName] = pod.Spec.NodeName
	}
	deps, err = spec.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return nil, true, fmt.Errorf("pod %s/%s, container %q: %w", pod.Namespace, pod.Name, c.Name, err)
	}
	return deps, true, nil
}

// Explain reports on pod.
func (x Explainer) Explain(ctx context.Context, pod *corev1.Pod) Report {
	r := Report{Namespace: pod.Namespace, Pod: pod.Name}
	for _, c := range pod.Status.Conditions {
		if c.Type == api.ConditionType {
			r.Condition = &Condition{Status: string(c.Status), Reason: c.Reason, Message: c.Message}
		}
	}
	for _, g := range pod.Spec.SchedulingGates {
		r.HeldByGate = r.HeldByGate || g.Name == inject.SchedulingGate
	}
	sources, err := Sources(pod)
	if err != nil {
		r.Problem = err.Error()
		r.Blocked = true
		return r
	}
	if len(sources) == 0 {
		r.Source = "none: the pod was not injected by the entrypoint webhook and sets no DEPENDENCY_* variable"
	}
	var where []string
	r.Dependencies = []Dependency{}
	for _, s := range sources {
		where = append(where, s.Where)
		r.Gated = r.Gated || s.Gated
		r.Dependencies = append(r.Dependencies, x.dependencies(ctx, pod, s.Deps)...)
	}
	if len(where) > 0 {
		r.Source = strings.Join(where, "; ")
	}
	r.Blocked = r.HeldByGate
	for _, d := range r.Dependencies {
		r.Blocked = r.Blocked || d.State == StateWaiting
	}
	return r
}

func (x Explainer) dependencies(ctx context.Context, pod *corev1.Pod, deps *spec.Spec) []Dependency {
	var out []Dependency
	add := func(name string, st resolve.Status, err error) {
		switch {
		case err != nil:
			out = append(out, Dependency{Name: name, State: StateUnknown, Reason: "cannot read: " + err.Error()})
		case st.Ready:
			out = append(out, Dependency{Name: name, State: StateReady})
		default:
			out = append(out, Dependency{Name: name, State: StateWaiting, Reason: st.Reason})
		}
	}
	for _, ref := range deps.Services {
		objs, err := x.list(ctx, endpointSlicesResource, ref.Namespace, "kubernetes.io/service-name="+ref.Name, "")
		add((&kube.Service{Ref: ref}).String(), kube.ServiceReadiness(objs, ref.MinReady), err)
	}
	for _, ref := range deps.Jobs {
		sel, field := "", "metadata.name="+ref.Name
		if ref.Name == "" {
			sel, field = labels.SelectorFromSet(ref.Labels).String(), ""
		}
		objs, err := x.list(ctx, jobsResource, ref.Namespace, sel, field)
		st, _ := kube.JobsReadiness(objs)
		add((&kube.Job{Ref: ref}).String(), st, err)
	}
	for _, ref := range deps.Pods {
		name := (&kube.Pod{Ref: ref}).String()
		field, where := "", ""
		if ref.RequireSameNode {
			if pod.Spec.NodeName == "" {
				out = append(out, Dependency{Name: name, State: StateWaiting, Reason: "the pod has no node yet"})
				continue
			}
			field, where = "spec.nodeName="+pod.Spec.NodeName, " on node "+pod.Spec.NodeName
		}
		objs, err := x.list(ctx, podsResource, ref.Namespace, labels.SelectorFromSet(ref.Labels).String(), field)
		add(name, kube.PodsReadiness(objs, where), err)
	}
	for _, ref := range deps.CustomResources {
		name := (&kube.CustomResource{Ref: ref}).String()
		gvr, namespaced, err := x.resource(ref)
		if err != nil {
			out = append(out, Dependency{Name: name, State: StateWaiting, Reason: err.Error()})
			continue
		}
		ns := ""
		if namespaced {
			ns = ref.Namespace
		}
		objs, err := x.list(ctx, gvr, ns, "", "metadata.name="+ref.Name)
		add(name, kube.CustomResourceReadiness(objs, ref), err)
	}
	for _, ref := range deps.Rollouts {
		objs, err := x.list(ctx, kube.WorkloadResource(ref.Kind), ref.Namespace, "", "metadata.name="+ref.Name)
		add((&kube.Rollout{Ref: ref}).String(), kube.RolloutReadiness(objs, ref.Kind), err)
	}
	for _, ref := range deps.Claims {
		objs, err := x.list(ctx, kube.ClaimsResource, ref.Namespace, "", "metadata.name="+ref.Name)
		add((&kube.Claim{Ref: ref}).String(), kube.ClaimReadiness(objs), err)
	}
	for _, ref := range deps.ConfigMaps {
		objs, err := x.list(ctx, kube.ConfigMapsResource, ref.Namespace, "", "metadata.name="+ref.Name)
		add((&kube.ConfigMap{Ref: ref}).String(), kube.KeyReadiness(objs, ref.Key), err)
	}
	for _, ref := range deps.Secrets {
		objs, err := x.list(ctx, kube.SecretsResource, ref.Namespace, "", "metadata.name="+ref.Name)
		for _, o := range objs {
			kube.KeysOnly(o) // values are never needed, nor kept
		}
		add((&kube.Secret{Ref: ref}).String(), kube.KeyReadiness(objs, ref.Key), err)
	}
	for _, name := range deps.CRDs {
		st, err := x.crd(ctx, name)
		add((&kube.CRD{Name: name}).String(), st, err)
	}
	for _, ref := range deps.DaemonSets {
		st, err := x.daemonSet(ctx, pod, ref)
		add((&kube.DaemonSet{Ref: ref}).String(), st, err)
	}
	for _, name := range deps.Containers {
		out = append(out, containerState(pod, name))
	}
	inPod := func(kind string, items []string) {
		for _, it := range items {
			out = append(out, Dependency{Name: kind + " " + it, State: StateUnknown,
				Reason: "only the resolver in the pod can check it (kubectl logs shows its waiting lines)"})
		}
	}
	inPod("socket", deps.Sockets)
	inPod("tcp", deps.TCP)
	inPod("http", deps.HTTP)
	return out
}

// crd is the CRD rule as the controller applies it: the CRD is established,
// and the APIService of its group available; where APIServices cannot be read,
// the CRD alone decides, as in the resolver.
func (x Explainer) crd(ctx context.Context, name string) (resolve.Status, error) {
	objs, err := x.list(ctx, kube.CRDsResource, "", "", "metadata.name="+name)
	if err != nil {
		return resolve.Status{}, err
	}
	st := kube.CRDReadiness(objs)
	if !st.Ready {
		return st, nil
	}
	services, err := x.list(ctx, kube.APIServicesResource, "", "", "")
	if err != nil {
		return st, nil
	}
	return kube.APIServicesReadiness(services, kube.CRDGroup(name)), nil
}

// list lists resource in namespace ("" for all or cluster-scoped) by label and
// field selector, as the resolver's own LISTs do.
func (x Explainer) list(ctx context.Context, gvr schema.GroupVersionResource, namespace, labelSel, fieldSel string) ([]*unstructured.Unstructured, error) {
	l, err := x.Client.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: labelSel, FieldSelector: fieldSel})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", gvr.Resource, err)
	}
	objs := make([]*unstructured.Unstructured, len(l.Items))
	for i := range l.Items {
		objs[i] = &l.Items[i]
	}
	slices.SortFunc(objs, func(a, b *unstructured.Unstructured) int { return strings.Compare(a.GetName(), b.GetName()) })
	return objs, nil
}

func (x Explainer) resource(ref spec.CustomResourceRef) (schema.GroupVersionResource, bool, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return schema.GroupVersionResource{}, false, fmt.Errorf("apiVersion %q: %w", ref.APIVersion, err)
	}
	m, err := x.Mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, gv.Version)
	if err != nil {
		return schema.GroupVersionResource{}, false, fmt.Errorf("kind %s of %s is not served (yet): %v", ref.Kind, ref.APIVersion, err)
	}
	return m.Resource, m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// daemonSet is the DaemonSet rule as the resolver applies it on the pod's node:
// the DaemonSet's pod there is ready. (The resolver's function for it needs its
// own node and is not exported; this reads the same objects.)
func (x Explainer) daemonSet(ctx context.Context, pod *corev1.Pod, ref spec.ObjectRef) (resolve.Status, error) {
	ds, err := x.Client.Resource(daemonSetsResource).Namespace(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return resolve.Status{Reason: "not found"}, nil
	}
	if err != nil {
		return resolve.Status{}, fmt.Errorf("reading daemonset: %w", err)
	}
	if pod.Spec.NodeName == "" {
		return resolve.Status{Reason: "the pod has no node yet, and the DaemonSet's pod on its node decides"}, nil
	}
	pods, err := x.list(ctx, podsResource, ref.Namespace, "", "spec.nodeName="+pod.Spec.NodeName)
	if err != nil {
		return resolve.Status{}, err
	}
	for _, p := range pods {
		owner := metav1.GetControllerOf(p)
		if owner == nil || owner.UID != ds.GetUID() || p.GetDeletionTimestamp() != nil {
			continue
		}
		conds, _, _ := unstructured.NestedSlice(p.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Ready" && m["status"] == "True" {
				return resolve.Status{Ready: true}, nil
			}
		}
		return resolve.Status{Reason: "its pod " + p.GetName() + " on node " + pod.Spec.NodeName + " is not ready"}, nil
	}
	return resolve.Status{Reason: "no pod on node " + pod.Spec.NodeName}, nil
}

// containerState is a sibling container's readiness, from the pod's status.
func containerState(pod *corev1.Pod, name string) Dependency {
	d := Dependency{Name: "container " + name}
	statuses := append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...)
	for _, s := range statuses {
		if s.Name != name {
			continue
		}
		if s.Ready {
			d.State = StateReady
			return d
		}
		d.State, d.Reason = StateWaiting, "not ready"
		return d
	}
	d.State, d.Reason = StateWaiting, "no status yet"
	return d
}

// Selector is the label selector of a workload's pods: its spec.selector.
func Selector(obj *unstructured.Unstructured) (labels.Selector, error) {
	raw, found, err := unstructured.NestedMap(obj.Object, "spec", "selector")
	if err != nil || !found {
		return nil, fmt.Errorf("%s %s has no spec.selector", strings.ToLower(obj.GetKind()), obj.GetName())
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ls); err != nil {
		return nil, fmt.Errorf("%s %s: spec.selector: %w", strings.ToLower(obj.GetKind()), obj.GetName(), err)
	}
	return metav1.LabelSelectorAsSelector(&ls)
}

// TemplatePod is the pod the webhook would make of a workload's pod template, in
// namespace ns, named name: mutated when the template carries entrypoint.io/
// annotations (every image given an entrypoint, since only what the pod waits
// for matters here), as it is otherwise. denied is the webhook's denial, if it
// would deny it.
func TemplatePod(ctx context.Context, ns, name string, tmpl corev1.PodTemplateSpec) (pod *corev1.Pod, denied error) {
	pod = &corev1.Pod{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
	pod.Namespace, pod.Name = ns, name
	hasOurs := false
	for k := range pod.Annotations {
		hasOurs = hasOurs || strings.HasPrefix(k, inject.AnnotationPrefix)
	}
	if !hasOurs {
		return pod, nil
	}
	mutated, outcome, err := inject.Mutate(ctx, pod, inject.Config{Image: "kubectl-entrypoint", Controller: true, ImageConfig: anyImage{}})
	if err != nil {
		return pod, fmt.Errorf("the webhook would deny its pods: %w", err)
	}
	if outcome.Result == inject.ResultInjected {
		return mutated, nil
	}
	return pod, nil
}

// anyImage stands in for the registry: every image has an entrypoint.
type anyImage struct{}

func (anyImage) ImageConfig(context.Context, inject.ImageRef) (inject.ImageConfig, error) {
	return inject.ImageConfig{Entrypoint: []string{"/entrypoint"}}, nil
}

// ExplainTemplate reports on the pods a workload would have, from its pod
// template, when it has none to explain (not created yet, or denied).
func (x Explainer) ExplainTemplate(ctx context.Context, kind, ns, name string, tmpl corev1.PodTemplateSpec) Report {
	workload := kind + " " + ns + "/" + name
	pod, denied := TemplatePod(ctx, ns, name, tmpl)
	if denied != nil {
		return Report{Namespace: ns, Workload: workload, Source: "its pod template",
			Dependencies: []Dependency{}, Problem: denied.Error(), Blocked: true}
	}
	r := x.Explain(ctx, pod)
	r.Pod, r.Workload, r.Condition = "", workload, nil
	r.Source = "its pod template, " + r.Source
	return r
}
