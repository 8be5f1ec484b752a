package depgraph

// stronglyConnected labels each node with its strongly connected component
// (Tarjan's algorithm, with an explicit stack so deep graphs cannot overflow the
// goroutine's), and returns the size of each component.
func stronglyConnected(out [][]int32) (component []int32, sizes []int) {
	n := len(out)
	index := make([]int32, n) // visiting order from 1; 0: not visited yet
	low := make([]int32, n)
	onStack := make([]bool, n)
	component = make([]int32, n)
	var stack []int32 // nodes of components not closed yet

	type frame struct {
		node int32
		next int // the next edge of node to follow
	}
	var calls []frame
	visited := int32(0)
	visit := func(v int32) {
		visited++
		index[v], low[v] = visited, visited
		stack = append(stack, v)
		onStack[v] = true
		calls = append(calls, frame{node: v})
	}

	for root := range n {
		if index[root] != 0 {
			continue
		}
		visit(int32(root))
		for len(calls) > 0 {
			top := len(calls) - 1
			v := calls[top].node
			if e := calls[top].next; e < len(out[v]) {
				calls[top].next++
				w := out[v][e]
				switch {
				case index[w] == 0:
					visit(w)
				case onStack[w]:
					low[v] = min(low[v], index[w])
				}
				continue
			}
			calls = calls[:top]
			if top > 0 {
				parent := calls[top-1].node
				low[parent] = min(low[parent], low[v])
			}
			if low[v] != index[v] {
				continue
			}
			id := int32(len(sizes))
			size := 0
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				component[w] = id
				size++
				if w == v {
					break
				}
			}
			sizes = append(sizes, size)
		}
	}
	return component, sizes
}
