package depgraph

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// Cycle is a dependency cycle as ordered members that alternate group and
// dependency: a group, the dependency it waits for, the group that satisfies that
// dependency, what that group waits for, and so on; the first group satisfies
// the last dependency. For example
// ["deployment ns/api", "service ns/db", "statefulset ns/db", "job ns/db-init", "job ns/db-init", "service ns/api"].
type Cycle []string

// Message says the cycle in one sentence:
// "deployment ns/api waits for service ns/db, served by statefulset ns/db, which
// waits for job ns/db-init, which waits for service ns/api, served by deployment ns/api".
// A dependency satisfied by the group of its own name (a job's pods, a
// daemonset's) is not repeated.
func (c Cycle) Message() string {
	if len(c) < 2 {
		return strings.Join(c, " ")
	}
	var b strings.Builder
	b.WriteString(c[0])
	for i := 0; i+1 < len(c); i += 2 {
		dep, next := c[i+1], c[(i+2)%len(c)]
		if i > 0 {
			b.WriteString(", which")
		}
		b.WriteString(" waits for ")
		b.WriteString(dep)
		if next != dep {
			b.WriteString(", " + connector(dep) + " ")
			b.WriteString(next)
		}
	}
	return b.String()
}

// Cycles finds, for each pod that sits in a dependency cycle, its cycle: the
// shortest one through the pod's group, starting at that group (ties broken by
// name order). A group waiting for a dependency it satisfies itself is a cycle
// too. Pods in no cycle are absent. Each call computes the answer afresh; the
// returned cycles are the caller's.
func (g *Graph) Cycles() map[types.NamespacedName]Cycle {
	component, sizes := stronglyConnected(g.out)
	search := newSearch(len(g.names))
	cycles := map[types.NamespacedName]Cycle{}
	for gid := range int32(g.groups) {
		c := component[gid]
		if sizes[c] < 2 { // the graph is bipartite: no node points at itself
			continue
		}
		path := search.cycle(gid,
			func(n int32) []int32 { return g.out[n] },
			func(n int32) bool { return component[n] == c },
			func(n int32) bool { _, found := slices.BinarySearch(g.in[gid], n); return found },
		)
		cycle := g.cycleNames(path, nil)
		for _, pod := range g.members[gid] {
			cycles[pod] = slices.Clone(cycle)
		}
	}
	return cycles
}

// Closes tells whether p, a pod about to be added (of a group in the graph or of
// a new one), would sit in a dependency cycle: one it closes or one its group is
// already in. It returns the shortest such cycle, starting at p's group. The
// graph is not rebuilt or changed: p's edges are laid over it, found through the
// label index and the dependencies of p's namespace, and one breadth-first
// search, bounded by the size of the graph, looks for the way back.
func (g *Graph) Closes(p Pod) (Cycle, bool) {
	var extraNames []string // of the nodes p adds, ids from len(g.names) on
	nextID := func(name string) int32 {
		extraNames = append(extraNames, name)
		return int32(len(g.names) + len(extraNames) - 1)
	}

	group := p.group()
	gid, known := g.groupIDs[group]
	if !known {
		gid = nextID(group)
	}
	extraOut := map[int32][]int32{} // edges p adds, per node
	var satisfied []int32           // dependencies p satisfies: the way back to gid

	// What p waits for.
	added := map[dependencyKey]int32{}
	for _, w := range appendWanted(nil, &p) {
		id, ok := g.depIDs[w.key]
		if !ok {
			if id, ok = added[w.key]; !ok {
				d := w.dependency(g.services)
				id = nextID(d.name)
				added[w.key] = id
				targets := g.satisfying(&d)
				if d.matches(group, p.Namespace, p.Name, p.Labels) {
					targets = insertSorted(targets, gid)
				}
				if _, found := slices.BinarySearch(targets, gid); found {
					// Satisfied by p, or by another pod of p's group.
					satisfied = append(satisfied, id)
				}
				extraOut[id] = targets
			}
		}
		extraOut[gid] = insertSorted(extraOut[gid], id)
	}
	// What waits for p: the graph's dependencies that p satisfies.
	for _, id := range g.depsByNamespace[p.Namespace] {
		if g.deps[int(id)-g.groups].matches(group, p.Namespace, p.Name, p.Labels) {
			extraOut[id] = insertSorted(extraOut[id], gid)
			satisfied = append(satisfied, id)
		}
	}

	next := func(n int32) []int32 {
		var base []int32
		if int(n) < len(g.out) {
			base = g.out[n]
		}
		extra, ok := extraOut[n]
		if !ok {
			return base
		}
		merged := append(slices.Clone(base), extra...)
		slices.Sort(merged)
		return slices.Compact(merged)
	}
	leadsBack := func(n int32) bool {
		if known {
			if _, found := slices.BinarySearch(g.in[gid], n); found {
				return true
			}
		}
		return slices.Contains(satisfied, n)
	}
	path := newSearch(len(g.names)+len(extraNames)).cycle(gid, next, func(int32) bool { return true }, leadsBack)
	if path == nil {
		return nil, false
	}
	return g.cycleNames(path, extraNames), true
}

func (g *Graph) cycleNames(path []int32, extraNames []string) Cycle {
	cycle := make(Cycle, len(path))
	for i, n := range path {
		if int(n) < len(g.names) {
			cycle[i] = g.names[n]
		} else {
			cycle[i] = extraNames[int(n)-len(g.names)]
		}
	}
	return cycle
}

func insertSorted(list []int32, id int32) []int32 {
	i, found := slices.BinarySearch(list, id)
	if found {
		return list
	}
	return slices.Insert(slices.Clone(list), i, id)
}

// search is a breadth-first search whose buffers are reused from one start node
// to the next.
type search struct {
	parent  []int32 // -1: not reached
	reached []int32
	queue   []int32
}

func newSearch(nodes int) *search {
	s := &search{parent: make([]int32, nodes)}
	for i := range s.parent {
		s.parent[i] = -1
	}
	return s
}

// cycle returns the nodes of a shortest cycle through start, start first, using
// only nodes within allows, or nil when there is none. leadsBack tells whether a
// node has an edge to start. Neighbours are taken in the order next gives them,
// so the answer is deterministic.
func (s *search) cycle(start int32, next func(int32) []int32, within, leadsBack func(int32) bool) []int32 {
	defer func() {
		for _, n := range s.reached {
			s.parent[n] = -1
		}
		s.reached, s.queue = s.reached[:0], s.queue[:0]
	}()
	s.parent[start] = start
	s.reached = append(s.reached, start)
	s.queue = append(s.queue, start)
	for i := 0; i < len(s.queue); i++ {
		n := s.queue[i]
		if n != start && leadsBack(n) {
			var path []int32
			for ; n != start; n = s.parent[n] {
				path = append(path, n)
			}
			path = append(path, start)
			slices.Reverse(path)
			return path
		}
		for _, m := range next(n) {
			if s.parent[m] != -1 || !within(m) {
				continue
			}
			s.parent[m] = n
			s.reached = append(s.reached, m)
			s.queue = append(s.queue, m)
		}
	}
	return nil
}
