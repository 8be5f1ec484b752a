package controller

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
)

// A gated pod waits for a claim and a rollout: the condition names each blocker
// in the resolver's words, and the gate goes once the claim is Bound and the
// Deployment's status shows the rollout complete.
func TestGateReleasedOnClaimBoundAndRolloutComplete(t *testing.T) {
	startController(t, nil)
	ns := env.Namespace(t)
	ctx := context.Background()
	createPod(t, managedPod(t, ns, "app", map[string]string{
		"DEPENDENCY_PVC":     "data",
		"DEPENDENCY_ROLLOUT": "deployment/api",
	}, inject.SchedulingGate))
	waitPod(t, ns, "app", "both blockers named", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		"waiting for rollout "+ns+"/deployment/api: not found; pvc "+ns+"/data: not found"))

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
	waitPod(t, ns, "app", "the claim's phase named", hasCondition(corev1.ConditionFalse, ReasonWaiting, "pvc "+ns+"/data: phase Pending, not Bound"))

	labels := map[string]string{"app": "api"}
	d, err := env.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "api"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitPod(t, ns, "app", "the rollout's state named", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		"rollout "+ns+"/deployment/api: spec update not observed yet (generation 1, observed 0)"))

	pvc.Status.Phase = corev1.ClaimBound
	if _, err := env.Client.CoreV1().PersistentVolumeClaims(ns).UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1}
	if d, err = env.Client.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(t, ns, "app", "only the rollout left", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		"waiting for rollout "+ns+"/deployment/api: 1 of 2 updated replicas available"))
	if gateIndex(p) < 0 {
		t.Fatal("gate removed while the rollout was incomplete")
	}
	d.Status.ReadyReplicas, d.Status.AvailableReplicas = 2, 2
	if _, err := env.Client.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ns, "app", "gate removed", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
	waitPod(t, ns, "app", "condition Ready", hasCondition(corev1.ConditionTrue, ReasonReady, "all 2 dependencies that need no node are ready"))
}

// Without SecretDependencies the controller leaves Secrets to the resolver and
// says so; with it, it waits for them, and its cache holds their keys, never
// their values.
func TestSecretDependencies(t *testing.T) {
	ctx := context.Background()
	t.Run("off", func(t *testing.T) {
		startController(t, nil)
		ns := env.Namespace(t)
		createPod(t, managedPod(t, ns, "app", map[string]string{"DEPENDENCY_SECRET": "db-creds/password", "DEPENDENCY_CONFIGMAP": "settings"}))
		waitPod(t, ns, "app", "the configmap named", hasCondition(corev1.ConditionFalse, ReasonWaiting, "configmap "+ns+"/settings: not found"))
		if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPod(t, ns, "app", "ready, the secret left to the resolver", hasCondition(corev1.ConditionTrue, ReasonReady,
			"the dependency that needs no node is ready; the resolver in the pod checks secret "+ns+"/db-creds/password"))
	})
	t.Run("on", func(t *testing.T) {
		r := startControllerWith(t, env.Config, nil, func(o *Options) { o.SecretDependencies = true })
		ns := env.Namespace(t)
		createPod(t, managedPod(t, ns, "app", map[string]string{"DEPENDENCY_SECRET": "db-creds/password"}, inject.SchedulingGate))
		waitPod(t, ns, "app", "the secret named", hasCondition(corev1.ConditionFalse, ReasonWaiting, "secret "+ns+"/db-creds/password: not found"))
		s, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-creds",
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"stringData":{"user":"hunter2-user"}}`}},
			StringData: map[string]string{"user": "hunter2-user"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitPod(t, ns, "app", "the key named", hasCondition(corev1.ConditionFalse, ReasonWaiting, "secret "+ns+"/db-creds/password: no key password"))
		s.StringData = map[string]string{"password": "hunter2"}
		if _, err := env.Client.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPod(t, ns, "app", "gate removed", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
		for _, item := range r.kinds.get(kube.SecretsResource).informer.GetStore().List() {
			u := item.(*unstructured.Unstructured)
			raw, _ := u.MarshalJSON()
			for _, leak := range []string{"hunter2", "aHVudGVyM", "last-applied"} {
				if strings.Contains(string(raw), leak) {
					t.Errorf("the controller's cache holds %q: %s", leak, raw)
				}
			}
		}
	})
}

// A gated pod waiting for a CRD is released once the API server establishes it.
func TestGateReleasedOnCRDEstablished(t *testing.T) {
	startController(t, nil)
	ns := env.Namespace(t)
	ctx := context.Background()
	name := "gadgets.controller-test.example.com"
	createPod(t, managedPod(t, ns, "app", map[string]string{"DEPENDENCY_CRD": name}, inject.SchedulingGate))
	waitPod(t, ns, "app", "the CRD named", hasCondition(corev1.ConditionFalse, ReasonWaiting, "crd "+name+": not found"))
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"group": "controller-test.example.com", "scope": "Namespaced",
			"names": map[string]any{"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(kube.CRDsResource).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dyn.Resource(kube.CRDsResource).Delete(ctx, name, metav1.DeleteOptions{}) })
	waitPod(t, ns, "app", "gate removed", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
}
