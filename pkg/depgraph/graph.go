// Package depgraph finds dependency cycles among managed pods: pods that wait, through
// services (with or without a minimum of endpoints), jobs, pod selectors,
// daemonsets, rollouts, and custom-resource and CEL items naming a pod or a
// workload, for pods that wait for them. Claims, ConfigMaps, Secrets, CRDs and
// other objects wait for no pod: they cannot close a cycle and are left out. It
// is pure: no clients, no goroutines.
//
// Pods are grouped by their controller (see PodFrom) so that cycles read
// "deployment ns/api waits for service ns/db, served by statefulset ns/db, ...".
// The graph is bipartite: a group points at each dependency one of its pods waits
// for, and a dependency points at each group with a pod that satisfies it. A cycle
// thus alternates group and dependency.
package depgraph

import (
	"cmp"
	"slices"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Graph is the dependency graph of a set of managed pods. It is not changed after
// Build, so concurrent readers are safe.
type Graph struct {
	// names holds the node names: the groups first, then the dependencies, each
	// part sorted, so that node order (and with it tie-breaking) follows the names.
	names    []string
	groups   int // names[:groups] are groups
	groupIDs map[string]int32
	depIDs   map[dependencyKey]int32
	deps     []dependency // deps[i] is node groups+i
	out, in  [][]int32    // edges per node, sorted by node id
	// members lists each group's pods.
	members [][]types.NamespacedName

	// What Closes needs to add a pod without rebuilding.
	pods            []indexedPod
	byLabel         map[labelKey][]int32 // pod indexes, in input order
	byName          map[types.NamespacedName]int32
	services        map[spec.ObjectRef]map[string]string
	depsByNamespace map[string][]int32 // dependency node ids by the namespace of their pods
}

type indexedPod struct {
	namespace string
	name      string
	labels    map[string]string
	group     int32
}

type labelKey struct{ namespace, key, value string }

// Build makes the graph of pods and the services they may wait for. Services not
// listed are served by no managed pod. It takes time about linear in the pods,
// their labels and dependencies, and the pods the waited-for selectors match.
// The graph keeps the pods' label maps and the selectors, without copying them:
// they must not change while it is in use.
func Build(pods []Pod, services []Service) *Graph {
	g := &Graph{
		groupIDs:        map[string]int32{},
		depIDs:          map[dependencyKey]int32{},
		byLabel:         map[labelKey][]int32{},
		byName:          make(map[types.NamespacedName]int32, len(pods)),
		services:        make(map[spec.ObjectRef]map[string]string, len(services)),
		depsByNamespace: map[string][]int32{},
	}
	for _, s := range services {
		g.services[spec.ObjectRef{Namespace: s.Namespace, Name: s.Name}] = s.Selector
	}
	groupOf := g.addGroups(pods)
	g.indexPods(pods, groupOf)
	waits := g.addDependencies(pods, groupOf)

	g.out = make([][]int32, len(g.names))
	for _, w := range waits {
		g.out[w.group] = append(g.out[w.group], w.dependency)
	}
	for gid := range g.groups {
		slices.Sort(g.out[gid])
		g.out[gid] = slices.Compact(g.out[gid])
	}
	for i := range g.deps {
		g.out[g.groups+i] = g.satisfying(&g.deps[i])
	}
	g.in = make([][]int32, len(g.names))
	for from, targets := range g.out {
		for _, to := range targets {
			g.in[to] = append(g.in[to], int32(from)) // from ascends, so in stays sorted
		}
	}
	return g
}

// addGroups names the groups, in name order, and returns each pod's group.
func (g *Graph) addGroups(pods []Pod) (groupOf []string) {
	groupOf = make([]string, len(pods))
	for i := range pods {
		groupOf[i] = pods[i].group()
		g.groupIDs[groupOf[i]] = 0
	}
	for name := range g.groupIDs {
		g.names = append(g.names, name)
	}
	slices.Sort(g.names)
	g.groups = len(g.names)
	for id, name := range g.names {
		g.groupIDs[name] = int32(id)
	}
	g.members = make([][]types.NamespacedName, g.groups)
	return groupOf
}

// indexPods lists each group's pods, and indexes the pods by namespace and label.
func (g *Graph) indexPods(pods []Pod, groupOf []string) {
	g.pods = make([]indexedPod, len(pods))
	for i := range pods {
		p := &pods[i]
		gid := g.groupIDs[groupOf[i]]
		g.pods[i] = indexedPod{namespace: p.Namespace, name: p.Name, labels: p.Labels, group: gid}
		g.byName[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}] = int32(i)
		g.members[gid] = append(g.members[gid], types.NamespacedName{Namespace: p.Namespace, Name: p.Name})
		for k, v := range p.Labels {
			key := labelKey{p.Namespace, k, v}
			g.byLabel[key] = append(g.byLabel[key], int32(i))
		}
	}
}

// wait is an edge from a group to a dependency one of its pods waits for.
type wait struct{ group, dependency int32 }

// addDependencies names each distinct dependency of the pods, in name order after
// the groups, and returns who waits for what.
func (g *Graph) addDependencies(pods []Pod, groupOf []string) []wait {
	// Dependencies get provisional ids in order of appearance, then ids in name order.
	var waits []wait
	provisional := map[dependencyKey]int32{}
	var deps []dependency
	var keys []dependencyKey
	var list []wanted
	for i := range pods {
		gid := g.groupIDs[groupOf[i]]
		list = appendWanted(list[:0], &pods[i])
		for j := range list {
			id, ok := provisional[list[j].key]
			if !ok {
				id = int32(len(deps))
				provisional[list[j].key] = id
				deps = append(deps, list[j].dependency(g.services))
				keys = append(keys, list[j].key)
			}
			waits = append(waits, wait{gid, id})
		}
	}
	order := make([]int32, len(deps))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(deps[a].name, deps[b].name) })
	final := make([]int32, len(deps)) // provisional id -> node id
	g.deps = make([]dependency, len(deps))
	for rank, old := range order {
		id := int32(g.groups + rank)
		final[old] = id
		g.deps[rank] = deps[old]
		g.names = append(g.names, deps[old].name)
		g.depIDs[keys[old]] = id
		g.depsByNamespace[deps[old].namespace] = append(g.depsByNamespace[deps[old].namespace], id)
	}
	for i := range waits {
		waits[i].dependency = final[waits[i].dependency]
	}
	return waits
}

// satisfying lists, sorted, the groups with a pod that satisfies d. It walks the
// pods carrying the rarest of d's labels only.
func (g *Graph) satisfying(d *dependency) []int32 {
	if d.group != "" {
		if id, ok := g.groupIDs[d.group]; ok {
			return []int32{id}
		}
		return nil
	}
	if d.podName != "" {
		if i, ok := g.byName[types.NamespacedName{Namespace: d.namespace, Name: d.podName}]; ok {
			return []int32{g.pods[i].group}
		}
		return nil
	}
	if len(d.selector) == 0 {
		return nil
	}
	var candidates []int32
	first := true
	for k, v := range d.selector {
		list := g.byLabel[labelKey{d.namespace, k, v}]
		if len(list) == 0 {
			return nil
		}
		if first || len(list) < len(candidates) {
			candidates, first = list, false
		}
	}
	var groups []int32
	for _, i := range candidates {
		p := &g.pods[i]
		if n := len(groups); n > 0 && groups[n-1] == p.group {
			continue // pods of a group usually come together; skip the re-check
		}
		if d.matches(g.names[p.group], p.namespace, p.name, p.labels) {
			groups = append(groups, p.group)
		}
	}
	slices.Sort(groups)
	return slices.Compact(groups)
}
