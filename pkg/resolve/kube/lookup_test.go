package kube_test

import (
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// TestEveryKindHasLookups is the guard of the registry: every kind of the
// contract table has its items here, each read through the API has lookups
// and a rule (or says why it cannot be looked up) and a resolver's waiter, and
// each checked only in the pod is marked so. The consumers have their own
// guards over the same table: the resolver (run), the controller (nodeFree),
// why and graph.
func TestEveryKindHasLookups(t *testing.T) {
	for _, k := range spec.Kinds() {
		t.Run(k.Env, func(t *testing.T) {
			registered, own := kube.Registered(k.Env)
			if !registered {
				t.Fatalf("%s has no entry in kube's registry", k.Env)
			}
			if !own {
				if k.Supersedes == "" {
					t.Errorf("%s shares another kind's items but supersedes none", k.Env)
				}
				return
			}
			s := &spec.Spec{Namespace: "ns", PodName: "p", NodeName: "node-1"}
			if err := k.Parse(s, k.Example); err != nil {
				t.Fatalf("parsing %s: %v", k.Example, err)
			}
			items := kube.Items(s, kube.LookupOptions{NodeName: "node-1"})
			if len(items) != k.Count(s) || len(items) == 0 {
				t.Fatalf("%d items of %s=%s, want %d", len(items), k.Env, k.Example, k.Count(s))
			}
			for _, it := range items {
				if it.Kind != k.Env || it.Text == "" {
					t.Errorf("item %+v: kind or text wrong", it)
				}
				local := it.Place == kube.InPod || it.Place == kube.Rendered
				if local == k.API {
					t.Errorf("%s: placed %d, but the table says API %v", it.Text, it.Place, k.API)
				}
				if local {
					if len(it.Lookups) != 0 || it.Waiter(nil) != nil {
						t.Errorf("%s: checked in the pod, yet has lookups or a waiter", it.Text)
					}
					continue
				}
				if it.Waiter(nil) == nil {
					t.Errorf("%s: no resolver's waiter", it.Text)
				}
				if len(it.Lookups) == 0 {
					t.Errorf("%s: read through the API, but no lookup", it.Text)
				}
				for _, l := range it.Lookups {
					if (l.Evaluate == nil) == (l.Problem == "") {
						t.Errorf("%s: a lookup needs a rule or a problem, not both: %+v", it.Text, l)
					}
					if l.Discovered() && (l.APIVersion == "" || l.ObjectKind == "") {
						t.Errorf("%s: resolved through discovery, but names no kind", it.Text)
					}
				}
				if (it.Place == kube.InAPI) != (k.NodeFree || k.GateOptIn) && k.Env != spec.EnvPodsJSON {
					t.Errorf("%s: placed %d, but the table says NodeFree %v", it.Text, it.Place, k.NodeFree)
				}
			}
		})
	}
}
