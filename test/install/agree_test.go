package install

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// objectKey identifies an object within one install.
func objectKey(o *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
}

// comparableForm drops what legitimately differs between the chart and kustomize: the
// labels on the objects themselves (Helm's release labels, kustomize's). Selectors
// and pod template labels are kept and must agree.
func comparableForm(o *unstructured.Unstructured) map[string]any {
	c := o.DeepCopy()
	c.SetLabels(nil)
	return c.Object
}

// The kustomize build of config/default is the chart's default install, and that of
// config/self-signed the chart's with tls.mode=self-signed (plus the Namespace,
// which `helm install --create-namespace` creates instead): the same
// objects, equal field by field apart from their own labels. The webhook
// configuration is compared field by field first, so that a difference there reads
// clearly.
func TestChartAndKustomizeAgree(t *testing.T) {
	for _, tc := range []struct {
		dir    string
		values map[string]any
	}{
		{"default", nil},
		{"self-signed", map[string]any{"tls": map[string]any{"mode": "self-signed"}}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			assertAgree(t, parseObjects(t, mustRender(t, releaseNamespace, tc.values).Manifest),
				parseObjects(t, kustomizeBuild(t, filepath.Join(repoRoot, "config", tc.dir))))
		})
	}
}

func assertAgree(t *testing.T, chartObjs, kustObjs []*unstructured.Unstructured) {

	chartMWC, kustMWC := find(t, chartObjs, "MutatingWebhookConfiguration"), find(t, kustObjs, "MutatingWebhookConfiguration")
	if chartMWC.GetName() != kustMWC.GetName() {
		t.Errorf("MutatingWebhookConfiguration names: chart %q, kustomize %q", chartMWC.GetName(), kustMWC.GetName())
	}
	if a, b := chartMWC.GetAnnotations(), kustMWC.GetAnnotations(); !reflect.DeepEqual(a, b) {
		t.Errorf("MutatingWebhookConfiguration annotations (CA injection): chart %v, kustomize %v", a, b)
	}
	chartHooks, _, _ := unstructured.NestedSlice(chartMWC.Object, "webhooks")
	kustHooks, _, _ := unstructured.NestedSlice(kustMWC.Object, "webhooks")
	// pods.entrypoint.io for annotated pods, adopt.entrypoint.io for adoption.
	if len(chartHooks) != 2 || len(kustHooks) != 2 {
		t.Fatalf("want two webhooks in each configuration, chart has %d, kustomize %d", len(chartHooks), len(kustHooks))
	}
	for i := range chartHooks {
		ch, kh := chartHooks[i].(map[string]any), kustHooks[i].(map[string]any)
		for _, field := range []string{
			"name", "clientConfig", "rules", "matchConditions", "namespaceSelector", "objectSelector", "failurePolicy",
			"matchPolicy", "sideEffects", "reinvocationPolicy", "timeoutSeconds", "admissionReviewVersions",
		} {
			if !reflect.DeepEqual(ch[field], kh[field]) {
				t.Errorf("webhook %d %s: chart %s, kustomize %s", i, field, toJSON(ch[field]), toJSON(kh[field]))
			}
		}
		for _, field := range []string{"matchConditions", "namespaceSelector", "failurePolicy", "sideEffects", "reinvocationPolicy", "timeoutSeconds"} {
			if ch[field] == nil {
				t.Errorf("the chart's webhook %d has no %s", i, field)
			}
		}
	}

	chartByKey := map[string]*unstructured.Unstructured{}
	for _, o := range chartObjs {
		chartByKey[objectKey(o)] = o
	}
	kustByKey := map[string]*unstructured.Unstructured{}
	for _, o := range kustObjs {
		if o.GetKind() == "Namespace" {
			if o.GetName() != releaseNamespace {
				t.Errorf("kustomize creates namespace %q, the chart is installed in %q", o.GetName(), releaseNamespace)
			}
			continue
		}
		kustByKey[objectKey(o)] = o
	}
	if a, b := sortedKeys(chartByKey), sortedKeys(kustByKey); !reflect.DeepEqual(a, b) {
		t.Fatalf("different objects:\nchart     %q\nkustomize %q", a, b)
	}
	for key, c := range chartByKey {
		if a, b := comparableForm(c), comparableForm(kustByKey[key]); !reflect.DeepEqual(a, b) {
			t.Errorf("%s differs:\nchart     %s\nkustomize %s", key, toJSON(a), toJSON(b))
		}
	}
}

func sortedKeys(m map[string]*unstructured.Unstructured) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
