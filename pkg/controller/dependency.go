package controller

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck/admit"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// dependency is one node-free dependency of a pod, as the controller looks it up.
type dependency struct {
	// text names it as the resolver does: "service openstack/mariadb".
	text string
	// gvr is the kind whose informer decides it; namespace is "" for a
	// cluster-scoped kind.
	gvr       schema.GroupVersionResource
	namespace string
	// name selects one object by name (for a Service: its EndpointSlices);
	// otherwise selector selects by labels.
	name     string
	selector labels.Selector
	// problem, when set, is why it cannot be looked up at all (a custom resource
	// kind the API server does not serve, or one the controller may not read).
	problem string
	// public tells that what the rule reads is already shown to every
	// authenticated user by API discovery (whether a CRD's resources and an
	// APIService's group are served), so no access review is needed.
	public bool
	// values tells that the rule compares values the informer does not keep
	// (ConfigMaps are cached keys only): the object is read by GET to judge it.
	values bool
	// node, when set, narrows the objects to those on that node (pods by
	// spec.nodeName): a same-node dependency judged on the pod's node.
	node string
	// evaluate applies the resolver's rule to the objects found.
	evaluate func(objects []*unstructured.Unstructured) resolve.Status
}

// lookupConfig is what turning a pod's dependencies into lookups needs.
type lookupConfig struct {
	mapper meta.RESTMapper
	// secrets: the operator let the controller watch Secrets.
	secrets bool
	// programs compiles CEL expressions; nil compiles each time.
	programs *admit.Cache
	// eval evaluates them, bounded in concurrency and cached per object
	// version; nil evaluates each time.
	eval *celcheck.Evaluator
	// allowed are the kinds custom-resource and CEL items may name.
	allowed allowList
}

// nodeFree lists the lookups of deps that need no node: those of the items
// kube.Items places in the API (kube.InAPI), the items of a kind its operator
// must opt in to (spec.Kind.GateOptIn: Secrets) only when c.secrets is set.
// The rest (daemonsets, same-node pods, containers, sockets, TCP and HTTP, and
// otherwise Secrets) is the resolver's, in the pod. An item of several lookups
// (a CRD and the APIServices of its group) gives one dependency per lookup,
// each with the item's text. Lookups resolved through discovery (custom
// resources, CEL) of a kind not on c.allowed get a problem instead.
func nodeFree(deps *spec.Spec, c lookupConfig) []dependency {
	compile := admit.Compile
	if c.programs != nil {
		compile = c.programs.Program
	}
	var out []dependency
	for _, it := range kube.Items(deps, kube.LookupOptions{Compile: compile, Eval: c.eval}) {
		if it.Place != kube.InAPI {
			continue
		}
		if k, _ := spec.KindOf(it.Kind); k.GateOptIn && !c.secrets {
			continue
		}
		for _, l := range it.Lookups {
			out = append(out, c.dependency(it.Text, l))
		}
	}
	return out
}

// onNode lists the lookups of the same-node items of deps (kube.OnNode: a
// DaemonSet's pod on the node, pods with requireSameNode) judged on node. With
// node "", they are the lookups' shapes only (no rule, no problem): what the pod
// must be allowed to read, and whose objects tell on which nodes the items are
// ready (see Reconciler.place).
func (c lookupConfig) onNode(deps *spec.Spec, node string) []dependency {
	same := sameNodeSpec(deps)
	if same == nil {
		return nil
	}
	var out []dependency
	for _, it := range onNodeItems(same, node) {
		for _, l := range it.Lookups {
			if node == "" {
				l.Problem, l.Evaluate = "", nil
			}
			d := c.dependency(it.Text, l)
			if l.FieldSelector != "" {
				d.node = node
			}
			out = append(out, d)
		}
	}
	return out
}

// dependency is the controller's view of lookup l of the item named text: its
// resource found through c.mapper when discovery tells it, and checked
// against c.allowed.
func (c lookupConfig) dependency(text string, l kube.Lookup) dependency {
	if l.Problem != "" {
		return dependency{text: text, name: l.Name, problem: l.Problem}
	}
	d := dependency{text: text, gvr: l.Resource, namespace: l.Namespace, name: l.Name, selector: l.Selector,
		public: l.Public, evaluate: l.Evaluate}
	if !l.Discovered() {
		return d
	}
	d.gvr, d.namespace, d.problem = resourceOf(c.mapper, l.APIVersion, l.ObjectKind, l.Namespace)
	d.problem = c.allowed.check(l.ObjectKind, d.gvr, d.problem)
	d.values = d.gvr == kube.ConfigMapsResource && l.Values
	return d
}

// resourceOf is the resource of kind in apiVersion, and namespace unless the kind
// is cluster-scoped; or why the kind cannot be looked up (not served, yet).
func resourceOf(mapper meta.RESTMapper, apiVersion, kind, namespace string) (gvr schema.GroupVersionResource, ns, problem string) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err == nil {
		var m *meta.RESTMapping
		m, err = mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: kind}, gv.Version)
		if err == nil {
			if m.Scope.Name() == meta.RESTScopeNameNamespace {
				ns = namespace
			}
			return m.Resource, ns, ""
		}
	}
	return schema.GroupVersionResource{}, "", fmt.Sprintf("kind %s of %s is not served (yet): %v", kind, apiVersion, err)
}

// verb is what the pod's ServiceAccount would need to read the dependency
// itself: get of an object by name, list where objects are selected (a
// Service's EndpointSlices by their label included).
func (d dependency) verb() string {
	if d.selector != nil || d.gvr == endpointSlicesResource {
		return "list"
	}
	return "get"
}

// objects are what the dependency's rule looks at, from its kind's informer,
// sorted by name so that reasons naming several come in a stable order.
func (d dependency) objects(k *kindInformer) []*unstructured.Unstructured {
	var objs []*unstructured.Unstructured
	switch {
	case d.gvr == endpointSlicesResource:
		objs = k.byIndex(serviceIndex, d.namespace+"/"+d.name)
	case d.selector != nil:
		var scope []*unstructured.Unstructured
		if d.node != "" && d.gvr == podsResource {
			// The pods of one node: a namespace-wide scan per same-node
			// dependency made a namespace of pods on many nodes quadratic.
			scope = k.byIndex(nodeIndex, onNodeKey(d.namespace, d.node))
		} else {
			scope = k.byIndex(toolscache.NamespaceIndex, d.namespace)
		}
		for _, o := range scope {
			if d.selector.Matches(labels.Set(o.GetLabels())) {
				objs = append(objs, o)
			}
		}
	case d.namespace == "":
		objs = k.byKey(d.name)
	default:
		objs = k.byKey(d.namespace + "/" + d.name)
	}
	if d.node != "" {
		objs = slices.DeleteFunc(objs, func(o *unstructured.Unstructured) bool { return nodeOf(o) != d.node })
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].GetName() < objs[j].GetName() })
	return objs
}

// key identifies what the dependency waits for, for the index.
func (d dependency) key() depKey {
	k := depKey{gvr: d.gvr, namespace: d.namespace, name: d.name, node: d.node}
	if d.selector != nil {
		k.name, k.selector = "", d.selector.String()
		if k.selector == "" { // labels.Everything(): the index needs a non-empty key
			k.selector = everything
		}
	}
	return k
}

// everything is the index's key of a selector that selects every object.
const everything = "<all>"

// depKey is what a pod waits for: an object by name (for a Service, its
// EndpointSlices' service name) or objects by a label selector, in a namespace;
// with node set, only the pods on that node (a same-node dependency), so that a
// pod's change on one node wakes only the pods waiting on that node.
type depKey struct {
	gvr       schema.GroupVersionResource
	namespace string
	name      string
	selector  string
	node      string
}

// blocker is how the condition names an unready dependency: its name, then why.
func blocker(text, reason string) string {
	return text + ": " + strings.TrimSpace(reason)
}
