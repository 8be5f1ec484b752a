package kube_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// holdFinalizer keeps a deleted pod around, terminating, until the test ends.
const holdFinalizer = "test.kubernetes-entrypoint.io/hold"

// podSpec is what a test pod looks like; the zero value is a one-container pod that
// is not on any node.
type podSpec struct {
	node     string
	labels   map[string]string
	owner    *metav1.OwnerReference
	hold     bool              // add holdFinalizer, so that a delete leaves it terminating
	sidecars []string          // native sidecars: init containers with restartPolicy Always
	extra    []string          // regular containers besides "app"
	status   *corev1.PodStatus // written with UpdateStatus after creation
}

func createPod(t *testing.T, ns, name string, ps podSpec) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: ps.labels},
		Spec: corev1.PodSpec{
			NodeName:   ps.node,
			Containers: []corev1.Container{{Name: "app", Image: "busybox"}},
		},
	}
	for _, c := range ps.extra {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c, Image: "busybox"})
	}
	always := corev1.ContainerRestartPolicyAlways
	for _, c := range ps.sidecars {
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: c, Image: "busybox", RestartPolicy: &always})
	}
	if ps.owner != nil {
		pod.OwnerReferences = []metav1.OwnerReference{*ps.owner}
	}
	if ps.hold {
		pod.Finalizers = []string{holdFinalizer}
		t.Cleanup(func() { releasePod(ns, name) })
	}
	created, err := env.Client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, name, err)
	}
	if ps.status != nil {
		return setPodStatus(t, ns, name, *ps.status)
	}
	return created
}

// releasePod drops the finalizer so the namespace can go away.
func releasePod(ns, name string) {
	_, _ = env.Client.CoreV1().Pods(ns).Patch(context.Background(), name, types.MergePatchType,
		[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
}

func setPodStatus(t *testing.T, ns, name string, st corev1.PodStatus) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	pod, err := env.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = st
	updated, err := env.Client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("updating the status of pod %s/%s: %v", ns, name, err)
	}
	return updated
}

// runningPod is the status of a running pod whose Ready condition is ready.
func runningPod(ready bool) *corev1.PodStatus {
	cond := corev1.ConditionFalse
	if ready {
		cond = corev1.ConditionTrue
	}
	return &corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: cond, LastTransitionTime: metav1.Now()},
		},
	}
}

// deletePod deletes a pod; with a finalizer (podSpec.hold) it stays, terminating.
func deletePod(t *testing.T, ns, name string) {
	t.Helper()
	if err := env.Client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting pod %s/%s: %v", ns, name, err)
	}
	pod, err := env.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil || pod.DeletionTimestamp == nil {
		t.Fatalf("pod %s/%s should be terminating: %v", ns, name, err)
	}
}

func TestPodByLabels(t *testing.T) {
	ns, other := env.Namespace(t), env.Namespace(t)
	sel := map[string]string{"app": "mariadb"}
	c := newClient(t, kube.Options{Namespace: ns})
	w := start(t, &kube.Pod{Client: c, Ref: spec.PodRef{Namespace: ns, Labels: sel}})
	inOther := start(t, &kube.Pod{Client: c, Ref: spec.PodRef{Namespace: other, Labels: sel}})
	w.blocked(t, "no matching pods")
	inOther.blocked(t, "no matching pods")

	// A ready pod in another namespace satisfies only the dependency naming that namespace.
	createPod(t, other, "mariadb-0", podSpec{node: "node-b", labels: sel, status: runningPod(true)})
	inOther.ready(t)
	w.stillBlocked(t)

	// Ready, but terminating: not a candidate at all.
	createPod(t, ns, "mariadb-old", podSpec{node: "node-a", labels: sel, hold: true})
	deletePod(t, ns, "mariadb-old")
	setPodStatus(t, ns, "mariadb-old", *runningPod(true))
	w.stillBlocked(t)
	w.blocked(t, "no matching pods")

	// Evicted: phase Failed, even with a stale Ready condition.
	evicted := runningPod(true)
	evicted.Phase, evicted.Reason = corev1.PodFailed, "Evicted"
	createPod(t, ns, "mariadb-evicted", podSpec{node: "node-a", labels: sel, status: evicted})
	w.blocked(t, "0 of 1 matching pods ready")

	// Ready, with other labels.
	createPod(t, ns, "web", podSpec{node: "node-a", labels: map[string]string{"app": "web"}, status: runningPod(true)})
	w.stillBlocked(t)

	// Running and not ready, then ready, on any node.
	createPod(t, ns, "mariadb-1", podSpec{node: "node-b", labels: sel, status: runningPod(false)})
	w.blocked(t, "0 of 2 matching pods ready")
	setPodStatus(t, ns, "mariadb-1", *runningPod(true))
	w.ready(t)
}

func TestPodOnTheSameNode(t *testing.T) {
	ns := env.Namespace(t)
	sel := map[string]string{"app": "ovs"}
	createPod(t, ns, "me", podSpec{node: "node-a"})
	c := newClient(t, kube.Options{Namespace: ns, PodName: "me"})
	w := start(t, &kube.Pod{Client: c, Ref: spec.PodRef{Namespace: ns, Labels: sel, RequireSameNode: true}})
	w.blocked(t, "no matching pods on node node-a")

	createPod(t, ns, "ovs-b", podSpec{node: "node-b", labels: sel, status: runningPod(true)})
	w.stillBlocked(t)
	w.blocked(t, "no matching pods on node node-a")

	createPod(t, ns, "ovs-a", podSpec{node: "node-a", labels: sel, status: runningPod(false)})
	w.blocked(t, "0 of 1 matching pods ready on node node-a")
	setPodStatus(t, ns, "ovs-a", *runningPod(true))
	w.ready(t)
}

// The node can come from NODE_NAME instead of the own pod.
func TestPodOnTheSameNodeFromNodeName(t *testing.T) {
	ns := env.Namespace(t)
	sel := map[string]string{"app": "ovs"}
	c := newClient(t, kube.Options{Namespace: ns, NodeName: "node-b"})
	w := start(t, &kube.Pod{Client: c, Ref: spec.PodRef{Namespace: ns, Labels: sel, RequireSameNode: true}})
	createPod(t, ns, "ovs-a", podSpec{node: "node-a", labels: sel, status: runningPod(true)})
	w.blocked(t, "no matching pods on node node-b")
	w.stillBlocked(t)
	createPod(t, ns, "ovs-b", podSpec{node: "node-b", labels: sel, status: runningPod(true)})
	w.ready(t)
}

// Without a way to learn the node, it says so and keeps waiting.
func TestPodOnTheSameNodeUnknownNode(t *testing.T) {
	ns := env.Namespace(t)
	c := newClient(t, kube.Options{Namespace: ns, PodName: "me"})
	w := start(t, &kube.Pod{Client: c, Ref: spec.PodRef{Namespace: ns, Labels: map[string]string{"app": "x"}, RequireSameNode: true}})
	w.blocked(t, "to learn the node name")
	// Created without a node: it is not scheduled yet.
	createPod(t, ns, "me", podSpec{})
	w.blocked(t, "has no spec.nodeName yet")
	w.stillBlocked(t)
}
