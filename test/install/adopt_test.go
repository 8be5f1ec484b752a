package install

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/openstackhelm"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// The chart's adoption webhook: rendered with the dependency controller only,
// failing open, for pods without entrypoint.io/ annotations that carry the
// original image's contract, in namespaces labelled entrypoint.io/adopt=true, or
// in every namespace but the excluded ones with webhook.adoptAllNamespaces, which
// also reaches the webhook's flags.
func TestChartAdoptionWebhook(t *testing.T) {
	for _, tc := range []struct {
		name      string
		values    map[string]any
		rendered  bool
		labelled  bool // the namespaceSelector asks for entrypoint.io/adopt=true
		everyFlag bool // the webhook runs with --adopt-all-namespaces
	}{
		{name: "default", rendered: true, labelled: true},
		{name: "every namespace", values: map[string]any{"webhook": map[string]any{"adoptAllNamespaces": true}}, rendered: true, everyFlag: true},
		{name: "controller in the webhook's process", values: map[string]any{"controller": map[string]any{"separate": false}}, rendered: true, labelled: true},
		{name: "no controller", values: map[string]any{"controller": map[string]any{"enabled": false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := parseObjects(t, mustRender(t, releaseNamespace, tc.values).Manifest)
			hooks, _, _ := unstructured.NestedSlice(find(t, objs, "MutatingWebhookConfiguration").Object, "webhooks")
			if first := hooks[0].(map[string]any); first["name"] != "pods.entrypoint.io" {
				t.Errorf("first webhook %v, want pods.entrypoint.io (tests and tools read webhooks[0])", first["name"])
			}
			var adopt map[string]any
			for _, h := range hooks {
				if h := h.(map[string]any); h["name"] == "adopt.entrypoint.io" {
					adopt = h
				}
			}
			if (adopt != nil) != tc.rendered {
				t.Fatalf("adopt.entrypoint.io rendered %v, want %v", adopt != nil, tc.rendered)
			}
			args := container(t, deployment(objs, "-webhook")).Args
			if got := slices.Contains(args, "--adopt-all-namespaces"); got != tc.everyFlag {
				t.Errorf("webhook args %q: --adopt-all-namespaces %v, want %v", args, got, tc.everyFlag)
			}
			if adopt == nil {
				return
			}
			if adopt["failurePolicy"] != "Ignore" || adopt["reinvocationPolicy"] != "Never" {
				t.Errorf("failurePolicy %v, reinvocationPolicy %v; want Ignore (adoption fails open) and Never", adopt["failurePolicy"], adopt["reinvocationPolicy"])
			}
			pods := hooks[0].(map[string]any)
			if toJSON(adopt["clientConfig"]) != toJSON(pods["clientConfig"]) || toJSON(adopt["rules"]) != toJSON(pods["rules"]) {
				t.Errorf("adopt.entrypoint.io calls %s for %s; want the same service and rules as pods.entrypoint.io, %s for %s",
					toJSON(adopt["clientConfig"]), toJSON(adopt["rules"]), toJSON(pods["clientConfig"]), toJSON(pods["rules"]))
			}
			var conditions []string
			for _, c := range adopt["matchConditions"].([]any) {
				conditions = append(conditions, c.(map[string]any)["expression"].(string))
			}
			if len(conditions) != 2 || !strings.Contains(conditions[0], "!object.metadata.annotations.exists(k, k.startsWith('entrypoint.io/'))") ||
				!strings.Contains(conditions[1], "e.name == 'DEPENDENCY_SERVICE'") {
				t.Errorf("matchConditions %q: want no entrypoint.io/ annotation and an init container with DEPENDENCY_SERVICE", conditions)
			}
			selector := toJSON(adopt["namespaceSelector"])
			if want := `"key":"entrypoint.io/adopt","operator":"In","values":["true"]`; strings.Contains(selector, want) != tc.labelled {
				t.Errorf("namespaceSelector %s: label entrypoint.io/adopt=true asked %v, want %v", selector, !tc.labelled, tc.labelled)
			}
			if want := `"values":["kube-system","` + releaseNamespace + `"]`; !strings.Contains(selector, want) {
				t.Errorf("namespaceSelector %s does not exclude kube-system and the release namespace", selector)
			}
		})
	}
}

// The chart's default controller.customResourceRules (the controller's allow-list)
// cover every custom resource the rendered openstack-helm charts wait for, so
// that adopting them needs no value changed. Today they name none
// (DEPENDENCY_CUSTOM_RESOURCE is "" everywhere, and the original image knows no
// DEPENDENCY_CEL_JSON): the count is asserted, so that test data naming one makes
// this test judge it.
func TestChartAllowsOpenstackHelmCustomResources(t *testing.T) {
	controller, _ := loadChart(t).Values["controller"].(map[string]any)
	rules, _ := controller["customResourceRules"].([]any)
	covered := func(group, kind string) bool {
		for _, r := range rules {
			r, _ := r.(map[string]any)
			groups, _ := r["apiGroups"].([]any)
			resources, _ := r["resources"].([]any)
			// Without discovery the plural is guessed: the kind in lower case, plus s.
			if slices.Contains(groups, any(group)) && (slices.Contains(resources, any("*")) || slices.Contains(resources, any(strings.ToLower(kind)+"s"))) {
				return true
			}
		}
		return false
	}
	named := 0
	for _, chart := range openstackhelm.Charts() {
		workloads, err := openstackhelm.Workloads(chart)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range workloads {
			for _, c := range w.Pod.Spec.InitContainers {
				env := map[string]string{}
				for _, e := range c.Env {
					if e.ValueFrom == nil {
						env[e.Name] = e.Value
					}
				}
				env["NAMESPACE"], env["POD_NAME"] = openstackhelm.Namespace, "pod-0"
				s, err := spec.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
				if err != nil {
					t.Fatalf("%s %s %s, init container %s: %v", chart, w.Kind, w.Name, c.Name, err)
				}
				type ref struct{ apiVersion, kind string }
				var refs []ref
				for _, r := range s.CustomResources {
					refs = append(refs, ref{r.APIVersion, r.Kind})
				}
				for _, r := range s.CEL {
					refs = append(refs, ref{r.APIVersion, r.Kind})
				}
				for _, r := range refs {
					group, _, found := strings.Cut(r.apiVersion, "/")
					if !found {
						continue // the core group: the contract's own kinds
					}
					named++
					if !covered(group, r.kind) {
						t.Errorf("%s %s %s waits for %s %s, which controller.customResourceRules does not allow by default", chart, w.Kind, w.Name, r.kind, r.apiVersion)
					}
				}
			}
		}
	}
	if named != 0 {
		t.Errorf("the rendered openstack-helm charts name %d custom resources, none before: check that the chart's default allows them", named)
	}
	t.Logf("the rendered openstack-helm charts (%d) name %d custom resources; controller.customResourceRules has %d rules by default",
		len(openstackhelm.Charts()), named, len(rules))
}
