package kube_test

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

var agentLabels = map[string]string{"app": "ovs-agent"}

func createDaemonSet(t *testing.T, ns, name string) *appsv1.DaemonSet {
	t.Helper()
	ds, err := env.Client.AppsV1().DaemonSets(ns).Create(context.Background(), &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: agentLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: agentLabels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "busybox"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating daemonset %s/%s: %v", ns, name, err)
	}
	return ds
}

// setDaemonSetStatus writes what the DaemonSet controller would: how many nodes
// should run a pod and how many do; observed says whether it has seen the spec.
func setDaemonSetStatus(t *testing.T, ns, name string, desired, current int32, observed bool) {
	t.Helper()
	ctx := context.Background()
	ds, err := env.Client.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ds.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: desired, CurrentNumberScheduled: current}
	if observed {
		ds.Status.ObservedGeneration = ds.Generation
	}
	if _, err := env.Client.AppsV1().DaemonSets(ns).UpdateStatus(ctx, ds, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating the status of daemonset %s/%s: %v", ns, name, err)
	}
}

func ownedBy(ds *appsv1.DaemonSet) *metav1.OwnerReference {
	return &metav1.OwnerReference{
		APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
}

func TestDaemonSetPodOnThisNode(t *testing.T) {
	ns := env.Namespace(t)
	createPod(t, ns, "me", podSpec{node: "node-a"})
	ds := createDaemonSet(t, ns, "ovs-agent")
	// Its pod on the other node is ready; that does not help this node.
	createPod(t, ns, "ovs-agent-b", podSpec{node: "node-b", labels: agentLabels, owner: ownedBy(ds), status: runningPod(true)})
	setDaemonSetStatus(t, ns, "ovs-agent", 2, 1, true)

	c := newClient(t, kube.Options{Namespace: ns, PodName: "me"})
	w := start(t, &kube.DaemonSet{Client: c, Ref: spec.ObjectRef{Namespace: ns, Name: "ovs-agent"}})
	w.blocked(t, "no pod on node node-a yet (1 of 2 scheduled)")

	// Right node, right labels, ready, but not the DaemonSet's: it does not count.
	createPod(t, ns, "impostor", podSpec{node: "node-a", labels: agentLabels, status: runningPod(true)})
	// Owned, but not as its controller.
	notController := ownedBy(ds)
	notController.Controller = nil
	createPod(t, ns, "adopted", podSpec{node: "node-a", labels: agentLabels, owner: notController, status: runningPod(true)})
	w.stillBlocked(t)
	w.blocked(t, "no pod on node node-a")

	createPod(t, ns, "ovs-agent-a", podSpec{node: "node-a", labels: agentLabels, owner: ownedBy(ds)})
	w.blocked(t, "pod ovs-agent-a on node node-a not ready")
	setPodStatus(t, ns, "ovs-agent-a", *runningPod(false))
	w.stillBlocked(t)
	setPodStatus(t, ns, "ovs-agent-a", *runningPod(true))
	w.ready(t)
}

// Once the controller has seen the spec and scheduled every pod it wants, a
// DaemonSet without a pod on this node does not target it and does not block.
func TestDaemonSetNotTargetingThisNode(t *testing.T) {
	for _, tc := range []struct {
		name             string
		desired, current int32
		observed         bool
		want             string // "" for ready
	}{
		{"fully scheduled elsewhere", 1, 1, true, ""},
		{"still scheduling", 2, 1, true, "no pod on node node-a yet (1 of 2 scheduled)"},
		{"spec not observed yet", 1, 1, false, "no pod on node node-a yet (1 of 1 scheduled)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.Namespace(t)
			createPod(t, ns, "me", podSpec{node: "node-a"})
			ds := createDaemonSet(t, ns, "gpu-plugin")
			createPod(t, ns, "gpu-plugin-b", podSpec{node: "node-b", labels: agentLabels, owner: ownedBy(ds), status: runningPod(true)})
			c := newClient(t, kube.Options{Namespace: ns, PodName: "me"})
			w := start(t, &kube.DaemonSet{Client: c, Ref: spec.ObjectRef{Namespace: ns, Name: "gpu-plugin"}})
			// A new DaemonSet has no status yet.
			w.blocked(t, "no pod on node node-a yet (0 of 0 scheduled)")
			setDaemonSetStatus(t, ns, "gpu-plugin", tc.desired, tc.current, tc.observed)
			if tc.want == "" {
				w.ready(t)
				return
			}
			w.blocked(t, tc.want)
			w.stillBlocked(t)
		})
	}
}

// NODE_NAME alone is enough: no own pod to read.
func TestDaemonSetNodeNameFromOptions(t *testing.T) {
	ns := env.Namespace(t)
	ds := createDaemonSet(t, ns, "ovs-agent")
	setDaemonSetStatus(t, ns, "ovs-agent", 2, 1, true)
	createPod(t, ns, "ovs-agent-a", podSpec{node: "node-a", labels: agentLabels, owner: ownedBy(ds), status: runningPod(true)})
	c := newClient(t, kube.Options{Namespace: ns, NodeName: "node-b"})
	w := start(t, &kube.DaemonSet{Client: c, Ref: spec.ObjectRef{Namespace: ns, Name: "ovs-agent"}})
	w.blocked(t, "no pod on node node-b")
	createPod(t, ns, "ovs-agent-b", podSpec{node: "node-b", labels: agentLabels, owner: ownedBy(ds), status: runningPod(true)})
	w.ready(t)
}

// A terminating pod on this node (a rolling update replaces it) is not ready even
// when its Ready condition still says so, and while it terminates the DaemonSet
// still targets this node, although the controller counts every node as scheduled.
func TestDaemonSetTerminatingPod(t *testing.T) {
	ns := env.Namespace(t)
	createPod(t, ns, "me", podSpec{node: "node-a"})
	ds := createDaemonSet(t, ns, "ovs-agent")
	createPod(t, ns, "ovs-agent-b", podSpec{node: "node-b", labels: agentLabels, owner: ownedBy(ds), status: runningPod(true)})
	createPod(t, ns, "ovs-agent-old", podSpec{node: "node-a", labels: agentLabels, owner: ownedBy(ds), hold: true})
	deletePod(t, ns, "ovs-agent-old")
	setPodStatus(t, ns, "ovs-agent-old", *runningPod(true))
	setDaemonSetStatus(t, ns, "ovs-agent", 2, 2, true)

	c := newClient(t, kube.Options{Namespace: ns, PodName: "me"})
	w := start(t, &kube.DaemonSet{Client: c, Ref: spec.ObjectRef{Namespace: ns, Name: "ovs-agent"}})
	w.blocked(t, "pod ovs-agent-old on node node-a is terminating")
	w.stillBlocked(t)

	createPod(t, ns, "ovs-agent-new", podSpec{node: "node-a", labels: agentLabels, owner: ownedBy(ds), status: runningPod(false)})
	w.blocked(t, "pod ovs-agent-new on node node-a not ready")
	setPodStatus(t, ns, "ovs-agent-new", *runningPod(true))
	w.ready(t)
}

func TestDaemonSetNotFound(t *testing.T) {
	ns := env.Namespace(t)
	c := newClient(t, kube.Options{Namespace: ns, NodeName: "node-a"})
	w := start(t, &kube.DaemonSet{Client: c, Ref: spec.ObjectRef{Namespace: ns, Name: "missing"}})
	w.blocked(t, "not found")
	w.stillBlocked(t)
}
