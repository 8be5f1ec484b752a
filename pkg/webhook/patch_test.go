package webhook

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"

	"strings"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// Applying podPatch to the pod as the API server sent it gives exactly the pod
// pkg/inject built, for every shape of pod in pkg/inject's golden files.
func TestPodPatchReproducesTheMutation(t *testing.T) {
	inputs, err := filepath.Glob("../inject/testdata/*.in.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	cfg := inject.Config{Image: "registry.example/kubernetes-entrypoint:1", ImageConfig: imageConfigAll{}}
	applied := 0
	for _, in := range inputs {
		t.Run(strings.TrimSuffix(filepath.Base(in), ".in.yaml"), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := yaml.YAMLToJSON(data)
			if err != nil {
				t.Fatal(err)
			}
			pod := &corev1.Pod{}
			if err := json.Unmarshal(raw, pod); err != nil {
				t.Fatal(err)
			}
			mutated, outcome, err := inject.Mutate(context.Background(), pod, cfg)
			if outcome.Result != inject.ResultInjected {
				t.Skipf("%s: %v", outcome.Reason, err)
			}
			ops := podPatch(pod, mutated)
			patchJSON, err := json.Marshal(ops)
			if err != nil {
				t.Fatal(err)
			}
			patch, err := jsonpatchapply.DecodePatch(patchJSON)
			if err != nil {
				t.Fatal(err)
			}
			got, err := patch.Apply(raw)
			if err != nil {
				t.Fatalf("applying %s: %v", patchJSON, err)
			}
			want, err := json.Marshal(mutated)
			if err != nil {
				t.Fatal(err)
			}
			// Compare as the API server will see it: decoded into a typed pod.
			gotPod := &corev1.Pod{}
			if err := json.Unmarshal(got, gotPod); err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(gotPod, mutated) {
				gotJSON, _ := json.Marshal(gotPod)
				t.Errorf("patched pod differs from the mutated pod\npatch: %s\n got: %s\nwant: %s", patchJSON, gotJSON, want)
			}
			applied++
		})
	}
	if applied == 0 {
		t.Fatal("no golden case was injected")
	}
}

// imageConfigAll answers every image with an ENTRYPOINT and a CMD.
type imageConfigAll struct{}

func (imageConfigAll) ImageConfig(context.Context, inject.ImageRef) (inject.ImageConfig, error) {
	return inject.ImageConfig{Entrypoint: []string{"/entrypoint"}, Cmd: []string{"serve"}}, nil
}

// An unknown field of a container the mutation leaves alone survives.
func TestPodPatchKeepsUnknownFields(t *testing.T) {
	raw := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"entrypoint.io/dependency-service":"db"}},` +
		`"spec":{"containers":[{"name":"app","image":"app:1","command":["/app"],"futureField":{"x":1}}],"futureSpecField":true}}`)
	pod := &corev1.Pod{}
	if err := json.Unmarshal(raw, pod); err != nil {
		t.Fatal(err)
	}
	pod.Namespace = "ns"
	mutated, outcome, err := inject.Mutate(context.Background(), pod, inject.Config{Image: "img:1"})
	if outcome.Result != inject.ResultInjected {
		t.Fatal(outcome, err)
	}
	patchJSON, _ := json.Marshal(podPatch(pod, mutated))
	patch, err := jsonpatchapply.DecodePatch(patchJSON)
	if err != nil {
		t.Fatal(err)
	}
	got, err := patch.Apply(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), `"futureField":{"x":1}`) || !strings.Contains(string(got), `"futureSpecField":true`) {
		t.Errorf("unknown fields were lost: %s", got)
	}
}
