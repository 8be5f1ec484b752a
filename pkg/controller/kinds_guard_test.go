package controller

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// TestEveryKindIsGatedOrLeft guards the controller's side of the registry:
// every node-free kind of the contract table (and the opt-in ones, opted in)
// gives the controller a lookup, and every other kind none.
func TestEveryKindIsGatedOrLeft(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}, meta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	for _, k := range spec.Kinds() {
		t.Run(k.Env, func(t *testing.T) {
			s := &spec.Spec{Namespace: "ns", PodName: "p", NodeName: "node-1"}
			if err := k.Parse(s, k.Example); err != nil {
				t.Fatal(err)
			}
			deps := nodeFree(s, lookupConfig{mapper: mapper, secrets: true})
			if gated := len(deps) > 0; gated != (k.NodeFree || k.GateOptIn) {
				t.Errorf("%s=%s: %d lookups, want some: %v", k.Env, k.Example, len(deps), k.NodeFree || k.GateOptIn)
			}
			for _, d := range deps {
				if d.problem == "" && (d.evaluate == nil || d.gvr.Empty()) {
					t.Errorf("%s: dependency %q has no resource or rule", k.Env, d.text)
				}
			}
		})
	}
}
