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
	"maps"
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
	// CheckedBy, for a gated pod only: CheckedByGate when the scheduling gate
	// holds the pod for it (the controller judges it), else what in the pod
	// checks it ("the resolver", `init container "init"`).
	CheckedBy string `json:"checkedBy,omitempty"`
}

// CheckedByGate is Dependency.CheckedBy of what the scheduling gate holds a pod for.
const CheckedByGate = "the gate"

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

// Source is one place where a pod's dependencies are declared ("injected by
// the webhook", `container "init"'s environment`) and the dependencies read
// there. A pod with neither has none; an injected pod whose annotation cannot
// be read is an error.
type Source struct {
	Where string
	Deps  *spec.Spec
	Gated bool
	// Gate is the part of Deps the scheduling gate holds the pod for (nil when
	// none), and InPod what checks the rest: "the resolver", or an adopted
	// pod's init container.
	Gate  *spec.Spec
	InPod string
}

// Sources reads a pod's dependencies as the controller and the resolver do.
func Sources(pod *corev1.Pod) ([]Source, error) {
	if _, ok := pod.Annotations[inject.AnnotationStatus]; ok {
		deps, gated, err := inject.Dependencies(pod)
		if err != nil {
			return nil, err
		}
		gate, err := inject.GatedDependencies(pod)
		if err != nil {
			return nil, err
		}
		where, inPod := "injected by the entrypoint webhook", "the resolver"
		if inject.GateOnly(pod) {
			// No resolver: the gate holds the pod for every dependency.
			where, inPod = "injected by the entrypoint webhook, gate only (no resolver: the controller judges every dependency)", CheckedByGate
		}
		if name, ok := inject.AdoptedContainer(pod); ok {
			where = fmt.Sprintf("adopted by the entrypoint webhook (its gate holds what the controller can judge, init container %q the rest)", name)
			inPod = fmt.Sprintf("init container %q", name)
		}
		return []Source{{Where: where, Deps: deps, Gated: gated, Gate: gate, InPod: inPod}}, nil
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
		deps := x.dependencies(ctx, pod, s.Deps)
		if s.Gated {
			markCheckedBy(deps, pod, s)
		}
		r.Dependencies = append(r.Dependencies, deps...)
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

// markCheckedBy says, for each of deps (read from source s of a gated pod),
// whether the gate holds the pod for it or what in the pod checks it.
func markCheckedBy(deps []Dependency, pod *corev1.Pod, s Source) {
	held := map[string]bool{}
	if s.Gate != nil {
		for _, it := range kube.Items(s.Gate, kube.LookupOptions{NodeName: nodeOf(pod)}) {
			held[it.Text] = true
		}
	}
	for i := range deps {
		deps[i].CheckedBy = s.InPod
		if held[deps[i].Name] {
			deps[i].CheckedBy = CheckedByGate
		}
	}
}

// nodeOf is the pod's node: where it was scheduled, or, before that, the one
// node its required node affinity binds it to (a DaemonSet's pod), so that
// same-node dependencies are judged where the controller judges them.
func nodeOf(pod *corev1.Pod) string {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName
	}
	return kube.BoundNode(pod)
}

// dependencies judges each item of deps (kube.Items) by its lookups, in the
// contract's order: the items only the resolver can check are unknown, and
// the configs it writes are left out.
func (x Explainer) dependencies(ctx context.Context, pod *corev1.Pod, deps *spec.Spec) []Dependency {
	var out []Dependency
	for _, it := range kube.Items(deps, kube.LookupOptions{NodeName: nodeOf(pod)}) {
		switch it.Place {
		case kube.Rendered:
		case kube.InPod:
			out = append(out, Dependency{Name: it.Text, State: StateUnknown,
				Reason: "only the resolver in the pod can check it (kubectl logs shows its waiting lines)"})
		default:
			out = append(out, x.judge(ctx, pod, it))
		}
	}
	return out
}

// judge reads and judges the lookups of it in order, up to the first that is
// not ready; an optional lookup that cannot be read leaves the decision to the
// earlier ones.
func (x Explainer) judge(ctx context.Context, pod *corev1.Pod, it kube.Item) Dependency {
	d := Dependency{Name: it.Text, State: StateReady}
	for i, l := range it.Lookups {
		if l.Problem != "" {
			d.State, d.Reason = StateWaiting, l.Problem
			return d
		}
		var objs []*unstructured.Unstructured
		if it.Place == kube.OwnPod {
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pod)
			if err != nil {
				d.State, d.Reason = StateUnknown, "cannot read: "+err.Error()
				return d
			}
			objs = []*unstructured.Unstructured{{Object: obj}}
		} else {
			var problem string
			var err error
			objs, problem, err = x.read(ctx, l)
			switch {
			case problem != "":
				d.State, d.Reason = StateWaiting, problem
				return d
			case err != nil && l.Optional && i > 0:
				return d
			case err != nil:
				d.State, d.Reason = StateUnknown, "cannot read: "+err.Error()
				return d
			}
		}
		if l.KeysOnly {
			for _, o := range objs {
				kube.KeysOnly(o) // values are never needed, nor kept
			}
		}
		if st := l.Evaluate(objs); !st.Ready {
			d.State, d.Reason = StateWaiting, st.Reason
			return d
		}
	}
	return d
}

// read reads what l names, as the resolver's own GETs and LISTs do; problem
// says why its kind cannot be read at all (not served).
func (x Explainer) read(ctx context.Context, l kube.Lookup) (objs []*unstructured.Unstructured, problem string, err error) {
	gvr, ns := l.Resource, l.Namespace
	if l.Discovered() {
		var namespaced bool
		gvr, namespaced, err = x.resource(l.APIVersion, l.ObjectKind)
		if err != nil {
			return nil, err.Error(), nil
		}
		if !namespaced {
			ns = ""
		}
	}
	if l.Get {
		obj, err := x.Client.Resource(gvr).Namespace(ns).Get(ctx, l.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil, "", nil
		case err != nil:
			return nil, "", fmt.Errorf("reading %s: %w", strings.ToLower(l.ObjectKind), err)
		}
		return []*unstructured.Unstructured{obj}, "", nil
	}
	field := l.FieldSelector
	if !l.Listed() {
		field = "metadata.name=" + l.Name
	}
	objs, err = x.list(ctx, gvr, ns, l.LabelSelector(), field)
	return objs, "", err
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

func (x Explainer) resource(apiVersion, kind string) (schema.GroupVersionResource, bool, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return schema.GroupVersionResource{}, false, fmt.Errorf("apiVersion %q: %w", apiVersion, err)
	}
	m, err := x.Mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: kind}, gv.Version)
	if err != nil {
		return schema.GroupVersionResource{}, false, fmt.Errorf("kind %s of %s is not served (yet): %w", kind, apiVersion, err)
	}
	return m.Resource, m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// containerState is a sibling container's readiness, from the pod's status.
func containerState(pod *corev1.Pod, name string) Dependency {
	items := kube.Items(&spec.Spec{Containers: []string{name}}, kube.LookupOptions{})
	return Explainer{}.judge(context.Background(), pod, items[0])
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

// Summary is what a workload's pods wait for, dependency by dependency.
type Summary struct {
	// Workload is "deployment ns/web".
	Workload string `json:"workload"`
	Pods     int    `json:"pods"`
	Blocked  int    `json:"blocked"`
	// Blockers are what blocks the pods, those that block the most first.
	Blockers []Blocker `json:"blockers"`
	// Conditions counts the pods by the reason of their condition
	// (ConditionNotSet when there is none).
	Conditions []ReasonCount `json:"conditions"`
	// Unknown are the dependencies only the resolver in the pod can check.
	Unknown []string `json:"unknown,omitempty"`
	// Reports are the pods' own.
	Reports []Report `json:"reports"`
}

// Blocker is something that blocks Pods of a workload's pods, and the
// different reasons given for it (at most maxReasons).
type Blocker struct {
	Name    string   `json:"name"`
	Pods    int      `json:"pods"`
	Reasons []string `json:"reasons"`
}

// ReasonCount is how many pods have a condition with Reason.
type ReasonCount struct {
	Reason string `json:"reason"`
	Pods   int    `json:"pods"`
}

// Names of the blockers that are not a dependency, and of no condition.
const (
	// BlockerGate: the scheduling gate holds the pod although no dependency
	// waits now (the controller has not released it yet).
	BlockerGate = "the scheduling gate"
	// BlockerUnreadable: the pod's dependencies could not be read.
	BlockerUnreadable = "its dependencies, unreadable"
	// ConditionNotSet is the reason counted for a pod without the condition.
	ConditionNotSet = "not set"
)

// maxReasons is how many different reasons a Blocker keeps.
const maxReasons = 3

// Summarize sums up the reports of workload's pods.
func Summarize(workload string, reports []Report) Summary {
	s := Summary{Workload: workload, Pods: len(reports), Blockers: []Blocker{}, Conditions: []ReasonCount{}, Reports: reports}
	blockers := map[string]*Blocker{}
	var order []string
	block := func(name, reason string) {
		b, ok := blockers[name]
		if !ok {
			b = &Blocker{Name: name, Reasons: []string{}}
			blockers[name] = b
			order = append(order, name)
		}
		b.Pods++
		if reason != "" && len(b.Reasons) < maxReasons && !slices.Contains(b.Reasons, reason) {
			b.Reasons = append(b.Reasons, reason)
		}
	}
	conditions := map[string]int{}
	for _, r := range reports {
		reason := ConditionNotSet
		if r.Condition != nil {
			reason = r.Condition.Reason
		}
		conditions[reason]++
		if r.Blocked {
			s.Blocked++
		}
		if r.Problem != "" {
			block(BlockerUnreadable, r.Problem)
		}
		waiting := false
		for _, d := range r.Dependencies {
			switch d.State {
			case StateWaiting:
				waiting = true
				block(d.Name, d.Reason)
			case StateUnknown:
				if !slices.Contains(s.Unknown, d.Name) {
					s.Unknown = append(s.Unknown, d.Name)
				}
			}
		}
		if r.HeldByGate && !waiting && r.Problem == "" {
			block(BlockerGate, "no dependency waits now: the controller has not released the pod yet")
		}
	}
	for _, name := range order {
		s.Blockers = append(s.Blockers, *blockers[name])
	}
	slices.SortStableFunc(s.Blockers, func(a, b Blocker) int { return b.Pods - a.Pods })
	for _, reason := range slices.Sorted(maps.Keys(conditions)) {
		s.Conditions = append(s.Conditions, ReasonCount{Reason: reason, Pods: conditions[reason]})
	}
	return s
}
