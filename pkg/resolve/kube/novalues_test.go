package kube_test

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// The value every object below holds; no reason may repeat it, nor the pod
// author's guess of it.
const (
	secretValue = "hunter2-s3cret"
	guess       = "guessed-value"
)

func valuedObject() []*unstructured.Unstructured {
	return []*unstructured.Unstructured{{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "db", "namespace": "other"},
		"data":     map[string]any{"password": secretValue, "mode": secretValue},
		"status":   map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": secretValue}}},
	}}}
}

// TestReasonsNameNoValue: conditions, Events and logs repeat these reasons, so a
// field that does not match, a condition of another status and a CEL error are
// named without the object's value or the wanted one.
func TestReasonsNameNoValue(t *testing.T) {
	ref := spec.CustomResourceRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "other", Name: "db",
		Fields:     []spec.FieldMatch{field("data.password", `"`+guess+`"`), field("data.mode", `3`), field("data.absent", `"`+guess+`"`)},
		Conditions: []spec.ConditionMatch{{Type: "Ready", Status: "True"}}}
	st := kube.CustomResourceReadiness(valuedObject(), ref)
	want := "field data.password does not match; field data.mode does not match; field data.absent is absent; condition Ready is not True"
	if st.Ready || st.Reason != want {
		t.Fatalf("CustomResourceReadiness = %+v, want not ready with %q", st, want)
	}

	for _, tt := range []struct{ expression, want string }{
		{`object.data[object.data.password] == "x"`, "no such key (one the expression computes; not shown, as it may be a value)"},
		{`object.data.missing == "x"`, "no such key: missing"},
		{`int(object.data.password) > 0`, "type conversion error from 'string' to 'int'"},
		{`object.data.password + 1 == 2`, "no such overload"},
		{`object.data.password == "` + guess + `"`, "is false"},
	} {
		p, err := celcheck.Prepare(tt.expression)
		if err != nil {
			t.Fatalf("Prepare(%s): %v", tt.expression, err)
		}
		st := kube.CELReadiness(context.Background(), valuedObject(), p)
		if st.Ready || !strings.HasSuffix(st.Reason, tt.want) || strings.Contains(st.Reason, secretValue) {
			t.Errorf("CELReadiness(%s) = %+v, want a reason ending in %q and without the value", tt.expression, st, tt.want)
		}
	}
}
