package kube_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

func podTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}
}

// No controller manager runs here: the test writes the status the Deployment
// controller would.
func TestRolloutDeployment(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	w := start(t, &kube.Rollout{Client: newClient(t, kube.Options{}), Ref: spec.WorkloadRef{Namespace: ns, Kind: spec.WorkloadDeployment, Name: "api"}})
	w.blocked(t, "not found")
	labels := map[string]string{"app": "api"}
	d, err := env.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podTemplate(labels)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.blocked(t, "spec update not observed yet (generation 1, observed 0)")
	if got := w.dep.String(); got != "rollout "+ns+"/deployment/api" {
		t.Errorf("String() = %q", got)
	}
	for _, step := range []struct {
		status appsv1.DeploymentStatus
		want   string
	}{
		{appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}, "1 of 3 replicas updated"},
		{appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2}, "2 of 3 updated replicas available"},
		{appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}, ""},
	} {
		d.Status = step.status
		if d, err = env.Client.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if step.want != "" {
			w.blocked(t, step.want)
			w.stillBlocked(t)
		}
	}
	w.ready(t)
}

// A partitioned StatefulSet is rolled out once the pods at or above the
// partition are updated.
func TestRolloutStatefulSetPartition(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	labels := map[string]string{"app": "db"}
	s, err := env.Client.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](3), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podTemplate(labels),
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](2)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := start(t, &kube.Rollout{Client: newClient(t, kube.Options{}), Ref: spec.WorkloadRef{Namespace: ns, Kind: spec.WorkloadStatefulSet, Name: "db"}})
	w.blocked(t, "spec update not observed yet")
	s.Status = appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 2}
	if s, err = env.Client.AppsV1().StatefulSets(ns).UpdateStatus(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.blocked(t, "2 of 3 replicas ready")
	s.Status = appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}
	if s, err = env.Client.AppsV1().StatefulSets(ns).UpdateStatus(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.blocked(t, "0 of 1 replicas updated (partition 2)")
	s.Status.UpdatedReplicas = 1
	if _, err = env.Client.AppsV1().StatefulSets(ns).UpdateStatus(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.ready(t)
}

func TestClaimBound(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	w := start(t, &kube.Claim{Client: newClient(t, kube.Options{}), Ref: spec.ObjectRef{Namespace: ns, Name: "data"}})
	w.blocked(t, "not found")
	pvc, err := env.Client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.blocked(t, "phase Pending, not Bound")
	w.stillBlocked(t)
	pvc.Status.Phase = corev1.ClaimBound
	if _, err := env.Client.CoreV1().PersistentVolumeClaims(ns).UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.ready(t)
}

func TestConfigMapKey(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	w := start(t, &kube.ConfigMap{Client: newClient(t, kube.Options{}), Ref: spec.KeyRef{Namespace: ns, Name: "settings", Key: "region"}})
	w.blocked(t, "not found")
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"zone": "a"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.blocked(t, "no key region")
	w.stillBlocked(t)
	cm.BinaryData = map[string][]byte{"region": []byte("eu")}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.ready(t)
}

// A Secret is read with GET of that one Secret, never listed or watched, so a
// ServiceAccount needs get on it alone; no value ever reaches a status.
func TestSecretReadByNameOnly(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	c, requests := recordedClient(t, ns, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"db-creds"}, Verbs: []string{"get"}},
	}, kube.Options{PollInterval: 100 * time.Millisecond})
	w := start(t, &kube.Secret{Client: c, Ref: spec.KeyRef{Namespace: ns, Name: "db-creds", Key: "password"}})
	w.blocked(t, "not found")
	s, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db-creds"}, StringData: map[string]string{"user": "hunter2-user"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.blocked(t, "no key password")
	s.StringData = map[string]string{"password": "hunter2"}
	if _, err := env.Client.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.ready(t)
	if got := requests.matching(http.MethodGet, "/secrets"); len(got) > 0 {
		t.Errorf("listed secrets: %v", got)
	}
	if got := requests.matching(http.MethodGet, "/secrets/db-creds"); len(got) < 3 {
		t.Errorf("want the secret read by name while waiting; requests:\n%s", requests)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, st := range w.statuses {
		if strings.Contains(st.Reason, "hunter2") || strings.Contains(st.Reason, "aHVudGVy") {
			t.Errorf("a status shows a value: %q", st.Reason)
		}
	}
}

// The API server establishes a CRD by itself and registers its APIService.
func TestCRDEstablished(t *testing.T) {
	ctx := context.Background()
	group := "widgets" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "")) + ".example.com"
	name := "gadgets." + group
	w := start(t, &kube.CRD{Client: newClient(t, kube.Options{}), Name: name})
	w.blocked(t, "not found")
	dyn := dynamic.NewForConfigOrDie(env.Config)
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"group": group, "scope": "Namespaced",
			"names": map[string]any{"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
	if _, err := dyn.Resource(kube.CRDsResource).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dyn.Resource(kube.CRDsResource).Delete(ctx, name, metav1.DeleteOptions{}) })
	w.ready(t)
}

// Where RBAC lets the resolver read the CRD but not APIServices, the CRD's
// Established condition decides, and the resolver says once why.
func TestCRDWithoutAPIServiceAccess(t *testing.T) {
	ns := env.Namespace(t)
	cfg := env.ServiceAccountConfig(t, ns, "crd-only", nil)
	ctx := context.Background()
	name := "gadgets.crd-only.example.com"
	// Cluster-scoped: a ClusterRole and its binding for the ServiceAccount.
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "crd-only-" + ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: []string{"get", "list", "watch"}},
	}}
	if _, err := env.Client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "crd-only", Namespace: ns}}}
	if _, err := env.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.RbacV1().ClusterRoleBindings().Delete(ctx, role.Name, metav1.DeleteOptions{})
		_ = env.Client.RbacV1().ClusterRoles().Delete(ctx, role.Name, metav1.DeleteOptions{})
	})
	var logs logSink
	c, err := kube.NewClient(cfg, kube.Options{Log: logs.logger(), PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := start(t, &kube.CRD{Client: c, Name: name})
	w.blocked(t, "not found")
	dyn := dynamic.NewForConfigOrDie(env.Config)
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"group": "crd-only.example.com", "scope": "Cluster",
			"names": map[string]any{"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
	if _, err := dyn.Resource(kube.CRDsResource).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dyn.Resource(kube.CRDsResource).Delete(ctx, name, metav1.DeleteOptions{}) })
	w.ready(t)
	if n := logs.count("cannot read apiservices"); n != 1 {
		t.Errorf("the fallback was logged %d times, want once: %v", n, logs.snapshot())
	}
}

// Where RBAC grants get and list but not watch, the new kinds poll like the
// others: a rollout and a claim resolve all the same.
func TestRolloutAndClaimPollWithoutWatch(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	var logs logSink
	c, _ := recordedClient(t, ns, []rbacv1.PolicyRule{
		{APIGroups: []string{"", "apps"}, Resources: []string{"persistentvolumeclaims", "statefulsets"}, Verbs: []string{"get", "list"}},
	}, kube.Options{Log: logs.logger(), PollInterval: 100 * time.Millisecond})
	claim := start(t, &kube.Claim{Client: c, Ref: spec.ObjectRef{Namespace: ns, Name: "data"}})
	rollout := start(t, &kube.Rollout{Client: c, Ref: spec.WorkloadRef{Namespace: ns, Kind: spec.WorkloadStatefulSet, Name: "db"}})
	claim.blocked(t, "not found")
	rollout.blocked(t, "not found")
	// The status comes from the first list; the refused watch, and its log
	// line, follow it.
	for deadline := time.Now().Add(10 * time.Second); logs.count("watch not allowed; polling instead") < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("want each kind to say it polls; logs: %v", logs.snapshot())
			break
		}
	}
	pvc, err := env.Client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	claim.blocked(t, "phase Pending")
	pvc.Status.Phase = corev1.ClaimBound
	if _, err := env.Client.CoreV1().PersistentVolumeClaims(ns).UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	claim.ready(t)

	labels := map[string]string{"app": "db"}
	s, err := env.Client.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podTemplate(labels),
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rollout.blocked(t, "spec update not observed yet")
	// OnDelete: ready replicas decide, whatever the revisions.
	s.Status = appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, CurrentRevision: "db-1", UpdateRevision: "db-2"}
	if _, err := env.Client.AppsV1().StatefulSets(ns).UpdateStatus(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rollout.ready(t)
}
