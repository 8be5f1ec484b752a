package offline

import (
	"context"
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/manifest"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// TestNamespaceOfDependencies: a dependency without namespace is in the pod's,
// which for a template is the workload's, else kubectl's -n.
func TestNamespaceOfDependencies(t *testing.T) {
	const template = `
  template:
    metadata:
      annotations:
        entrypoint.io/dependency-service: db
    spec:
      containers:
        - name: app
          image: app
          command: [/app]
`
	tests := []struct {
		name, manifest, want string
	}{
		{"workload's namespace", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: w\n  namespace: shop\nspec:" + template, "shop:db"},
		{"template's own namespace wins", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: w\n  namespace: shop\nspec:" +
			"\n  template:\n    metadata:\n      namespace: own\n      annotations:\n        entrypoint.io/dependency-service: db\n    spec:\n      containers: [{name: app, image: app, command: [/app]}]\n", "own:db"},
		{"-n for objects without one", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: w\nspec:" + template, "apps:db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := manifest.Parse("m.yaml", []byte(tt.manifest))
			if err != nil {
				t.Fatal(err)
			}
			results, err := Inject(context.Background(), docs, Options{Config: inject.Config{Image: "ke", Controller: true}, Namespace: "apps"})
			if err != nil || len(results) != 1 || results[0].Mutated == nil {
				t.Fatalf("results %+v, err %v", results, err)
			}
			env := results[0].Mutated.Spec.Containers[0].Env
			if got := env[len(env)-1]; got.Name != "DEPENDENCY_SERVICE" || got.Value != tt.want {
				t.Errorf("%s=%s, want DEPENDENCY_SERVICE=%s", got.Name, got.Value, tt.want)
			}
		})
	}
}
