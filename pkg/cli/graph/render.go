package graph

import (
	"fmt"
	"io"
	"strings"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/safeout"
)

// connector links a dependency to the workload that satisfies it, as
// pkg/depgraph's messages do.
func connector(dependency string) string {
	kind, _, _ := strings.Cut(dependency, " ")
	switch kind {
	case KindService:
		return "served by"
	case KindJob, KindJobs:
		return "run by"
	case KindPods:
		return "found in"
	case KindRollout:
		return "rolled out by"
	}
	return "satisfied by"
}

// WriteTree writes the graph for a terminal: each workload that waits, what it
// waits for and who satisfies that; then the cycles and what nothing satisfies.
// Names and messages are escaped as they are written (printer), a problem of
// several lines has its further lines indented.
func WriteTree(w io.Writer, g *Graph) error {
	p := printer{w: w}
	out := map[string][]string{}
	for _, e := range g.Edges {
		out[e.From] = append(out[e.From], e.To)
	}
	byID := map[string]Node{}
	for _, n := range g.Nodes {
		byID[n.ID] = n
	}
	waiting := 0
	for _, n := range g.Nodes {
		if n.Kind != KindWorkload || (len(out[n.ID]) == 0 && n.Problem == "") {
			continue
		}
		waiting++
		p.printf("%s%s\n", n.ID, mark(n))
		if n.Problem != "" {
			p.printf("    problem: %s\n", safeout.Lines(n.Problem, "      "))
		}
		deps := out[n.ID]
		for i, d := range deps {
			branch, more := "├─", "│ "
			if i == len(deps)-1 {
				branch, more = "└─", "  "
			}
			dn := byID[d]
			p.printf("  %s waits for %s%s\n", branch, d, mark(dn))
			for _, s := range out[d] {
				p.printf("  %s   %s %s%s\n", more, connector(d), s, mark(byID[s]))
			}
			switch {
			case dn.Unsatisfiable != "":
				p.printf("  %s   nothing can satisfy it: %s\n", more, dn.Unsatisfiable)
			case dn.Note != "":
				p.printf("  %s   %s\n", more, dn.Note)
			}
		}
	}
	if waiting == 0 {
		p.printf("no workload waits for anything (none has %s annotations or DEPENDENCY_* variables)\n", "entrypoint.io/")
	}
	if len(g.Cycles) > 0 {
		p.printf("\ncycles (%d):\n", len(g.Cycles))
		for _, c := range g.Cycles {
			p.printf("  %s\n", c.Message)
		}
	}
	if u := g.Unsatisfiable(); len(u) > 0 {
		p.printf("\nnothing in the cluster can satisfy (%d):\n", len(u))
		for _, n := range u {
			p.printf("  %s: %s\n", n.ID, n.Unsatisfiable)
		}
	}
	return p.err
}

func mark(n Node) string {
	var m []string
	if n.InCycle {
		m = append(m, "in a cycle")
	}
	if n.Unsatisfiable != "" {
		m = append(m, "unsatisfiable")
	}
	if len(m) == 0 {
		return ""
	}
	return "  [" + strings.Join(m, ", ") + "]"
}

// WriteDOT writes the graph in Graphviz's language: workloads as boxes,
// dependencies as ellipses, cycles in red, unsatisfiable dependencies dashed red.
// Every string is written by dotQuote; node identifiers are dotIDs'.
func WriteDOT(w io.Writer, g *Graph) error {
	p := printer{w: w}
	ids := dotIDs(g.Nodes)
	id := func(name string) string {
		if quoted, ok := ids[name]; ok {
			return quoted
		}
		return dotQuote(name)
	}
	p.printf("digraph entrypoint {\n  rankdir=LR;\n  node [fontname=\"sans-serif\"];\n")
	for _, n := range g.Nodes {
		attrs := []string{"label=" + dotQuote(n.ID)}
		if n.Kind == KindWorkload {
			attrs = append(attrs, "shape=box")
		} else {
			attrs = append(attrs, "shape=ellipse")
		}
		switch {
		case n.Unsatisfiable != "":
			attrs = append(attrs, "color=red", "style=dashed", "tooltip="+dotQuote(n.Unsatisfiable))
		case n.InCycle:
			attrs = append(attrs, "color=red")
		}
		p.printf("  %s [%s];\n", id(n.ID), strings.Join(attrs, ", "))
	}
	for _, e := range g.Edges {
		attrs := []string{}
		if e.Kind == EdgeSatisfiedBy {
			attrs = append(attrs, "style=dotted", "label="+dotQuote(connector(e.From)))
		}
		if e.InCycle {
			attrs = append(attrs, "color=red", "penwidth=2")
		}
		p.printf("  %s -> %s [%s];\n", id(e.From), id(e.To), strings.Join(attrs, ", "))
	}
	p.printf("}\n")
	return p.err
}

// dotQuote is s as a DOT double-quoted string: escaped (safetext.Escape), then
// each backslash doubled and each double quote preceded by one, as Graphviz
// reads them in labels. Graphviz takes a backslash just before the closing
// quote for the start of an escaped quote, so a final one is written as the
// entity &#92;, which labels also show as a backslash.
func dotQuote(s string) string {
	q := strings.ReplaceAll(strings.ReplaceAll(safetext.Escape(s), `\`, `\\`), `"`, `\"`)
	if c, ok := strings.CutSuffix(q, `\\`); ok {
		q = c + "&#92;"
	}
	return `"` + q + `"`
}

// dotIDs are the identifiers of the nodes in DOT, by name: the name, quoted. A
// name that escaping changed could become another's (a raw ESC and the text
// \x1b), so that one gets its index after it until it is no other's.
func dotIDs(nodes []Node) map[string]string {
	taken := map[string]bool{}
	for _, n := range nodes {
		if safetext.Safe(n.ID) {
			taken[n.ID] = true
		}
	}
	ids := make(map[string]string, len(nodes))
	for i, n := range nodes {
		id := n.ID
		if !safetext.Safe(id) {
			id = safetext.Escape(n.ID)
			for k := i; taken[id]; k++ {
				id = fmt.Sprintf("%s #%d", safetext.Escape(n.ID), k)
			}
			taken[id] = true
		}
		ids[n.ID] = dotQuote(id)
	}
	return ids
}

// WriteMermaid writes the graph as a Mermaid flowchart (for Markdown). Nodes
// are n0, n1 ... in order; their labels are mermaidLabel's.
func WriteMermaid(w io.Writer, g *Graph) error {
	p := printer{w: w}
	ids := map[string]string{}
	p.printf("flowchart LR\n")
	for i, n := range g.Nodes {
		id := fmt.Sprintf("n%d", i)
		ids[n.ID] = id
		label := mermaidLabel(n.ID)
		if n.Kind == KindWorkload {
			p.printf("  %s[\"%s\"]\n", id, label)
		} else {
			p.printf("  %s([\"%s\"])\n", id, label)
		}
	}
	var cycleEdges []int
	for i, e := range g.Edges {
		if e.Kind == EdgeSatisfiedBy {
			p.printf("  %s -. %s .-> %s\n", ids[e.From], connector(e.From), ids[e.To])
		} else {
			p.printf("  %s --> %s\n", ids[e.From], ids[e.To])
		}
		if e.InCycle {
			cycleEdges = append(cycleEdges, i)
		}
	}
	p.printf("  classDef cycle stroke:#d00,stroke-width:2px\n  classDef unsatisfiable stroke:#d00,stroke-dasharray:4\n")
	for _, n := range g.Nodes {
		switch {
		case n.Unsatisfiable != "":
			p.printf("  class %s unsatisfiable\n", ids[n.ID])
		case n.InCycle:
			p.printf("  class %s cycle\n", ids[n.ID])
		}
	}
	for _, i := range cycleEdges {
		p.printf("  linkStyle %d stroke:#d00,stroke-width:2px\n", i)
	}
	return p.err
}

// mermaidEntities writes the characters a quoted Mermaid label does not show as
// they are as its entity codes: # first, which starts them; the double quote
// that would end the label; < and >, which it would read as HTML; the backtick
// of its Markdown strings.
var mermaidEntities = strings.NewReplacer("#", "#35;", `"`, "#quot;", "<", "#lt;", ">", "#gt;", "`", "#96;")

// mermaidLabel is s as the text of a double-quoted Mermaid label: escaped
// (safetext.Escape), then mermaidEntities.
func mermaidLabel(s string) string {
	return mermaidEntities.Replace(safetext.Escape(s))
}

// printer keeps the first write error, so renderers check once. It is the one
// place the renderers write: every string argument is escaped there
// (safeout.Fprintf), so that no name or message reaches the terminal raw.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = safeout.Fprintf(p.w, format, args...)
	}
}
