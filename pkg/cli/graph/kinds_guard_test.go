package graph

import (
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// TestEveryKindIsGraphed guards graph's side of the registry: every kind of
// the contract table has a node kind (or is left out on purpose: checked in
// the pod, or the pod's own containers), and each item of a kind with one is
// a node that the workload waits for.
func TestEveryKindIsGraphed(t *testing.T) {
	for _, k := range spec.Kinds() {
		t.Run(k.Env, func(t *testing.T) {
			kind, ok := nodeKinds[k.Env]
			if !ok {
				t.Fatalf("%s: graph has no node kind for it, nor leaves it out", k.Env)
			}
			if kind != "" && !k.API {
				t.Errorf("%s: checked in the pod, yet graphed as %s", k.Env, kind)
			}
			s := &spec.Spec{Namespace: "ns", PodName: "p"}
			if err := k.Parse(s, k.Example); err != nil {
				t.Fatal(err)
			}
			g := Build([]Workload{{Name: "deployment ns/web", Namespace: "ns", Deps: s}}, Objects{}, nil)
			waits := 0
			for _, e := range g.Edges {
				if e.From == "deployment ns/web" && e.Kind == EdgeWaitsFor {
					waits++
				}
			}
			want := 0
			if kind != "" {
				want = k.Count(s)
			}
			if waits != want {
				t.Errorf("%s=%s: waits for %d nodes, want %d: %+v", k.Env, k.Example, waits, want, g.Nodes)
			}
		})
	}
}
