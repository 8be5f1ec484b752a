package kube_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

func TestCELReadiness(t *testing.T) {
	deployment := &unstructured.Unstructured{Object: map[string]any{
		"status": map[string]any{"readyReplicas": int64(1)},
	}}
	tests := []struct {
		name, expression string
		objects          []*unstructured.Unstructured
		wantReady        bool
		wantReason       string
	}{
		{"not found", "object.status.readyReplicas >= 1", nil, false, "not found"},
		{"true", "object.status.readyReplicas >= 1", []*unstructured.Unstructured{deployment}, true, ""},
		{"false", "object.status.readyReplicas >= 2", []*unstructured.Unstructured{deployment}, false,
			`"object.status.readyReplicas >= 2" is false`},
		{"missing field", "object.status.availableReplicas >= 2", []*unstructured.Unstructured{deployment}, false,
			`"object.status.availableReplicas >= 2" cannot be evaluated: no such key: availableReplicas`},
		{"long expression cut", "object.status.readyReplicas >= 2 && " + strings.Repeat("true && ", 30) + "true",
			[]*unstructured.Unstructured{deployment}, false, `true && true…" is false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := celcheck.Prepare(tt.expression)
			if err != nil {
				t.Fatal(err)
			}
			st := kube.CELReadiness(context.Background(), tt.objects, p)
			if st.Ready != tt.wantReady || (tt.wantReason != "" && !strings.Contains(st.Reason, tt.wantReason)) {
				t.Fatalf("CELReadiness = %+v, want ready %v with reason %q", st, tt.wantReady, tt.wantReason)
			}
		})
	}
}

// Through an Evaluator, an object's result is kept by its uid and
// resourceVersion: the same version reads as the same result, another is
// evaluated again, and an object without either is evaluated every time.
func TestCELReadinessWith(t *testing.T) {
	object := func(uid, rv string, ready int64) []*unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"readyReplicas": ready}}}
		u.SetUID(types.UID(uid))
		u.SetResourceVersion(rv)
		return []*unstructured.Unstructured{u}
	}
	p, err := celcheck.Prepare("object.status.readyReplicas >= 1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		objects   []*unstructured.Unstructured
		wantReady bool
	}{
		{"ready", object("u1", "1", 1), true},
		{"the same version, kept", object("u1", "1", 0), true},
		{"a new version", object("u1", "2", 0), false},
		{"the same version of another object", object("u2", "1", 1), true},
		{"no resourceVersion, evaluated", object("u3", "", 1), true},
		{"no resourceVersion again, evaluated", object("u3", "", 0), false},
		{"not found", nil, false},
	}
	eval := celcheck.NewEvaluator(2, 10)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := kube.CELReadinessWith(context.Background(), tt.objects, p, eval)
			if st.Ready != tt.wantReady {
				t.Fatalf("CELReadinessWith = %+v, want ready %v", st, tt.wantReady)
			}
		})
	}
}

func TestCELString(t *testing.T) {
	c := &kube.CEL{Ref: spec.CELRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "ns", Name: "api", Expression: "true"}}
	if got, want := c.String(), "cel apps/v1 Deployment ns/api"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

// The resolver waits until a ConfigMap's data satisfies the expression, through
// not found, a missing key and a false expression.
func TestCELConfigMap(t *testing.T) {
	ns := env.Namespace(t)
	ref := spec.CELRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: "rollout",
		Expression: `object.data.phase == "done" && int(object.data.replicas) >= 2`}
	w := start(t, &kube.CEL{Client: newClient(t, kube.Options{}), Ref: ref})
	w.blocked(t, "not found")
	ctx := context.Background()
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "rollout"}, Data: map[string]string{"mode": "x"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.blocked(t, "cannot be evaluated: no such key: phase")
	cm.Data = map[string]string{"phase": "done", "replicas": "1"}
	if cm, err = env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.blocked(t, `"object.data.phase == \"done\" && int(object.data.replicas) >= 2" is false`)
	w.stillBlocked(t)
	cm.Data["replicas"] = "2"
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.ready(t)
}

// A custom resource kind is found by discovery once its CRD is installed.
func TestCELBeforeItsCRD(t *testing.T) {
	ns := env.Namespace(t)
	group := "cel." + widgetGroup(ns)
	ref := spec.CELRef{APIVersion: group + "/v1", Kind: "Widget", Namespace: ns, Name: "w",
		Expression: `object.status.conditions.exists(c, c.type == "Ready" && c.status == "True")`}
	w := start(t, &kube.CEL{Client: newClient(t, kube.Options{PollInterval: 100 * time.Millisecond}), Ref: ref})
	w.blocked(t, "the API server does not serve "+group+"/v1")
	installWidgetCRD(t, group)
	w.blocked(t, "not found")
	createWidget(t, ns, group, "w", map[string]any{"status": readyCondition("False")})
	w.blocked(t, "is false")
	updateWidget(t, ns, group, "w", map[string]any{"status": readyCondition("True")})
	w.ready(t)
}

// An expression set by hand that does not compile fails at once.
func TestCELBadExpression(t *testing.T) {
	ref := spec.CELRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "default", Name: "x", Expression: "object.data =="}
	w := start(t, &kube.CEL{Client: newClient(t, kube.Options{}), Ref: ref})
	_ = w.fails(t, "does not compile")
}
