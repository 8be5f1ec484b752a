package why

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// A pod blocked only by a false CEL expression is blocked: why once had no CEL
// branch and reported such a pod as waiting for nothing.
func TestExplainBlockedByCEL(t *testing.T) {
	deployments := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	api := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "api", "namespace": "ns"},
		"status":   map[string]any{"readyReplicas": int64(1)},
	}}
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{deployments: "DeploymentList"}, api)

	for _, tt := range []struct {
		expression string
		state      string
		blocked    bool
	}{
		{"object.status.readyReplicas >= 2", StateWaiting, true},
		{"object.status.readyReplicas >= 1", StateReady, false},
	} {
		t.Run(tt.expression, func(t *testing.T) {
			pod, _, err := inject.Mutate(context.Background(), &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Annotations: map[string]string{
					"entrypoint.io/dependency-cel": `[{"apiVersion":"apps/v1","kind":"Deployment","name":"api","expression":"` + tt.expression + `"}]`,
				}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app", Command: []string{"/app"}}}},
			}, inject.Config{Image: "ke", Controller: true})
			if err != nil {
				t.Fatal(err)
			}
			r := Explainer{Client: client, Mapper: mapper}.Explain(context.Background(), pod)
			if len(r.Dependencies) != 1 {
				t.Fatalf("dependencies %+v, want the CEL item", r.Dependencies)
			}
			d := r.Dependencies[0]
			if d.Name != "cel apps/v1 Deployment ns/api" || d.State != tt.state {
				t.Errorf("dependency %+v, want cel apps/v1 Deployment ns/api %s", d, tt.state)
			}
			if tt.state == StateWaiting && !strings.Contains(d.Reason, tt.expression) {
				t.Errorf("reason %q does not name the expression", d.Reason)
			}
			if r.Blocked != tt.blocked {
				t.Errorf("blocked %v, want %v", r.Blocked, tt.blocked)
			}
		})
	}
}
