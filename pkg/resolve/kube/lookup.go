package kube

import (
	"context"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Exported resources of the kinds' lookups, besides those of objects.go.
var (
	EndpointSlicesResource = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
	JobsResource           = jobsResource
	PodsResource           = podsResource
	DaemonSetsResource     = daemonSetsResource
)

// ServiceNameLabel is the label of a Service's EndpointSlices that names it.
const ServiceNameLabel = "kubernetes.io/service-name"

// Place is where an item of a pod's dependencies can be judged.
type Place int

const (
	// InAPI is judged from the API alone, without the pod's node; the dependency
	// controller can wait for it before the pod is scheduled.
	InAPI Place = iota
	// OnNode is judged from the API, but only once the pod's node is known (a
	// DaemonSet's pod there, pods required on the same node).
	OnNode
	// OwnPod is judged from the pod's own object (its containers' readiness).
	OwnPod
	// InPod is checked only by the resolver in the pod, not through the API (a socket, a
	// TCP port, an HTTP endpoint): not a lookup.
	InPod
	// Rendered is nothing to wait for from outside; the resolver writes it (a
	// config file): not a lookup.
	Rendered
)

// Item is one dependency of a pod, as everything outside the resolver reads it:
// its lookups, judged in order, and ready when each of them is.
type Item struct {
	// Kind is the variable of its kind of the contract (spec.Kind.Env).
	Kind string
	// Text names it as the resolver does: "service openstack/mariadb".
	Text  string
	Place Place
	// Lookups are what to read and how to judge it; none for InPod and
	// Rendered. A lookup's rule may use what the item's earlier lookups saw, so
	// a consumer that judges the item as a whole judges them in order and stops
	// at the first that is not ready.
	Lookups []Lookup
	// waiter is the resolver's dependency for the item; nil for InPod and
	// Rendered items, which pkg/resolve/local waits for.
	waiter func(*Client) resolve.Dependency
}

// Waiter is the resolver's dependency for the item through c; nil when the
// item is not waited for through the API (InPod, Rendered).
func (it Item) Waiter(c *Client) resolve.Dependency {
	if it.waiter == nil {
		return nil
	}
	return it.waiter(c)
}

// Lookup is one read of the API that decides (part of) an item, and the rule
// that judges what it reads.
type Lookup struct {
	// Resource is what to read. It is zero when the resource is resolved
	// through discovery from APIVersion and ObjectKind (custom resources and
	// CEL items name any served kind); Namespace then applies only to a
	// namespaced kind.
	Resource schema.GroupVersionResource
	// APIVersion and ObjectKind are the kind of the objects read, when one
	// object is named: "v1", "PersistentVolumeClaim".
	APIVersion, ObjectKind string
	// Namespace is "" for a cluster-scoped resource.
	Namespace string
	// Name names the one object read, unless Selector or NameLabel is set.
	Name string
	// NameLabel, when set, selects the objects whose label NameLabel is Name
	// (a Service's EndpointSlices by kubernetes.io/service-name).
	NameLabel string
	// Selector, when set, selects the objects by labels instead of by name.
	Selector labels.Selector
	// FieldSelector narrows a selection further (spec.nodeName=...).
	FieldSelector string
	// Get: read by GET of the named object alone; a missing object reads as
	// none.
	Get bool
	// Public: what the rule reads is shown to every authenticated user by API
	// discovery anyway (whether a CRD's resources and an APIService's group
	// are served), so nobody needs to be asked whether the pod may read it.
	Public bool
	// Values: the rule compares values beyond the keys of a ConfigMap or
	// Secret (the fields of a custom-resource item, a CEL expression); a cache
	// that keeps keys only cannot judge it.
	Values bool
	// KeysOnly: the objects' values must be dropped as soon as read (Secrets).
	KeysOnly bool
	// Optional: where it cannot be read, the item's earlier lookups decide
	// alone (APIServices of a CRD's group).
	Optional bool
	// Problem, when set, is why the lookup cannot be made at all (a CEL
	// expression that does not compile, a pod that has no node yet); Evaluate
	// is then nil, and the fields above only say what it is about.
	Problem string
	// Evaluate applies the resolver's rule to the objects read, sorted by name.
	Evaluate func(objects []*unstructured.Unstructured) resolve.Status
}

// Listed tells whether the lookup selects objects (and so needs list) rather
// than reading one object by name (get).
func (l Lookup) Listed() bool { return l.Selector != nil || l.NameLabel != "" }

// Discovered tells whether the resource is resolved through discovery.
func (l Lookup) Discovered() bool { return l.Resource.Empty() }

// LabelSelector is the lookup's label selector as text: "" when it reads by
// name.
func (l Lookup) LabelSelector() string {
	switch {
	case l.NameLabel != "":
		return l.NameLabel + "=" + l.Name
	case l.Selector != nil:
		return l.Selector.String()
	}
	return ""
}

// Target is the one object the lookup names, as a custom-resource reference;
// false when it selects objects or has no kind.
func (l Lookup) Target() (spec.CustomResourceRef, bool) {
	if l.Listed() || l.ObjectKind == "" {
		return spec.CustomResourceRef{}, false
	}
	return spec.CustomResourceRef{APIVersion: l.APIVersion, Kind: l.ObjectKind, Namespace: l.Namespace, Name: l.Name}, true
}

// LookupOptions is what turning dependencies into lookups needs to know.
type LookupOptions struct {
	// NodeName is the pod's node, "" when not known (yet): OnNode items then
	// have a lookup with a Problem.
	NodeName string
	// Compile compiles CEL expressions; celcheck.Prepare when nil.
	Compile func(expression string) (*celcheck.Program, error)
	// Eval evaluates them; nil evaluates each time.
	Eval *celcheck.Evaluator
}

// kindLookups is what the package knows of one kind of the contract.
type kindLookups struct {
	// items are the kind's items of deps, in order.
	items func(deps *spec.Spec, o LookupOptions) []Item
	// sameAs is the kind whose items these are ("" for its own): the JSON
	// Jobs share the Jobs' items.
	sameAs string
}

// registry is every kind of the contract, by its variable.
var registry = map[string]kindLookups{
	spec.EnvServices:        {items: serviceItems},
	spec.EnvJobs:            {items: jobItems},
	spec.EnvJobsJSON:        {sameAs: spec.EnvJobs},
	spec.EnvDaemonSets:      {items: daemonSetItems},
	spec.EnvContainers:      {items: containerItems},
	spec.EnvPodsJSON:        {items: podItems},
	spec.EnvCustomResources: {items: customResourceItems},
	spec.EnvCEL:             {items: celItems},
	spec.EnvRollouts:        {items: rolloutItems},
	spec.EnvClaims:          {items: claimItems},
	spec.EnvConfigMaps:      {items: configMapItems},
	spec.EnvSecrets:         {items: secretItems},
	spec.EnvCRDs:            {items: crdItems},
	spec.EnvConfigs:         {items: localItems(spec.EnvConfigs, "config", Rendered, func(s *spec.Spec) []string { return s.Configs })},
	spec.EnvSockets:         {items: localItems(spec.EnvSockets, "socket", InPod, func(s *spec.Spec) []string { return s.Sockets })},
	spec.EnvTCP:             {items: localItems(spec.EnvTCP, "tcp", InPod, func(s *spec.Spec) []string { return s.TCP })},
	spec.EnvHTTP:            {items: localItems(spec.EnvHTTP, "http", InPod, func(s *spec.Spec) []string { return s.HTTP })},
}

// Registered tells whether kind env has its lookups here, and whether they
// are its own (false: another kind's items, see spec.Kind.Supersedes).
func Registered(env string) (registered, own bool) {
	k, ok := registry[env]
	return ok, ok && k.sameAs == ""
}

// Items are the items of deps, kind by kind in the contract's order (the
// order of spec.Kinds), each with its lookups.
func Items(deps *spec.Spec, o LookupOptions) []Item {
	var out []Item
	for _, k := range spec.Kinds() {
		if r, ok := registry[k.Env]; ok && r.items != nil {
			out = append(out, r.items(deps, o)...)
		}
	}
	return out
}

func serviceItems(deps *spec.Spec, _ LookupOptions) []Item {
	var out []Item
	for _, ref := range deps.Services {
		out = append(out, Item{Kind: spec.EnvServices, Text: (&Service{Ref: ref}).String(),
			Lookups: []Lookup{{Resource: EndpointSlicesResource, Namespace: ref.Namespace, Name: ref.Name, NameLabel: ServiceNameLabel,
				Evaluate: func(objects []*unstructured.Unstructured) resolve.Status {
					return ServiceReadiness(objects, ref.MinReady)
				}}},
			waiter: func(c *Client) resolve.Dependency { return &Service{Client: c, Ref: ref} }})
	}
	return out
}

func jobItems(deps *spec.Spec, _ LookupOptions) []Item {
	var out []Item
	for _, ref := range deps.Jobs {
		l := Lookup{Resource: jobsResource, APIVersion: "batch/v1", ObjectKind: "Job", Namespace: ref.Namespace, Name: ref.Name,
			Evaluate: func(objects []*unstructured.Unstructured) resolve.Status {
				st, _ := JobsReadiness(objects)
				return st
			}}
		if ref.Name == "" {
			l.Selector = labels.SelectorFromSet(ref.Labels)
		}
		out = append(out, Item{Kind: spec.EnvJobs, Text: (&Job{Ref: ref}).String(), Lookups: []Lookup{l},
			waiter: func(c *Client) resolve.Dependency { return &Job{Client: c, Ref: ref} }})
	}
	return out
}

// daemonSetItems: the DaemonSet exists, and its pod on the pod's node is
// ready (the second lookup's rule uses the DaemonSet the first one saw).
func daemonSetItems(deps *spec.Spec, o LookupOptions) []Item {
	var out []Item
	for _, ref := range deps.DaemonSets {
		var ds *unstructured.Unstructured
		lookups := []Lookup{{Resource: daemonSetsResource, APIVersion: "apps/v1", ObjectKind: "DaemonSet", Namespace: ref.Namespace, Name: ref.Name, Get: true,
			Evaluate: func(objects []*unstructured.Unstructured) resolve.Status {
				if len(objects) == 0 {
					return resolve.Status{Reason: "not found"}
				}
				ds = objects[0]
				return resolve.Status{Ready: true}
			}}}
		pods := Lookup{Resource: podsResource, Namespace: ref.Namespace, Selector: labels.Everything(), FieldSelector: "spec.nodeName=" + o.NodeName}
		if o.NodeName == "" {
			// What it reads stays said: the controller asks whether the pod may
			// list them, and looks for the nodes where the DaemonSet's pod is ready.
			pods.FieldSelector, pods.Problem = "", "the pod has no node yet, and the DaemonSet's pod on its node decides"
		} else {
			node := o.NodeName
			pods.Evaluate = func(objects []*unstructured.Unstructured) resolve.Status {
				return daemonSetPodReadiness(ds, objects, node)
			}
		}
		out = append(out, Item{Kind: spec.EnvDaemonSets, Text: (&DaemonSet{Ref: ref}).String(), Place: OnNode, Lookups: append(lookups, pods),
			waiter: func(c *Client) resolve.Dependency { return &DaemonSet{Client: c, Ref: ref} }})
	}
	return out
}

// daemonSetPodReadiness is the DaemonSet rule as judged from outside the pod,
// over the pods on node: the DaemonSet's pod there is ready.
func daemonSetPodReadiness(ds *unstructured.Unstructured, pods []*unstructured.Unstructured, node string) resolve.Status {
	for _, p := range pods {
		if ds == nil || !controlledBy(p, ds) || p.GetDeletionTimestamp() != nil {
			continue
		}
		if podReady(p) {
			return resolve.Status{Ready: true}
		}
		return resolve.Status{Reason: "its pod " + p.GetName() + " on node " + node + " is not ready"}
	}
	return resolve.Status{Reason: "no pod on node " + node}
}

func containerItems(deps *spec.Spec, _ LookupOptions) []Item {
	var out []Item
	for _, name := range deps.Containers {
		out = append(out, Item{Kind: spec.EnvContainers, Text: (&Container{Name: name}).String(), Place: OwnPod,
			Lookups: []Lookup{{Resource: podsResource, APIVersion: "v1", ObjectKind: "Pod", Namespace: deps.Namespace, Name: deps.PodName,
				Evaluate: func(objects []*unstructured.Unstructured) resolve.Status { return ContainerReadiness(objects, name) }}},
			waiter: func(c *Client) resolve.Dependency { return &Container{Client: c, Name: name} }})
	}
	return out
}

// ContainerReadiness is the container rule over the own pod (zero or one):
// its container or native sidecar name is ready.
func ContainerReadiness(pods []*unstructured.Unstructured, name string) resolve.Status {
	if len(pods) == 0 {
		return resolve.Status{Reason: "no status yet"}
	}
	for _, list := range [][]any{nestedSlice(pods[0].Object, "status", "initContainerStatuses"), nestedSlice(pods[0].Object, "status", "containerStatuses")} {
		for _, s := range list {
			if m, _ := s.(map[string]any); m["name"] == name {
				if m["ready"] == true {
					return resolve.Status{Ready: true}
				}
				return resolve.Status{Reason: "not ready"}
			}
		}
	}
	return resolve.Status{Reason: "no status yet"}
}

func podItems(deps *spec.Spec, o LookupOptions) []Item {
	var out []Item
	for _, ref := range deps.Pods {
		l := Lookup{Resource: podsResource, Namespace: ref.Namespace, Selector: labels.SelectorFromSet(ref.Labels),
			Evaluate: func(objects []*unstructured.Unstructured) resolve.Status { return PodsReadiness(objects, "") }}
		place := InAPI
		if ref.RequireSameNode {
			place = OnNode
			if o.NodeName == "" {
				l.Problem, l.Evaluate = "the pod has no node yet", nil
			} else {
				where := " on node " + o.NodeName
				l.FieldSelector = "spec.nodeName=" + o.NodeName
				l.Evaluate = func(objects []*unstructured.Unstructured) resolve.Status { return PodsReadiness(objects, where) }
			}
		}
		out = append(out, Item{Kind: spec.EnvPodsJSON, Text: (&Pod{Ref: ref}).String(), Place: place, Lookups: []Lookup{l},
			waiter: func(c *Client) resolve.Dependency { return &Pod{Client: c, Ref: ref} }})
	}
	return out
}

func customResourceItems(deps *spec.Spec, _ LookupOptions) []Item {
	var out []Item
	for _, ref := range deps.CustomResources {
		out = append(out, Item{Kind: spec.EnvCustomResources, Text: (&CustomResource{Ref: ref}).String(),
			Lookups: []Lookup{{APIVersion: ref.APIVersion, ObjectKind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name,
				Values: len(ref.Fields) > 0,
				Evaluate: func(objects []*unstructured.Unstructured) resolve.Status {
					return CustomResourceReadiness(objects, ref)
				}}},
			waiter: func(c *Client) resolve.Dependency { return &CustomResource{Client: c, Ref: ref} }})
	}
	return out
}

func celItems(deps *spec.Spec, o LookupOptions) []Item {
	compile := o.Compile
	if compile == nil {
		compile = celcheck.Prepare
	}
	var out []Item
	for _, ref := range deps.CEL {
		l := Lookup{APIVersion: ref.APIVersion, ObjectKind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name, Values: true}
		if program, err := compile(ref.Expression); err != nil {
			// The webhook refuses such an expression; it came by another way.
			l.Problem = "expression " + ShownExpression(ref.Expression) + " " + err.Error()
		} else {
			eval := o.Eval
			l.Evaluate = func(objects []*unstructured.Unstructured) resolve.Status {
				// Eval bounds its own time (celcheck.EvalTimeout).
				return CELReadinessWith(context.Background(), objects, program, eval)
			}
		}
		out = append(out, Item{Kind: spec.EnvCEL, Text: (&CEL{Ref: ref}).String(), Lookups: []Lookup{l},
			waiter: func(c *Client) resolve.Dependency { return &CEL{Client: c, Ref: ref} }})
	}
	return out
}

func rolloutItems(deps *spec.Spec, _ LookupOptions) []Item {
	var out []Item
	for _, ref := range deps.Rollouts {
		out = append(out, Item{Kind: spec.EnvRollouts, Text: (&Rollout{Ref: ref}).String(),
			Lookups: []Lookup{{Resource: WorkloadResource(ref.Kind), APIVersion: "apps/v1", ObjectKind: workloadKind(ref.Kind),
				Namespace: ref.Namespace, Name: ref.Name,
				Evaluate: func(objects []*unstructured.Unstructured) resolve.Status { return RolloutReadiness(objects, ref.Kind) }}},
			waiter: func(c *Client) resolve.Dependency { return &Rollout{Client: c, Ref: ref} }})
	}
	return out
}

// workloadKind is the object kind of a rollout's workload kind.
func workloadKind(kind string) string {
	switch kind {
	case spec.WorkloadStatefulSet:
		return "StatefulSet"
	case spec.WorkloadDaemonSet:
		return "DaemonSet"
	}
	return "Deployment"
}

func claimItems(deps *spec.Spec, _ LookupOptions) []Item {
	var out []Item
	for _, ref := range deps.Claims {
		out = append(out, Item{Kind: spec.EnvClaims, Text: (&Claim{Ref: ref}).String(),
			Lookups: []Lookup{{Resource: ClaimsResource, APIVersion: "v1", ObjectKind: "PersistentVolumeClaim", Namespace: ref.Namespace, Name: ref.Name,
				Evaluate: ClaimReadiness}},
			waiter: func(c *Client) resolve.Dependency { return &Claim{Client: c, Ref: ref} }})
	}
	return out
}

func configMapItems(deps *spec.Spec, _ LookupOptions) []Item {
	var out []Item
	for _, ref := range deps.ConfigMaps {
		out = append(out, Item{Kind: spec.EnvConfigMaps, Text: (&ConfigMap{Ref: ref}).String(),
			Lookups: []Lookup{{Resource: ConfigMapsResource, APIVersion: "v1", ObjectKind: "ConfigMap", Namespace: ref.Namespace, Name: ref.Name,
				Evaluate: func(objects []*unstructured.Unstructured) resolve.Status { return KeyReadiness(objects, ref.Key) }}},
			waiter: func(c *Client) resolve.Dependency { return &ConfigMap{Client: c, Ref: ref} }})
	}
	return out
}

func secretItems(deps *spec.Spec, _ LookupOptions) []Item {
	var out []Item
	for _, ref := range deps.Secrets {
		out = append(out, Item{Kind: spec.EnvSecrets, Text: (&Secret{Ref: ref}).String(),
			Lookups: []Lookup{{Resource: SecretsResource, APIVersion: "v1", ObjectKind: "Secret", Namespace: ref.Namespace, Name: ref.Name, KeysOnly: true,
				Evaluate: func(objects []*unstructured.Unstructured) resolve.Status { return KeyReadiness(objects, ref.Key) }}},
			waiter: func(c *Client) resolve.Dependency { return &Secret{Client: c, Ref: ref} }})
	}
	return out
}

// crdItems: the CRD is established, then every APIService of its group is
// available; where APIServices cannot be read, the CRD alone decides.
func crdItems(deps *spec.Spec, _ LookupOptions) []Item {
	var out []Item
	for _, name := range deps.CRDs {
		group := CRDGroup(name)
		out = append(out, Item{Kind: spec.EnvCRDs, Text: (&CRD{Name: name}).String(),
			Lookups: []Lookup{
				{Resource: CRDsResource, APIVersion: "apiextensions.k8s.io/v1", ObjectKind: "CustomResourceDefinition", Name: name,
					Public: true, Evaluate: CRDReadiness},
				// The group is no field to select by: every APIService, a few
				// tens in a cluster, filtered by the rule.
				{Resource: APIServicesResource, Selector: labels.Everything(), Public: true, Optional: true,
					Evaluate: func(objects []*unstructured.Unstructured) resolve.Status {
						return APIServicesReadiness(objects, group)
					}},
			},
			waiter: func(c *Client) resolve.Dependency { return &CRD{Client: c, Name: name} }})
	}
	return out
}

// localItems are the items of a kind the resolver checks in the pod: no
// lookup, no waiter here (pkg/resolve/local has them).
func localItems(env, word string, place Place, field func(*spec.Spec) []string) func(*spec.Spec, LookupOptions) []Item {
	return func(deps *spec.Spec, _ LookupOptions) []Item {
		var out []Item
		for _, v := range slices.Clone(field(deps)) {
			out = append(out, Item{Kind: env, Text: word + " " + v, Place: place})
		}
		return out
	}
}
