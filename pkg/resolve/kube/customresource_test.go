package kube_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// widgetGroup is an API group of its own for one test, so that a CRD installed by
// one run (-count) is not there yet for the next.
func widgetGroup(ns string) string { return ns + ".example.com" }

// installWidgetCRD installs widgets.<group> (kind Widget, namespaced, v1, any
// content, no status subresource) and waits until it is served.
func installWidgetCRD(t *testing.T, group string) {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList",
			},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
	opts := envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{crd}}
	if _, err := envtest.InstallCRDs(env.Config, opts); err != nil {
		t.Fatalf("installing the CRD widgets.%s: %v", group, err)
	}
	t.Cleanup(func() { _ = envtest.UninstallCRDs(env.Config, opts) })
}

func dynamicClient(t *testing.T) dynamic.Interface {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return dyn
}

func widgets(group string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}
}

// createWidget creates a Widget whose top-level fields besides metadata are content.
func createWidget(t *testing.T, ns, group, name string, content map[string]any) {
	t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": group + "/v1", "kind": "Widget", "metadata": map[string]any{"name": name},
	}}
	for k, v := range content {
		obj.Object[k] = v
	}
	if _, err := dynamicClient(t).Resource(widgets(group)).Namespace(ns).Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating widget %s/%s: %v", ns, name, err)
	}
}

// updateWidget replaces the Widget's top-level fields besides metadata with content.
func updateWidget(t *testing.T, ns, group, name string, content map[string]any) {
	t.Helper()
	ctx := context.Background()
	client := dynamicClient(t).Resource(widgets(group)).Namespace(ns)
	obj, err := client.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k := range obj.Object {
		if k != "apiVersion" && k != "kind" && k != "metadata" {
			delete(obj.Object, k)
		}
	}
	for k, v := range content {
		obj.Object[k] = v
	}
	if _, err := client.Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating widget %s/%s: %v", ns, name, err)
	}
}

// field is a FieldMatch whose value is the JSON text given.
func field(key, valueJSON string) spec.FieldMatch {
	return spec.FieldMatch{Key: key, Value: json.RawMessage(valueJSON)}
}

func readyCondition(status string) map[string]any {
	return map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": status, "reason": "Test"}}}
}

func TestCustomResourceFieldsAndConditions(t *testing.T) {
	ns := env.Namespace(t)
	group := widgetGroup(ns)
	installWidgetCRD(t, group)
	for i, tc := range []struct {
		name          string
		fields        []spec.FieldMatch
		conditions    []spec.ConditionMatch
		before, after map[string]any // the widget's spec and status
		reason        string         // while it is as before
	}{
		{
			name:   "integer from a JSON string",
			fields: []spec.FieldMatch{field("spec.replicas", `"3"`)},
			before: map[string]any{"spec": map[string]any{"replicas": int64(2)}},
			after:  map[string]any{"spec": map[string]any{"replicas": int64(3)}},
			reason: `field spec.replicas does not match`,
		},
		{
			name:   "integer as a JSON number",
			fields: []spec.FieldMatch{field("spec.replicas", `3.0`)},
			before: map[string]any{"spec": map[string]any{"replicas": int64(2)}},
			after:  map[string]any{"spec": map[string]any{"replicas": int64(3)}},
			reason: `field spec.replicas does not match`,
		},
		{
			name:   "boolean",
			fields: []spec.FieldMatch{field("spec.enabled", `true`)},
			before: map[string]any{"spec": map[string]any{"enabled": false}},
			after:  map[string]any{"spec": map[string]any{"enabled": true}},
			reason: `field spec.enabled does not match`,
		},
		{
			name:   "boolean from a JSON string",
			fields: []spec.FieldMatch{field("spec.enabled", `"true"`)},
			before: map[string]any{"spec": map[string]any{"enabled": false}},
			after:  map[string]any{"spec": map[string]any{"enabled": true}},
			reason: `field spec.enabled does not match`,
		},
		{
			name:   "string",
			fields: []spec.FieldMatch{field("status.phase", `"Ready"`)},
			before: map[string]any{"status": map[string]any{"phase": "Pending"}},
			after:  map[string]any{"status": map[string]any{"phase": "Ready"}},
			reason: `field status.phase does not match`,
		},
		{
			// The text of a wanted JSON string may itself be JSON: "\"Ready\"" is the
			// JSON encoding of the string Ready, as "3" is that of the number 3.
			name:   "string from a JSON-encoded string",
			fields: []spec.FieldMatch{field("status.phase", `"\"Ready\""`)},
			before: map[string]any{"status": map[string]any{"phase": "Pending"}},
			after:  map[string]any{"status": map[string]any{"phase": "Ready"}},
			reason: `field status.phase does not match`,
		},
		{
			// A JSON number wants a number: the string "3" is not 3.
			name:   "number against a string",
			fields: []spec.FieldMatch{field("spec.version", `3`)},
			before: map[string]any{"spec": map[string]any{"version": "3"}},
			after:  map[string]any{"spec": map[string]any{"version": int64(3)}},
			reason: `field spec.version does not match`,
		},
		{
			name:   "object",
			fields: []spec.FieldMatch{field("spec.selector", `{"app": "db", "tier": "backend"}`)},
			before: map[string]any{"spec": map[string]any{"selector": map[string]any{"app": "db"}}},
			after:  map[string]any{"spec": map[string]any{"selector": map[string]any{"tier": "backend", "app": "db"}}},
			reason: `field spec.selector does not match`,
		},
		{
			name:   "absent field",
			fields: []spec.FieldMatch{field("status.endpoint", `"db:3306"`)},
			before: map[string]any{"status": map[string]any{}},
			after:  map[string]any{"status": map[string]any{"endpoint": "db:3306"}},
			reason: `field status.endpoint is absent`,
		},
		{
			name:       "condition",
			conditions: []spec.ConditionMatch{{Type: "Ready", Status: "True"}},
			before:     map[string]any{"status": readyCondition("False")},
			after:      map[string]any{"status": readyCondition("True")},
			reason:     "condition Ready is not True",
		},
		{
			name:       "condition False",
			conditions: []spec.ConditionMatch{{Type: "Ready", Status: "False"}},
			before:     map[string]any{"status": readyCondition("True")},
			after:      map[string]any{"status": readyCondition("False")},
			reason:     "condition Ready is not False",
		},
		{
			name:       "every field and condition",
			fields:     []spec.FieldMatch{field("spec.replicas", `3`), field("status.phase", `"Ready"`)},
			conditions: []spec.ConditionMatch{{Type: "Ready", Status: "True"}},
			before:     map[string]any{"spec": map[string]any{"replicas": int64(3)}, "status": map[string]any{"phase": "Pending"}},
			after: map[string]any{"spec": map[string]any{"replicas": int64(3)},
				"status": map[string]any{"phase": "Ready", "conditions": readyCondition("True")["conditions"]}},
			reason: `field status.phase does not match; condition Ready is absent, want True`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("widget-%d", i)
			ref := spec.CustomResourceRef{APIVersion: group + "/v1", Kind: "Widget", Namespace: ns, Name: name,
				Fields: tc.fields, Conditions: tc.conditions}
			w := start(t, &kube.CustomResource{Client: newClient(t, kube.Options{}), Ref: ref})
			w.blocked(t, "not found")
			createWidget(t, ns, group, name, tc.before)
			w.blocked(t, tc.reason)
			updateWidget(t, ns, group, name, tc.after)
			w.ready(t)
		})
	}
}

// The wait may start before the CRD is installed (another release installs it).
func TestCustomResourceBeforeItsCRD(t *testing.T) {
	ns := env.Namespace(t)
	group := widgetGroup(ns)
	ref := spec.CustomResourceRef{APIVersion: group + "/v1", Kind: "Widget", Namespace: ns, Name: "nova-db",
		Fields: []spec.FieldMatch{field("status.phase", `"Ready"`)}}
	// Discovery is retried on the poll interval.
	c := newClient(t, kube.Options{PollInterval: 100 * time.Millisecond})
	w := start(t, &kube.CustomResource{Client: c, Ref: ref})
	w.blocked(t, "the API server does not serve "+group+"/v1 (is the CRD installed?)")
	installWidgetCRD(t, group)
	w.blocked(t, "not found")
	createWidget(t, ns, group, "nova-db", map[string]any{"status": map[string]any{"phase": "Ready"}})
	w.ready(t)
}

// A served group without the kind says so.
func TestCustomResourceKindNotServed(t *testing.T) {
	ns := env.Namespace(t)
	ref := spec.CustomResourceRef{APIVersion: "apps/v1", Kind: "Widget", Namespace: ns, Name: "x"}
	w := start(t, &kube.CustomResource{Client: newClient(t, kube.Options{}), Ref: ref})
	w.blocked(t, "apps/v1 does not serve kind Widget")
	w.stillBlocked(t)
}

func TestCustomResourceCoreKind(t *testing.T) {
	ns := env.Namespace(t)
	ref := spec.CustomResourceRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: "feature-flags",
		Fields: []spec.FieldMatch{field("data.mode", `"on"`)}}
	w := start(t, &kube.CustomResource{Client: newClient(t, kube.Options{}), Ref: ref})
	w.blocked(t, "not found")
	ctx := context.Background()
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "feature-flags"}, Data: map[string]string{"mode": "off"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.blocked(t, `field data.mode does not match`)
	// A ConfigMap of the same name in another namespace does not count.
	other := env.Namespace(t)
	if _, err := env.Client.CoreV1().ConfigMaps(other).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "feature-flags"}, Data: map[string]string{"mode": "on"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.stillBlocked(t)
	cm.Data["mode"] = "on"
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.ready(t)
}

// For a cluster-scoped kind the namespace (always filled in from the pod's) is ignored.
func TestCustomResourceClusterScoped(t *testing.T) {
	ns := env.Namespace(t)
	target := ns + "-target"
	ref := spec.CustomResourceRef{APIVersion: "v1", Kind: "Namespace", Namespace: ns, Name: target,
		Fields: []spec.FieldMatch{field("status.phase", `"Active"`)}}
	w := start(t, &kube.CustomResource{Client: newClient(t, kube.Options{}), Ref: ref})
	w.blocked(t, "not found")
	ctx := context.Background()
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: target}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.CoreV1().Namespaces().Delete(ctx, target, metav1.DeleteOptions{}) })
	w.ready(t)
}

// A Secret's values, actual or wanted, never reach the blocker text, the log, the
// Events on the own pod or the timeout's error: they name the field only.
func TestCustomResourceSecretValuesNeverShown(t *testing.T) {
	ns := env.Namespace(t)
	createPod(t, ns, "me", podSpec{})
	const actual, wanted, wantedToken = "hunter2", "opensesame", "tok-3n"
	if _, err := env.Client.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db-credentials"}, Data: map[string][]byte{"password": []byte(actual)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	ref := spec.CustomResourceRef{APIVersion: "v1", Kind: "Secret", Namespace: ns, Name: "db-credentials",
		Fields: []spec.FieldMatch{field("data.password", `"`+b64([]byte(wanted))+`"`), field("data.token", `"`+wantedToken+`"`)}}
	var logs logSink
	c := newClient(t, kube.Options{Namespace: ns, PodName: "me", Log: logs.logger()})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := resolve.Wait(ctx, []resolve.Dependency{&kube.CustomResource{Client: c, Ref: ref}},
		resolve.Options{Log: logs.logger(), ReportInterval: 200 * time.Millisecond, Recorder: c.Events()})
	var blocked *resolve.BlockedError
	if !errors.As(err, &blocked) {
		t.Fatalf("Wait returned %v, want it blocked until the timeout", err)
	}
	const reason = "field data.password does not match; field data.token is absent"
	var texts []string
	texts = append(texts, err.Error())
	events := listEvents(t, ns)
	for _, ev := range events {
		texts = append(texts, ev.Message)
	}
	texts = append(texts, logs.snapshot()...)
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("error %q does not say %q", err, reason)
	}
	if len(events) != 2 || !strings.Contains(events[0].Message, reason) || !strings.Contains(events[1].Message, reason) {
		t.Errorf("events %+v, want DependencyFailed and Waiting saying %q", events, reason)
	}
	for _, text := range texts {
		for _, secret := range []string{actual, b64([]byte(actual)), wanted, b64([]byte(wanted)), wantedToken} {
			if strings.Contains(text, secret) {
				t.Errorf("%q shows the secret value %q", text, secret)
			}
		}
	}
}
