package why

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// TestEveryKindIsExplained guards why's side of the registry: every kind of
// the contract table but the configs the resolver writes is reported, each
// item once, judged (ready or waiting) when read through the API.
func TestEveryKindIsExplained(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}, meta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	lists := map[schema.GroupVersionResource]string{}
	for _, r := range []schema.GroupVersionResource{
		{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
		{Group: "batch", Version: "v1", Resource: "jobs"},
		{Version: "v1", Resource: "pods"},
		{Group: "apps", Version: "v1", Resource: "daemonsets"},
		{Group: "apps", Version: "v1", Resource: "deployments"},
		{Group: "apps", Version: "v1", Resource: "statefulsets"},
		{Version: "v1", Resource: "persistentvolumeclaims"},
		{Version: "v1", Resource: "configmaps"},
		{Version: "v1", Resource: "secrets"},
		{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"},
		{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"},
		{Group: "example.com", Version: "v1", Resource: "widgets"},
	} {
		lists[r] = "List"
	}
	x := Explainer{Client: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), lists), Mapper: mapper}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{NodeName: "node-1"}}
	for _, k := range spec.Kinds() {
		t.Run(k.Env, func(t *testing.T) {
			s := &spec.Spec{Namespace: "ns", PodName: "p", NodeName: "node-1"}
			if err := k.Parse(s, k.Example); err != nil {
				t.Fatal(err)
			}
			got := x.dependencies(context.Background(), pod, s)
			want := k.Count(s)
			if k.Env == spec.EnvConfigs {
				want = 0 // the resolver writes them: nothing to wait for
			}
			if len(got) != want {
				t.Fatalf("%s=%s: %d dependencies reported, want %d: %+v", k.Env, k.Example, len(got), want, got)
			}
			for _, d := range got {
				if judged := d.State != StateUnknown; judged != k.API {
					t.Errorf("%s: %+v judged %v, want %v", k.Env, d, judged, k.API)
				}
			}
		})
	}
}
