package install

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// otherGate is a scheduling gate of someone else's, which the controller must leave.
const otherGate = "example.com/quota"

// The chart's ValidatingAdmissionPolicy on a real API server, with the chart's RBAC,
// as the controller's ServiceAccount (impersonated): the controller's own writes pass
// (the gate's removal as the controller patches it, its condition), and every other
// change its RBAC would allow is refused by the policy, with the policy's message:
// an image, a label, someone else's gate, someone else's condition, the phase; and,
// once RBAC is widened on purpose, a delete and the ephemeralcontainers subresource.
// An administrator's same image patch is not the policy's business.
func TestControllerAdmissionPolicy(t *testing.T) {
	env := controlPlane(t)
	ctx := context.Background()
	const release = "ke-policy"
	createNamespace(t, env, release)
	a := newApplier(t, env.Config)
	objs := parseObjects(t, mustRender(t, release, map[string]any{"fullnameOverride": release}).Manifest)
	var sa, policy string
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
			if _, err := a.apply(ctx, o, true); err != nil {
				t.Fatalf("applying %s: %v", objectKey(o), err)
			}
		}
		if o.GetKind() == "ServiceAccount" && strings.HasSuffix(o.GetName(), "-controller") {
			sa = o.GetName()
		}
		if o.GetKind() == "ValidatingAdmissionPolicy" && !strings.HasSuffix(o.GetName(), "-workloads") {
			policy = o.GetName()
		}
	}
	if sa == "" || policy == "" {
		t.Fatalf("the chart renders no controller ServiceAccount (%q) or no ValidatingAdmissionPolicy (%q)", sa, policy)
	}
	t.Cleanup(func() {
		for _, name := range []string{policy, policy + "-workloads"} {
			_ = env.Client.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{})
			_ = env.Client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
		}
	})
	impersonated := rest.CopyConfig(env.Config)
	impersonated.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + release + ":" + sa,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + release, "system:authenticated"},
	}
	asController := kubernetes.NewForConfigOrDie(impersonated)

	ns := env.Namespace(t)
	newPod := func(gates ...string) *corev1.Pod {
		t.Helper()
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "gated-", Labels: map[string]string{"app": "web", inject.LabelManaged: "true"}},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1", Command: []string{"/app/server"}}},
			},
		}
		for _, g := range gates {
			pod.Spec.SchedulingGates = append(pod.Spec.SchedulingGates, corev1.PodSchedulingGate{Name: g})
		}
		created, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return created
	}
	pod := newPod(inject.SchedulingGate, otherGate)
	imagePatch := func(image string) []byte {
		return []byte(`{"spec":{"containers":[{"name":"app","image":"` + image + `"}]}}`)
	}
	byPolicy := func(err error) bool {
		return err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy") && strings.Contains(err.Error(), policy)
	}

	awaitPolicy(t, env, impersonated, policy)

	// denied asserts that the controller's request is refused by the policy with a
	// message saying what.
	denied := func(what string, err error, message string) {
		t.Helper()
		switch {
		case err == nil:
			t.Errorf("%s: allowed, want refused by the ValidatingAdmissionPolicy %s", what, policy)
		case !byPolicy(err) || !apierrors.IsForbidden(err):
			t.Errorf("%s: refused with %v, want the ValidatingAdmissionPolicy %s (Forbidden)", what, err, policy)
		case !strings.Contains(err.Error(), message):
			t.Errorf("%s: refused with %q, which does not say %q", what, err, message)
		}
	}
	allowed := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: refused: %v", what, err)
		}
	}
	pods := asController.CoreV1().Pods(ns)
	jsonPatch := func(ops ...map[string]any) []byte {
		data, err := json.Marshal(ops)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	gates := func(names ...string) []corev1.PodSchedulingGate {
		var out []corev1.PodSchedulingGate
		for _, n := range names {
			out = append(out, corev1.PodSchedulingGate{Name: n})
		}
		return out
	}
	conditionPatch := func(p *corev1.Pod, c corev1.PodCondition) []byte {
		data, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"uid": p.UID},
			"status":   map[string]any{"conditions": []corev1.PodCondition{c}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}

	_, err := pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, imagePatch("registry.example/evil:1"), metav1.PatchOptions{})
	denied("an image patch", err, "may not change the images")
	_, err = pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"app":"db"}}}`), metav1.PatchOptions{})
	denied("a label patch", err, "labels")
	_, err = pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(`{"metadata":{"annotations":{"entrypoint.io/dependency-service":"other"}}}`), metav1.PatchOptions{})
	denied("an annotation patch", err, "annotations")
	_, err = pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(`{"spec":{"activeDeadlineSeconds":1}}`), metav1.PatchOptions{})
	denied("an activeDeadlineSeconds patch", err, "activeDeadlineSeconds")
	// A gated pod's nodeSelector may change (the API server allows it until the
	// pod is scheduled), but not the controller's doing.
	_, err = pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(`{"spec":{"nodeSelector":{"disk":"ssd"}}}`), metav1.PatchOptions{})
	denied("a nodeSelector patch", err, "nodeSelector")
	_, err = pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(`{"spec":{"tolerations":[{"key":"dedicated","operator":"Exists"}]}}`), metav1.PatchOptions{})
	denied("a tolerations patch", err, "tolerations")
	// Adding a gate: the API server's own validation refuses it first (gates may
	// only go); refused either way.
	_, err = pods.Patch(ctx, pod.Name, types.JSONPatchType, jsonPatch(map[string]any{"op": "add", "path": "/spec/schedulingGates/-", "value": map[string]any{"name": "example.com/third"}}), metav1.PatchOptions{})
	if err == nil {
		t.Error("adding a scheduling gate as the controller: allowed")
	}
	// Removing someone else's gate: only the policy stands in the way.
	_, err = pods.Patch(ctx, pod.Name, types.JSONPatchType, jsonPatch(
		map[string]any{"op": "test", "path": "/metadata/uid", "value": pod.UID},
		map[string]any{"op": "replace", "path": "/spec/schedulingGates", "value": gates(inject.SchedulingGate)},
	), metav1.PatchOptions{})
	denied("removing someone else's scheduling gate", err, "may only remove its own scheduling gate")

	// The controller's own writes, as pkg/controller makes them.
	_, err = pods.Patch(ctx, pod.Name, types.JSONPatchType, jsonPatch(
		map[string]any{"op": "test", "path": "/metadata/uid", "value": pod.UID},
		map[string]any{"op": "test", "path": "/spec/schedulingGates", "value": pod.Spec.SchedulingGates},
		map[string]any{"op": "replace", "path": "/spec/schedulingGates", "value": gates(otherGate)},
	), metav1.PatchOptions{})
	allowed("removing its gate, another one staying (replace)", err)
	alone := newPod(inject.SchedulingGate)
	_, err = pods.Patch(ctx, alone.Name, types.JSONPatchType, jsonPatch(
		map[string]any{"op": "test", "path": "/metadata/uid", "value": alone.UID},
		map[string]any{"op": "test", "path": "/spec/schedulingGates", "value": alone.Spec.SchedulingGates},
		map[string]any{"op": "remove", "path": "/spec/schedulingGates"},
	), metav1.PatchOptions{})
	allowed("removing its gate, the only one (remove)", err)

	// Node-aware gates: with its gate's removal, and only then, the controller
	// narrows the pod's required node affinity to node names.
	nameIn := func(node string) map[string]any {
		return map[string]any{"key": "metadata.name", "operator": "In", "values": []string{node}}
	}
	zoneTerm := corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}
	withTerms := func(terms ...corev1.NodeSelectorTerm) *corev1.Pod {
		p := newPod(inject.SchedulingGate)
		if len(terms) == 0 {
			return p
		}
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
		// The API server lets a gated pod gain terms it had none of.
		updated, err := env.Client.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return updated
	}
	const required = "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution"
	narrow := func(p *corev1.Pod, release bool, ops ...map[string]any) error {
		all := []map[string]any{
			{"op": "test", "path": "/metadata/uid", "value": p.UID},
			{"op": "test", "path": "/metadata/resourceVersion", "value": p.ResourceVersion},
		}
		all = append(all, ops...)
		if release {
			all = append(all, map[string]any{"op": "remove", "path": "/spec/schedulingGates"})
		}
		_, err := pods.Patch(ctx, p.Name, types.JSONPatchType, jsonPatch(all...), metav1.PatchOptions{})
		return err
	}
	bare := withTerms()
	err = narrow(bare, true, map[string]any{"op": "add", "path": "/spec/affinity", "value": map[string]any{"nodeAffinity": map[string]any{
		"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{"nodeSelectorTerms": []any{
			map[string]any{"matchFields": []any{nameIn("n1")}}, map[string]any{"matchFields": []any{nameIn("n2")}}}}}}})
	allowed("narrowing a pod without terms to nodes n1 and n2 as it removes its gate", err)
	zoned := withTerms(zoneTerm)
	err = narrow(zoned, true, map[string]any{"op": "add", "path": required + "/nodeSelectorTerms/0/matchFields", "value": []any{nameIn("n1")}})
	allowed("appending a node name to the pod's term as it removes its gate", err)
	if got, err := env.Client.CoreV1().Pods(ns).Get(ctx, zoned.Name, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else if terms := got.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms; len(terms) != 1 ||
		len(terms[0].MatchFields) != 1 || terms[0].MatchFields[0].Values[0] != "n1" || len(got.Spec.SchedulingGates) != 0 {
		t.Errorf("after the narrowing: terms %+v, gates %v", terms, got.Spec.SchedulingGates)
	}
	const narrowOnly = "may change a pod's required node affinity only in the update that removes its scheduling gate"
	kept := withTerms(zoneTerm)
	err = narrow(kept, false, map[string]any{"op": "add", "path": required + "/nodeSelectorTerms/0/matchFields", "value": []any{nameIn("n1")}})
	denied("narrowing without removing its gate", err, narrowOnly)
	err = narrow(kept, true, map[string]any{"op": "add", "path": required + "/nodeSelectorTerms/0/matchExpressions/-",
		"value": map[string]any{"key": "disk", "operator": "In", "values": []string{"ssd"}}})
	denied("narrowing by a label as it removes its gate", err, narrowOnly)
	err = narrow(withTerms(), true, map[string]any{"op": "add", "path": "/spec/affinity", "value": map[string]any{"nodeAffinity": map[string]any{
		"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{"nodeSelectorTerms": []any{
			map[string]any{"matchExpressions": []any{map[string]any{"key": "disk", "operator": "In", "values": []string{"ssd"}}}}}}}}})
	denied("setting terms of labels on a pod without terms as it removes its gate", err, narrowOnly)
	err = narrow(kept, true, map[string]any{"op": "add", "path": "/spec/affinity/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution",
		"value": []any{map[string]any{"weight": 1, "preference": map[string]any{"matchFields": []any{nameIn("n1")}}}}})
	denied("adding preferred node affinity as it removes its gate", err, "preferred node affinity")
	ours := corev1.PodCondition{
		Type: api.ConditionType, Status: corev1.ConditionFalse, Reason: api.ReasonWaiting,
		Message: "waiting for service " + ns + "/db: no endpoints", LastTransitionTime: metav1.Now(),
	}
	_, err = pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, conditionPatch(pod, ours), metav1.PatchOptions{}, "status")
	allowed("writing its condition", err)
	ours.Status, ours.Reason, ours.Message = corev1.ConditionTrue, api.ReasonReady, ""
	_, err = pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, conditionPatch(pod, ours), metav1.PatchOptions{}, "status")
	allowed("changing its condition", err)

	for _, c := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodReady} {
		_, err = pods.Patch(ctx, pod.Name, types.StrategicMergePatchType,
			conditionPatch(pod, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}), metav1.PatchOptions{}, "status")
		denied(fmt.Sprintf("writing the condition %s", c), err, "may only write its own condition")
	}
	_, err = pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(`{"status":{"phase":"Running"}}`), metav1.PatchOptions{}, "status")
	denied("changing the phase", err, "phase")
	_, err = pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(`{"status":{"podIP":"10.0.0.7","podIPs":[{"ip":"10.0.0.7"}]}}`), metav1.PatchOptions{}, "status")
	denied("setting the pod's IP", err, "IPs")
	_, err = pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"app":"db"}}}`), metav1.PatchOptions{}, "status")
	denied("a label patch through pods/status", err, "labels")

	// Workloads: the controller writes their annotation entrypoint.io/waiting
	// with a merge patch of that annotation, and nothing else.
	workloads := policy + "-workloads"
	deploy, err := env.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Labels: map[string]string{"app": "api"}, Annotations: map[string]string{"team": "db"}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "api"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job, err := env.Client.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "migrate"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "m", Image: "registry.example/m:1"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deployments := asController.AppsV1().Deployments(ns)
	otherAnnotation := []byte(`{"metadata":{"annotations":{"team":"web"}}}`)
	byWorkloads := func(err error) bool {
		return err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+workloads+"'")
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, err = deployments.Patch(ctx, deploy.Name, types.MergePatchType, otherAnnotation, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		if byWorkloads(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after applying the ValidatingAdmissionPolicy %s, the controller may still change another annotation of a Deployment (last error: %v)", workloads, err)
		}
	}
	waiting := func(value any) []byte {
		data, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{api.AnnotationWaiting: value}}})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	deniedWorkload := func(what string, err error, message string) {
		t.Helper()
		switch {
		case err == nil:
			t.Errorf("%s: allowed, want refused by the ValidatingAdmissionPolicy %s", what, workloads)
		case !byWorkloads(err) || !apierrors.IsForbidden(err):
			t.Errorf("%s: refused with %v, want the ValidatingAdmissionPolicy %s (Forbidden)", what, err, workloads)
		case !strings.Contains(err.Error(), message):
			t.Errorf("%s: refused with %q, which does not say %q", what, err, message)
		}
	}
	_, err = deployments.Patch(ctx, deploy.Name, types.MergePatchType, waiting("Waiting: 1 of 1 pods wait for service "+ns+"/db"), metav1.PatchOptions{})
	allowed("writing a Deployment's annotation "+api.AnnotationWaiting, err)
	_, err = deployments.Patch(ctx, deploy.Name, types.MergePatchType, waiting(nil), metav1.PatchOptions{})
	allowed("removing a Deployment's annotation "+api.AnnotationWaiting, err)
	_, err = asController.BatchV1().Jobs(ns).Patch(ctx, job.Name, types.MergePatchType, waiting("Waiting: 1 of 1 pods wait for service "+ns+"/db"), metav1.PatchOptions{})
	allowed("writing a Job's annotation "+api.AnnotationWaiting, err)
	_, err = deployments.Patch(ctx, deploy.Name, types.MergePatchType, otherAnnotation, metav1.PatchOptions{})
	deniedWorkload("changing another annotation of a Deployment", err, "no other annotation")
	_, err = deployments.Patch(ctx, deploy.Name, types.MergePatchType, []byte(`{"metadata":{"annotations":{"team":null}}}`), metav1.PatchOptions{})
	deniedWorkload("removing another annotation of a Deployment", err, "no other annotation")
	_, err = deployments.Patch(ctx, deploy.Name, types.MergePatchType, []byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{})
	deniedWorkload("scaling a Deployment through its spec", err, "may not change a workload's spec")
	_, err = deployments.Patch(ctx, deploy.Name, types.StrategicMergePatchType, []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"registry.example/evil:1"}]}}}}`), metav1.PatchOptions{})
	deniedWorkload("changing a Deployment's image", err, "may not change a workload's spec")
	_, err = asController.BatchV1().Jobs(ns).Patch(ctx, job.Name, types.MergePatchType, []byte(`{"spec":{"suspend":true}}`), metav1.PatchOptions{})
	deniedWorkload("suspending a Job", err, "may not change a workload's spec")
	_, err = deployments.Patch(ctx, deploy.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"db"}}}`), metav1.PatchOptions{})
	deniedWorkload("a Deployment's label patch", err, "labels")

	// What its RBAC never allows, allowed on purpose: the policy refuses it still.
	grant := "ke-policy-widened"
	if _, err := env.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: grant},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"delete"}},
			{APIGroups: []string{""}, Resources: []string{"pods/ephemeralcontainers"}, Verbs: []string{"patch"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale"}, Verbs: []string{"patch"}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: grant},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: grant},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: release}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.RbacV1().ClusterRoleBindings().Delete(ctx, grant, metav1.DeleteOptions{})
		_ = env.Client.RbacV1().ClusterRoles().Delete(ctx, grant, metav1.DeleteOptions{})
	})
	ephemeral := []byte(`{"spec":{"ephemeralContainers":[{"name":"debug","image":"registry.example/debug:1"}]}}`)
	deadline := time.Now().Add(10 * time.Second) // the RBAC authorizer's informer
	for {
		err = pods.Delete(ctx, pod.Name, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		if !apierrors.IsForbidden(err) || byPolicy(err) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	denied("deleting a pod", err, "DELETE of pods is refused")
	_, err = pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, ephemeral, metav1.PatchOptions{}, "ephemeralcontainers")
	denied("adding an ephemeral container", err, "UPDATE of pods/ephemeralcontainers is refused")
	_, err = deployments.Patch(ctx, deploy.Name, types.MergePatchType, []byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{}, "scale")
	deniedWorkload("scaling a Deployment", err, "UPDATE of deployments/scale is refused")
	if got, err := env.Client.AppsV1().Deployments(ns).Get(ctx, deploy.Name, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else if _, set := got.Annotations[api.AnnotationWaiting]; set || got.Annotations["team"] != "db" || got.Labels["app"] != "api" || *got.Spec.Replicas != 1 {
		t.Errorf("after the controller's writes: annotations %v, labels %v, replicas %d; want team=db only, app=api, 1", got.Annotations, got.Labels, *got.Spec.Replicas)
	}

	// The policy binds the controller only: an administrator changes the image.
	admin, err := env.Client.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.StrategicMergePatchType, imagePatch("registry.example/app:2"), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("an administrator's image patch was refused: %v", err)
	}
	if got := admin.Spec.Containers[0].Image; got != "registry.example/app:2" {
		t.Errorf("an administrator's image patch left the image %s", got)
	}

	// What the controller's writes left: its gate gone, the other gate, its
	// condition, and nothing else changed.
	final, err := env.Client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(final.Spec.SchedulingGates) != 1 || final.Spec.SchedulingGates[0].Name != otherGate || final.Labels["app"] != "web" {
		t.Errorf("gates %v and labels %v after the controller's writes, want only %s and app=web", final.Spec.SchedulingGates, final.Labels, otherGate)
	}
	conditions := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range final.Status.Conditions {
		conditions[c.Type] = c
	}
	// The API server itself reports a gated pod PodScheduled False/SchedulingGated.
	if len(conditions) != 2 || conditions[api.ConditionType].Reason != api.ReasonReady ||
		conditions[corev1.PodScheduled].Status != corev1.ConditionFalse || final.Status.Phase != corev1.PodPending {
		t.Errorf("conditions %+v and phase %s, want %s Ready, PodScheduled as the API server set it, and Pending", final.Status.Conditions, final.Status.Phase, api.ConditionType)
	}
}

// awaitPolicy waits until the API server enforces the ValidatingAdmissionPolicy
// policy on the controller's identity cfg: it loads policies and bindings through
// an informer, and until then the controller's image patch of a pod (a dry run,
// changing nothing) goes through.
func awaitPolicy(t *testing.T, env *testenv.Env, cfg *rest.Config, policy string) {
	t.Helper()
	ctx := context.Background()
	ns := env.Namespace(t)
	pod, err := env.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "policy-probe"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = cs.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.StrategicMergePatchType,
			[]byte(`{"spec":{"containers":[{"name":"app","image":"registry.example/evil:1"}]}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+policy+"'") {
			return
		}
		if err != nil && !apierrors.IsForbidden(err) {
			t.Fatalf("patching the image as the controller: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after applying the ValidatingAdmissionPolicy %s and its binding, the API server still lets the controller's ServiceAccount change a pod's image (last error: %v)", policy, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
