package graph

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/depgraph"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Node kinds.
const (
	KindWorkload       = "workload"
	KindService        = "service"
	KindJob            = "job"
	KindJobs           = "jobs"
	KindPods           = "pods"
	KindDaemonSet      = "daemonset"
	KindCustomResource = "customresource"
	KindCEL            = "cel"
	KindRollout        = "rollout"
	// KindObject: a ConfigMap, Secret, PersistentVolumeClaim or CRD, which no
	// workload satisfies; graph tells whether it exists (not for a Secret),
	// why reads its state.
	KindObject = "object"
)

// Edge kinds: a workload waits for a dependency; a dependency is satisfied by a
// workload.
const (
	EdgeWaitsFor    = "waits-for"
	EdgeSatisfiedBy = "satisfied-by"
)

// Node is a workload or a dependency. ID is its name, as pkg/depgraph's cycle
// messages write it: "deployment ns/web", "service ns/mariadb".
type Node struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Source says where a workload's dependencies were read.
	Source string `json:"source,omitempty"`
	// Problem: a workload's dependencies could not be read.
	Problem string `json:"problem,omitempty"`
	InCycle bool   `json:"inCycle,omitempty"`
	// Unsatisfiable says why nothing in the cluster can satisfy a dependency.
	Unsatisfiable string `json:"unsatisfiable,omitempty"`
	// Note is about a dependency satisfied from outside the graph (a Service
	// without selector).
	Note string `json:"note,omitempty"`
}

// Edge goes from a workload to what it waits for, or from a dependency to a
// workload that satisfies it.
type Edge struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Kind    string `json:"kind"`
	InCycle bool   `json:"inCycle,omitempty"`
}

// Cycle is one dependency cycle: its members in order (group, dependency, group
// ...) and pkg/depgraph's sentence.
type Cycle struct {
	Members []string `json:"members"`
	Message string   `json:"message"`
}

// Graph is the whole answer.
type Graph struct {
	Nodes  []Node  `json:"nodes"`
	Edges  []Edge  `json:"edges"`
	Cycles []Cycle `json:"cycles"`
}

// Unsatisfiable lists the nodes nothing can satisfy.
func (g *Graph) Unsatisfiable() []Node {
	var out []Node
	for _, n := range g.Nodes {
		if n.Unsatisfiable != "" {
			out = append(out, n)
		}
	}
	return out
}

// CustomResourceLookup tells whether a custom resource exists; a non-empty
// problem says it could not be told.
type CustomResourceLookup func(ref spec.CustomResourceRef) (exists bool, problem string)

// Build makes the graph of the workloads that wait for something, what they wait
// for, and the workloads that satisfy that, from the workloads and objects of o.
func Build(ws []Workload, o Objects, crs CustomResourceLookup) *Graph {
	b := builder{nodes: map[string]*Node{}, edges: map[[2]string]*Edge{}, ws: ws, o: o}
	for i := range ws {
		w := &ws[i]
		if w.Deps == nil && w.Problem == "" {
			continue
		}
		n := b.node(w.Name, KindWorkload)
		n.Source, n.Problem = w.Source, w.Problem
		if w.Deps != nil {
			b.dependencies(w, crs)
		}
	}
	b.cycles()
	return b.graph()
}

type builder struct {
	nodes map[string]*Node
	edges map[[2]string]*Edge
	ws    []Workload
	o     Objects
	found []Cycle
}

func (b *builder) node(id, kind string) *Node {
	if n, ok := b.nodes[id]; ok {
		return n
	}
	n := &Node{ID: id, Kind: kind}
	b.nodes[id] = n
	return n
}

func (b *builder) edge(from, to, kind string) {
	k := [2]string{from, to}
	if _, ok := b.edges[k]; !ok {
		b.edges[k] = &Edge{From: from, To: to, Kind: kind}
	}
}

// nodeKinds is the node kind of the items of each kind of the contract that
// something in the cluster may satisfy; "" for the kinds graph leaves out
// (checked in the pod, or the pod's own containers).
var nodeKinds = map[string]string{
	spec.EnvServices:        KindService,
	spec.EnvJobs:            KindJob,
	spec.EnvJobsJSON:        KindJob,
	spec.EnvDaemonSets:      KindDaemonSet,
	spec.EnvContainers:      "",
	spec.EnvPodsJSON:        KindPods,
	spec.EnvCustomResources: KindCustomResource,
	spec.EnvCEL:             KindCEL,
	spec.EnvRollouts:        KindRollout,
	spec.EnvClaims:          KindObject,
	spec.EnvConfigMaps:      KindObject,
	spec.EnvSecrets:         KindObject,
	spec.EnvCRDs:            KindObject,
	spec.EnvConfigs:         "",
	spec.EnvSockets:         "",
	spec.EnvTCP:             "",
	spec.EnvHTTP:            "",
}

// dependencies adds w's dependencies (kube.Items, each by its first lookup:
// what it names) and, for each, who satisfies it.
func (b *builder) dependencies(w *Workload, crs CustomResourceLookup) {
	for _, it := range kube.Items(w.Deps, kube.LookupOptions{}) {
		b.item(w, it, crs)
	}
}

// item adds it, an item of w's dependencies, and who satisfies it.
func (b *builder) item(w *Workload, it kube.Item, crs CustomResourceLookup) {
	kind := nodeKinds[it.Kind]
	if kind == "" || len(it.Lookups) == 0 {
		return
	}
	wait := func(id, kind string) *Node {
		n := b.node(id, kind)
		b.edge(w.Name, id, EdgeWaitsFor)
		return n
	}
	l := it.Lookups[0]
	target, named := l.Target()
	switch {
	case kind == KindService:
		b.service(wait(it.Text, kind), spec.ObjectRef{Namespace: l.Namespace, Name: l.Name})
	case kind == KindJob && l.Selector == nil:
		b.job(wait(it.Text, kind), spec.JobRef{Namespace: l.Namespace, Name: l.Name})
	case kind == KindJob:
		set := selectorLabels(l.Selector)
		b.jobsByLabels(wait("jobs "+l.Namespace+"/["+canonical(set)+"]", KindJobs), spec.JobRef{Namespace: l.Namespace, Labels: set})
	case kind == KindPods:
		set := selectorLabels(l.Selector)
		id := "pods " + l.Namespace + "/[" + canonical(set) + "]"
		if it.Place == kube.OnNode {
			id += " on this node"
		}
		n := wait(id, KindPods)
		if !b.satisfyByLabels(n, l.Namespace, set) {
			n.Unsatisfiable = "no workload's pods carry " + canonical(set)
		}
	case kind == KindDaemonSet:
		n := wait(it.Text, KindDaemonSet)
		if b.hasWorkload(it.Text) {
			// The DaemonSet is both the dependency and the workload that
			// satisfies it: one node, as in pkg/depgraph's cycles.
			n.Note = "the DaemonSet exists"
		} else {
			n.Unsatisfiable = "no such DaemonSet"
		}
	case kind == KindRollout:
		n := wait(it.Text, KindRollout)
		workload := strings.ToLower(l.ObjectKind) + " " + l.Namespace + "/" + l.Name
		if b.hasWorkload(workload) {
			b.node(workload, KindWorkload)
			b.edge(n.ID, workload, EdgeSatisfiedBy)
		} else {
			n.Unsatisfiable = "no such " + strings.ToLower(l.ObjectKind)
		}
	case kind == KindObject && l.KeysOnly:
		// Secrets are not read at all: a read returns their values.
		wait(it.Text, KindObject).Note = "not read by graph (kubectl entrypoint why checks it)"
	case kind == KindObject && named:
		// Claims, ConfigMaps and CRDs are leaves: no workload satisfies them,
		// but one that does not exist is unsatisfiable. Their state (bound,
		// the key, established) is why's to tell.
		n := wait(it.Text, KindObject)
		n.Note = "its state is not read by graph (kubectl entrypoint why checks it)"
		markMissing(n, target, crs)
	case named: // custom resources and CEL items
		b.named(wait(it.Text, kind), target, crs)
	}
}

// selectorLabels are the labels a selector made of a label set requires.
func selectorLabels(sel labels.Selector) map[string]string {
	set := map[string]string{}
	if sel == nil {
		return set
	}
	reqs, _ := sel.Requirements()
	for _, r := range reqs {
		if v, ok := r.Values().PopAny(); ok {
			set[r.Key()] = v
		}
	}
	return set
}

// named links n, a custom-resource or CEL item naming ref, to the workload
// whose pods ref is: a Deployment, StatefulSet, DaemonSet or Job of the graph,
// or a pod's own workload. Otherwise it asks crs whether ref exists.
func (b *builder) named(n *Node, ref spec.CustomResourceRef, crs CustomResourceLookup) {
	if target := b.workloadOf(ref); target != "" {
		b.node(target, KindWorkload)
		b.edge(n.ID, target, EdgeSatisfiedBy)
		return
	}
	markMissing(n, ref, crs)
}

// markMissing asks crs (when there is one) whether ref exists: unsatisfiable if
// not, the lookup's problem as n's note if it cannot tell.
func markMissing(n *Node, ref spec.CustomResourceRef, crs CustomResourceLookup) {
	if crs == nil {
		return
	}
	if exists, problem := crs(ref); problem != "" {
		n.Note = problem
	} else if !exists {
		n.Unsatisfiable = "does not exist"
	}
}

// workloadOf is the workload of the graph whose pods ref is, "" for none.
func (b *builder) workloadOf(ref spec.CustomResourceRef) string {
	o := depgraph.Object{APIVersion: ref.APIVersion, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}
	if w := o.Workload(); w != "" && b.hasWorkload(w) {
		return w
	}
	if pod := b.pod(ref.Namespace, ref.Name); o.IsPod() && pod != nil {
		if w := depgraph.PodFrom(pod, nil).Owner; b.hasWorkload(w) {
			return w
		}
	}
	return ""
}

func (b *builder) pod(namespace, name string) *corev1.Pod {
	for i := range b.o.Pods {
		if p := &b.o.Pods[i]; p.Namespace == namespace && p.Name == name {
			return p
		}
	}
	return nil
}

func (b *builder) hasWorkload(name string) bool {
	return slices.ContainsFunc(b.ws, func(w Workload) bool { return w.Name == name })
}

// satisfyByLabels links n to each workload in namespace whose pods carry every
// label of sel, and tells whether there was one.
func (b *builder) satisfyByLabels(n *Node, namespace string, sel map[string]string) bool {
	found := false
	for _, w := range b.ws {
		if w.Namespace != namespace || !matches(sel, w.Labels) {
			continue
		}
		found = true
		b.node(w.Name, KindWorkload)
		b.edge(n.ID, w.Name, EdgeSatisfiedBy)
	}
	return found
}

func (b *builder) service(n *Node, ref spec.ObjectRef) {
	i := slices.IndexFunc(b.o.Services, func(s corev1.Service) bool { return s.Namespace == ref.Namespace && s.Name == ref.Name })
	switch {
	case i < 0:
		n.Unsatisfiable = "no such Service"
	case len(b.o.Services[i].Spec.Selector) == 0:
		n.Note = "no selector: its endpoints are managed outside of Kubernetes' selectors"
	case !b.satisfyByLabels(n, ref.Namespace, b.o.Services[i].Spec.Selector):
		n.Unsatisfiable = "its selector " + canonical(b.o.Services[i].Spec.Selector) + " matches no workload"
	}
}

func (b *builder) job(n *Node, ref spec.JobRef) {
	if b.hasWorkload("job " + ref.String()) {
		// The Job is both the dependency and the workload that satisfies it.
		n.Note = "the Job exists"
		return
	}
	// A CronJob names its Jobs <cronjob>-<scheduled time in minutes>.
	for _, c := range b.o.CronJobs {
		if c.Namespace != ref.Namespace {
			continue
		}
		if suffix, ok := strings.CutPrefix(ref.Name, c.Name+"-"); ok && suffix != "" && strings.Trim(suffix, "0123456789") == "" {
			name := "cronjob " + c.Namespace + "/" + c.Name
			b.node(name, KindWorkload)
			b.edge(n.ID, name, EdgeSatisfiedBy)
			return
		}
	}
	n.Unsatisfiable = "no such Job, and no CronJob creates it"
}

func (b *builder) jobsByLabels(n *Node, ref spec.JobRef) {
	found := false
	for _, j := range b.o.Jobs {
		if j.Namespace == ref.Namespace && matches(ref.Labels, j.Labels) {
			found = true
			name := "job " + j.Namespace + "/" + j.Name
			b.node(name, KindJob).Note = "the Job exists"
			b.edge(n.ID, name, EdgeSatisfiedBy)
		}
	}
	for _, c := range b.o.CronJobs {
		if c.Namespace == ref.Namespace && matches(ref.Labels, c.Spec.JobTemplate.Labels) {
			found = true
			name := "cronjob " + c.Namespace + "/" + c.Name
			b.node(name, KindWorkload)
			b.edge(n.ID, name, EdgeSatisfiedBy)
		}
	}
	if !found {
		n.Unsatisfiable = "no Job carries " + canonical(ref.Labels) + ", and no CronJob creates one"
	}
}

// cycles finds the cycles with pkg/depgraph, one pod per workload, and marks
// their nodes and edges.
func (b *builder) cycles() {
	var pods []depgraph.Pod
	for _, w := range b.ws {
		p := depgraph.Pod{Namespace: w.Namespace, Name: w.Name, Labels: w.Labels, Owner: w.Name}
		if w.Deps != nil {
			p.Services, p.Jobs, p.Pods, p.DaemonSets = w.Deps.Services, w.Deps.Jobs, w.Deps.Pods, w.Deps.DaemonSets
			p.Rollouts, p.Objects = w.Deps.Rollouts, depgraph.ObjectsOf(w.Deps)
		}
		pods = append(pods, p)
	}
	// One pod stands for each workload; a pod that an item names by its own
	// name joins its workload's group under that name, so the item leads there.
	joined := map[*corev1.Pod]bool{}
	for _, w := range b.ws {
		if w.Deps == nil {
			continue
		}
		for _, o := range depgraph.ObjectsOf(w.Deps) {
			pod := b.pod(o.Namespace, o.Name)
			if !o.IsPod() || pod == nil || joined[pod] {
				continue
			}
			if group := depgraph.PodFrom(pod, nil).Owner; b.hasWorkload(group) {
				joined[pod] = true
				pods = append(pods, depgraph.Pod{Namespace: pod.Namespace, Name: pod.Name, Labels: pod.Labels, Owner: group})
			}
		}
	}
	var services []depgraph.Service
	for _, s := range b.o.Services {
		services = append(services, depgraph.Service{Namespace: s.Namespace, Name: s.Name, Selector: s.Spec.Selector})
	}
	seen := map[string]bool{}
	byPod := depgraph.Build(pods, services).Cycles()
	// A cycle is found once per member, each time starting at that member: the
	// first member in name order tells it, so that the output does not change
	// from run to run.
	keys := slices.SortedFunc(maps.Keys(byPod), func(x, y types.NamespacedName) int { return cmp.Compare(x.String(), y.String()) })
	for _, k := range keys {
		c := byPod[k]
		key := slices.Clone(c)
		slices.Sort(key)
		if seen[strings.Join(key, "\x00")] {
			continue
		}
		seen[strings.Join(key, "\x00")] = true
		b.found = append(b.found, Cycle{Members: slices.Clone(c), Message: c.Message()})
		for i, m := range c {
			if n, ok := b.nodes[m]; ok {
				n.InCycle = true
			}
			if e, ok := b.edges[[2]string{m, c[(i+1)%len(c)]}]; ok {
				e.InCycle = true
			}
		}
	}
	slices.SortFunc(b.found, func(x, y Cycle) int { return cmp.Compare(x.Message, y.Message) })
}

func (b *builder) graph() *Graph {
	g := &Graph{Nodes: []Node{}, Edges: []Edge{}, Cycles: b.found}
	if g.Cycles == nil {
		g.Cycles = []Cycle{}
	}
	for _, n := range b.nodes {
		g.Nodes = append(g.Nodes, *n)
	}
	slices.SortFunc(g.Nodes, func(x, y Node) int { return cmp.Compare(x.ID, y.ID) })
	for _, e := range b.edges {
		g.Edges = append(g.Edges, *e)
	}
	slices.SortFunc(g.Edges, func(x, y Edge) int { return cmp.Or(cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To)) })
	return g
}

func matches(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// canonical writes labels as spec's String methods do: key=value, sorted, commas.
func canonical(set map[string]string) string {
	items := make([]string, 0, len(set))
	for k, v := range set {
		items = append(items, k+"="+v)
	}
	slices.Sort(items)
	return strings.Join(items, ",")
}
