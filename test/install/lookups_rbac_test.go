package install

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// The controller's RBAC is checked against what its lookups read, not against a
// hand-kept list (TestControllerRBACAndFlags holds controllerRules equal to
// what the chart and kustomize render): a pod naming every kind of the contract (each kind's
// example), turned into lookups by the one registry (same-node ones, which gate
// mode holds, on a node), must find every resource
// the controller watches for it (list and watch; get where a rule reads one
// object whole) granted by the rules the chart renders.
func TestControllerRBACCoversEveryLookup(t *testing.T) {
	env := map[string]string{spec.EnvNamespace: "ns", spec.EnvPodName: "pod"}
	for _, k := range spec.Kinds() {
		if k.Supersedes == "" {
			env[k.Env] = k.Example
		}
	}
	deps, err := spec.FromEnv(func(name string) (string, bool) { v, ok := env[name]; return v, ok })
	if err != nil {
		t.Fatalf("the kinds' examples do not parse together: %v", err)
	}
	rules := controllerRules(true, false)
	checked := map[string]bool{}
	// Same-node items are judged by the controller too, in gate mode, on a node.
	for _, it := range kube.Items(deps, kube.LookupOptions{NodeName: "node-1"}) {
		if it.Place != kube.InAPI && it.Place != kube.OnNode {
			continue
		}
		checked[it.Kind] = true
		for _, l := range it.Lookups {
			if l.Resource.Resource == "" {
				continue // custom resources and CEL: any served kind, allowed by controller.customResourceRules
			}
			verbs := []string{"list", "watch"}
			if l.Values {
				verbs = append(verbs, "get")
			}
			for _, verb := range verbs {
				if !grants(rules, l.Resource.Group, l.Resource.Resource, verb) {
					t.Errorf("%s: the controller's rules do not grant %s on %s, which its lookup reads", it.Text, verb, l.Resource.GroupResource())
				}
			}
		}
	}
	for _, k := range spec.Kinds() {
		if (k.NodeFree || k.SameNode) && k.Supersedes == "" && !checked[k.Env] {
			t.Errorf("kind %s is judged by the controller but no lookup of it was checked", k.Env)
		}
	}
}

func grants(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	has := func(list []string, v string) bool {
		for _, x := range list {
			if x == v || x == "*" {
				return true
			}
		}
		return false
	}
	for _, r := range rules {
		if len(r.ResourceNames) == 0 && has(r.APIGroups, group) && has(r.Resources, resource) && has(r.Verbs, verb) {
			return true
		}
	}
	return false
}
