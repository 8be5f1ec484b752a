package controller

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// What each kind's informer keeps: what its rule reads, no Secret value, and
// none of the large parts its rule never reads.
func TestSlimmerKeepsWhatTheRulesRead(t *testing.T) {
	tests := []struct {
		name       string
		gvr        schema.GroupVersionResource
		object     string
		gone, kept []string
	}{
		{"secret", kube.SecretsResource,
			`{"metadata":{"name":"s","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"k\":\"c2VjcmV0\"}}"},"managedFields":[{}]},"data":{"k":"c2VjcmV0"}}`,
			[]string{"c2VjcmV0", "last-applied", "managedFields"}, []string{`"k":""`}},
		{"configmap keeps keys only (a rule comparing values GETs the object)", kube.ConfigMapsResource,
			`{"metadata":{"name":"c","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"region\":\"eu\"}}"}},"data":{"region":"eu"},"binaryData":{"blob":"AAAA"}}`,
			[]string{`"eu"`, "AAAA", "last-applied"}, []string{`"region":""`, `"blob":""`}},
		{"deployment", kube.WorkloadResource(spec.WorkloadDeployment),
			`{"metadata":{"name":"d","generation":2},"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"big"}]}}},"status":{"observedGeneration":2}}`,
			[]string{"template", "big"}, []string{`"replicas":3`, `"observedGeneration":2`}},
		{"statefulset", kube.WorkloadResource(spec.WorkloadStatefulSet),
			`{"metadata":{"name":"s"},"spec":{"replicas":1,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":0}},"template":{},"volumeClaimTemplates":[{}]}}`,
			[]string{"template", "volumeClaimTemplates"}, []string{`"partition":0`}},
		{"crd", kube.CRDsResource,
			`{"metadata":{"name":"x.example.com"},"spec":{"versions":[{"schema":"huge"}]},"status":{"conditions":[{"type":"Established","status":"True"}]}}`,
			[]string{"huge"}, []string{"Established"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			if err := json.Unmarshal([]byte(tt.object), &u.Object); err != nil {
				t.Fatal(err)
			}
			out, err := slimmer(tt.gvr)(u)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(out.(*unstructured.Unstructured).Object)
			for _, g := range tt.gone {
				if strings.Contains(string(raw), g) {
					t.Errorf("%s still holds %q", raw, g)
				}
			}
			for _, k := range tt.kept {
				if !strings.Contains(string(raw), k) {
					t.Errorf("%s lost %q", raw, k)
				}
			}
		})
	}
}

// The node-free dependencies of the new kinds, and the Secrets only when the
// controller watches them; otherwise the Ready message names them as the
// resolver's.
func TestNodeFreeNewKinds(t *testing.T) {
	deps, err := spec.FromEnv(func(k string) (string, bool) {
		v, ok := map[string]string{
			"NAMESPACE": "ns", spec.EnvRollouts: "statefulset/db", spec.EnvClaims: "data", spec.EnvConfigMaps: "c/k",
			spec.EnvSecrets: "s/p", spec.EnvCRDs: "widgets.example.com",
		}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	texts := func(list []dependency) string {
		var out []string
		for _, d := range list {
			out = append(out, d.text+" @"+resourceName(d.gvr))
		}
		return strings.Join(out, ", ")
	}
	base := "rollout ns/statefulset/db @statefulsets.apps, pvc ns/data @persistentvolumeclaims, configmap ns/c/k @configmaps, "
	crd := "crd widgets.example.com @customresourcedefinitions.apiextensions.k8s.io, crd widgets.example.com @apiservices.apiregistration.k8s.io"
	if got, want := texts(nodeFree(deps, lookupConfig{})), base+crd; got != want {
		t.Errorf("without secrets:\n%s\nwant\n%s", got, want)
	}
	if got, want := texts(nodeFree(deps, lookupConfig{secrets: true})), base+"secret ns/s/p @secrets, "+crd; got != want {
		t.Errorf("with secrets:\n%s\nwant\n%s", got, want)
	}
	if got := nodeLocal(deps, false, false); len(got) != 1 || got[0] != "secret ns/s/p" {
		t.Errorf("nodeLocal without secrets = %q", got)
	}
	if got := nodeLocal(deps, true, false); len(got) != 0 {
		t.Errorf("nodeLocal with secrets = %q", got)
	}
	// The APIServices are selected all together, under a key the index can hold.
	for _, d := range nodeFree(deps, lookupConfig{}) {
		if d.gvr == kube.APIServicesResource && d.key().selector != everything {
			t.Errorf("APIServices key %+v", d.key())
		}
	}
}
