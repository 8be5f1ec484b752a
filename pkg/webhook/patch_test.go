package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
	inputs := goldenInputs(t)
	applied := 0
	for _, in := range inputs {
		t.Run(strings.TrimSuffix(filepath.Base(in), ".in.yaml"), func(t *testing.T) {
			raw := goldenJSON(t, in)
			pod := &corev1.Pod{}
			if err := json.Unmarshal(raw, pod); err != nil {
				t.Fatal(err)
			}
			mutated, outcome, err := inject.Mutate(context.Background(), pod, goldenConfig(t, in))
			if outcome.Result != inject.ResultInjected {
				t.Fatalf("not injected: %+v, %v", outcome, err)
			}
			got := applyPodPatch(t, raw, pod, mutated)
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
				t.Errorf("patched pod differs from the mutated pod\n got: %s\nwant: %s", gotJSON, want)
			}
			applied++
		})
	}
	if applied == 0 {
		t.Fatal("no golden case was injected")
	}
}

// goldenInputs are pkg/inject's golden inputs: those of the annotated path,
// then those of adoption (testdata/adopt).
func goldenInputs(t *testing.T) []string {
	t.Helper()
	var inputs []string
	for _, pattern := range []string{"../inject/testdata/*.in.yaml", "../inject/testdata/adopt/*.in.yaml"} {
		found, err := filepath.Glob(pattern)
		if err != nil || len(found) == 0 {
			t.Fatalf("no golden inputs %s: %v", pattern, err)
		}
		inputs = append(inputs, found...)
	}
	return inputs
}

// goldenConfig is the config of the pkg/inject golden input at path: the
// controller on, every image with an ENTRYPOINT, adoption asked for those of
// testdata/adopt, changed by the case's .config.yaml when there is one.
func goldenConfig(t *testing.T, path string) inject.Config {
	t.Helper()
	cfg := inject.Config{Image: "registry.example/kubernetes-entrypoint:1", ImageConfig: imageConfigAll{}, Controller: true}
	cfg.NamespaceAdopted = filepath.Base(filepath.Dir(path)) == "adopt"
	b, err := os.ReadFile(strings.TrimSuffix(path, ".in.yaml") + ".config.yaml")
	if errors.Is(err, os.ErrNotExist) {
		return cfg
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg
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
	ops, err := podPatch(pod, mutated)
	if err != nil {
		t.Fatal(err)
	}
	patchJSON, _ := json.Marshal(ops)
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

// futureKey is the member added to objects of a pod to stand for fields of an API
// server newer than this build; its value names the object it was added to.
const futureKey = "futureField"

// userDataMaps are members whose objects are maps of the user's keys, not structs:
// a key added there would be data, not an unknown field.
func userDataMaps() []string {
	return []string{"annotations", "labels", "nodeSelector", "limits", "requests", "overhead"}
}

// identity names the place of a member of a pod's JSON independently of array
// indices, which the patch may shift: containers, env entries and volumes by name,
// volume mounts by name and mount path.
func identity(parent, key string, index int, item any) string {
	obj, _ := item.(map[string]any)
	name, _ := obj["name"].(string)
	switch key {
	case "containers", "initContainers", "ephemeralContainers", "env", "volumes":
		return parent + "." + key + "[" + name + "]"
	case "volumeMounts":
		mountPath, _ := obj["mountPath"].(string)
		return parent + "." + key + "[" + name + "@" + mountPath + "]"
	}
	return parent + "." + key + "[" + strconv.Itoa(index) + "]"
}

// walkObjects calls visit for every JSON object in v that is not a map of user
// data, with its identity.
func walkObjects(v any, id string, visit func(obj map[string]any, id string)) {
	obj, ok := v.(map[string]any)
	if !ok {
		return
	}
	visit(obj, id)
	for key, member := range obj {
		if slices.Contains(userDataMaps(), key) {
			continue
		}
		switch m := member.(type) {
		case map[string]any:
			walkObjects(m, id+"."+key, visit)
		case []any:
			for i, item := range m {
				walkObjects(item, identity(id, key, i, item), visit)
			}
		}
	}
}

// withFutureFields gives the pod in doc what the mutation touches and the golden
// files may lack (a volume; in every container an env entry from the downward API,
// a volume mount and a securityContext), then adds futureKey to every object.
func withFutureFields(doc map[string]any) {
	spec := doc["spec"].(map[string]any)
	volumes, _ := spec["volumes"].([]any)
	spec["volumes"] = append(volumes, map[string]any{"name": "future-volume", "emptyDir": map[string]any{}})
	for _, list := range []string{"initContainers", "containers"} {
		containers, _ := spec[list].([]any)
		for _, c := range containers {
			c := c.(map[string]any)
			env, _ := c["env"].([]any)
			c["env"] = append(env, map[string]any{"name": "FUTURE_VAR", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "metadata.uid"}}})
			mounts, _ := c["volumeMounts"].([]any)
			c["volumeMounts"] = append(mounts, map[string]any{"name": "future-volume", "mountPath": "/future"})
			if _, ok := c["securityContext"]; !ok {
				c["securityContext"] = map[string]any{}
			}
		}
	}
	walkObjects(doc, "pod", func(obj map[string]any, id string) { obj[futureKey] = id })
}

// futureFields finds every futureKey in doc: where it was put, by where it is now.
func futureFields(doc map[string]any) map[string]string {
	found := map[string]string{}
	walkObjects(doc, "pod", func(obj map[string]any, id string) {
		if put, ok := obj[futureKey].(string); ok {
			found[put] = id
		}
	})
	return found
}

// Fields this build does not know, at every level the mutation touches, survive
// the patch applied to the pod's raw JSON, each where the user wrote it, for every
// shape of pod in pkg/inject's golden files; and the patched pod is still the
// mutated one.
func TestPodPatchKeepsFutureFieldsEverywhere(t *testing.T) {
	inputs := goldenInputs(t)
	// levels counts the surviving fields at the places the old patch lost them.
	levels := map[string]int{}
	for _, in := range inputs {
		t.Run(strings.TrimSuffix(filepath.Base(in), ".in.yaml"), func(t *testing.T) {
			plain := goldenJSON(t, in)
			var doc map[string]any
			if err := json.Unmarshal(plain, &doc); err != nil {
				t.Fatal(err)
			}
			withFutureFields(doc)
			put := futureFields(doc)
			raw, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			pod := &corev1.Pod{}
			if err := json.Unmarshal(raw, pod); err != nil {
				t.Fatal(err)
			}
			mutated, outcome, err := inject.Mutate(context.Background(), pod, goldenConfig(t, in))
			if outcome.Result != inject.ResultInjected {
				t.Fatalf("not injected: %+v, %v", outcome, err)
			}
			got := applyPodPatch(t, raw, pod, mutated)

			gotPod := &corev1.Pod{}
			if err := json.Unmarshal(got, gotPod); err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(gotPod, mutated) {
				want, _ := json.Marshal(mutated)
				gotJSON, _ := json.Marshal(gotPod)
				t.Errorf("patched pod differs from the mutated pod\n got: %s\nwant: %s", gotJSON, want)
			}

			var gotDoc map[string]any
			if err := json.Unmarshal(got, &gotDoc); err != nil {
				t.Fatal(err)
			}
			after := futureFields(gotDoc)
			for place, id := range put {
				now, ok := after[place]
				switch {
				case !ok:
					t.Errorf("the field added at %s is gone\npatched pod: %s", place, got)
				case now != id:
					t.Errorf("the field added at %s is now at %s", place, now)
				default:
					for _, level := range futureLevels() {
						if strings.Contains(place, level) {
							levels[level]++
						}
					}
				}
			}
			if len(after) != len(put) {
				t.Errorf("%d unknown fields after the patch, want the %d put in", len(after), len(put))
			}
		})
	}
	// The golden inputs together reach every level the old whole-array patch lost.
	for _, level := range futureLevels() {
		if levels[level] == 0 {
			t.Errorf("no unknown field was tried at %s", level)
		}
	}
}

// futureLevels are the places of a pod where the patch appends to what the user
// wrote, so unknown fields there are at risk.
func futureLevels() []string {
	return []string{"].securityContext", ".env[FUTURE_VAR].valueFrom.fieldRef", ".volumeMounts[", ".volumes[", "initContainers[", ".schedulingGates["}
}

// applyPodPatch applies podPatch(pod, mutated) to raw, the pod as the API server
// sent it, and returns the patched document.
func applyPodPatch(t *testing.T, raw []byte, pod, mutated *corev1.Pod) []byte {
	t.Helper()
	ops, err := podPatch(pod, mutated)
	if err != nil {
		t.Fatal(err)
	}
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
	return got
}

// goldenJSON is the pkg/inject golden input at path, as JSON.
func goldenJSON(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// The label and the scheduling gate are patched by key and by index: the whole
// map or list added when the pod has none, else one key set (its '/' escaped) or
// one gate appended, and the author's gate not added twice.
func TestPodPatchLabelAndSchedulingGate(t *testing.T) {
	tests := []struct {
		name     string
		metadata string // the pod's metadata members after the name
		gates    string // the pod's spec.schedulingGates, JSON, or ""
		ops      []string
	}{
		{name: "neither", ops: []string{`add /metadata/labels {"entrypoint.io/managed":"true"}`, `add /spec/schedulingGates [{"name":"entrypoint.io/dependencies"}]`}},
		{name: "labels and another gate", metadata: `,"labels":{"app":"web"}`, gates: `[{"name":"example.com/quota"}]`,
			ops: []string{`add /metadata/labels/entrypoint.io~1managed "true"`, `add /spec/schedulingGates/- {"name":"entrypoint.io/dependencies"}`}},
		{name: "managed false and the author's gate", metadata: `,"labels":{"entrypoint.io/managed":"false"}`, gates: `[{"name":"entrypoint.io/dependencies"}]`,
			ops: []string{`add /metadata/labels/entrypoint.io~1managed "true"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gates := ""
			if tt.gates != "" {
				gates = `"schedulingGates":` + tt.gates + `,`
			}
			raw := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"ns"` + tt.metadata +
				`,"annotations":{"entrypoint.io/gate":"true","entrypoint.io/dependency-service":"db"}},` +
				`"spec":{` + gates + `"containers":[{"name":"app","image":"app:1","command":["/app"]}]}}`)
			pod := &corev1.Pod{}
			if err := json.Unmarshal(raw, pod); err != nil {
				t.Fatal(err)
			}
			mutated, outcome, err := inject.Mutate(context.Background(), pod, inject.Config{Image: "img:1", Controller: true})
			if outcome.Result != inject.ResultInjected {
				t.Fatal(outcome, err)
			}
			ops, err := podPatch(pod, mutated)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range ops {
				if strings.HasPrefix(o.Path, "/metadata/labels") || strings.HasPrefix(o.Path, "/spec/schedulingGates") {
					value, _ := json.Marshal(o.Value)
					got = append(got, o.Operation+" "+o.Path+" "+string(value))
				}
			}
			if !slices.Equal(got, tt.ops) {
				t.Errorf("operations\n got %q\nwant %q", got, tt.ops)
			}
			patched := &corev1.Pod{}
			if err := json.Unmarshal(applyPodPatch(t, raw, pod, mutated), patched); err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(patched, mutated) {
				t.Errorf("patched pod differs from the mutated pod:\n got %+v\nwant %+v", patched.ObjectMeta, mutated.ObjectMeta)
			}
		})
	}
}
