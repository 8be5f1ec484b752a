package controller

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/access"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Node-aware gates on a real API server. There is no kubelet and no scheduler:
// the dependency pods are created with spec.nodeName and made Ready through the
// status subresource, as a kubelet would.

// runningOn creates a pod labelled app in ns on node, Ready when ready.
func runningOn(t *testing.T, ns, name, app, node string, ready bool) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	p, err := env.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "c"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setReady(t, p, ready)
	return p
}

// setReady sets the pod Running with its Ready condition as ready says.
func setReady(t *testing.T, p *corev1.Pod, ready bool) {
	t.Helper()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p, err := env.Client.CoreV1().Pods(p.Namespace).Get(context.Background(), p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}}
	if _, err := env.Client.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// boundTo is the required node affinity the DaemonSet controller gives its pod
// for node (kubernetes pkg/controller/daemon/util).
func boundTo(node string) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{nameIs(node)}}}}}}
}

// stillGated checks, for a while, that the pod keeps its gate.
func stillGated(t *testing.T, ns, name string, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		p, err := env.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if gateIndex(p) < 0 {
			t.Fatalf("released: %s", conditionsOf(p))
		}
	}
}

// A DaemonSet's gated pod, bound to node n1 by its affinity, waits for the
// ovs pod on n1: one Ready on n2 does not release it, and the condition names
// n1; one Ready on n1 does, its affinity left as it was.
func TestDaemonSetPodJudgedOnItsNode(t *testing.T) {
	startController(t, nil)
	ns := env.Namespace(t)
	ctx := context.Background()
	ds, err := env.Client.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "c"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := managedPod(t, ns, "agent-x7k2p", map[string]string{
		spec.EnvPodsJSON: `[{"labels":{"app":"ovs"},"requireSameNode":true}]`,
	}, inject.SchedulingGate)
	pod.Labels["app"] = "agent"
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID, Controller: ptr.To(true)}}
	pod.Spec.Affinity = boundTo("n1")
	createPod(t, pod)

	text := "pods in " + ns + " with labels app=ovs on this node"
	waitPod(t, ns, pod.Name, "waiting on n1", hasCondition(corev1.ConditionFalse, ReasonWaiting, text+": no matching pods on node n1"))
	runningOn(t, ns, "ovs-n2", "ovs", "n2", true)
	waitPod(t, ns, pod.Name, "one on n1 not ready", hasCondition(corev1.ConditionFalse, ReasonWaiting, text+": no matching pods on node n1"))
	onN1 := runningOn(t, ns, "ovs-n1", "ovs", "n1", false)
	waitPod(t, ns, pod.Name, "not ready on n1", hasCondition(corev1.ConditionFalse, ReasonWaiting, text+": 0 of 1 matching pods ready on node n1"))
	stillGated(t, ns, pod.Name, time.Second)

	setReady(t, onN1, true)
	p := waitPod(t, ns, pod.Name, "released", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
	if !reflect.DeepEqual(p.Spec.Affinity, boundTo("n1")) {
		t.Errorf("the DaemonSet pod's affinity changed: %+v", p.Spec.Affinity)
	}
	waitPod(t, ns, pod.Name, "Ready", hasCondition(corev1.ConditionTrue, ReasonReady, ""))
}

// A gated pod of no DaemonSet with a requireSameNode dependency: kept gated
// with NoReadyNode while no node has it Ready, then, in one write, narrowed to
// exactly the nodes where it is Ready and released; the API server holds the
// narrowed affinity. A pod with its own term gains one node in it.
func TestNarrowedToReadyNodes(t *testing.T) {
	startController(t, nil)
	ns := env.Namespace(t)
	deps := map[string]string{spec.EnvPodsJSON: `[{"labels":{"app":"ovs"},"requireSameNode":true}]`}
	// web waits for a Service too, so that both nodes are ready at its release.
	createPod(t, managedPod(t, ns, "web", map[string]string{spec.EnvPodsJSON: deps[spec.EnvPodsJSON], spec.EnvServices: "db"}, inject.SchedulingGate))
	zoned := managedPod(t, ns, "zoned", deps, inject.SchedulingGate)
	zone := corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}
	zoned.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{zone}}}}}}
	zoned.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	createPod(t, zoned)

	text := "pods in " + ns + " with labels app=ovs on this node"
	noNode := "no node where the same-node dependency is ready (" + text + ": ready on no node)"
	waitPod(t, ns, "zoned", "NoReadyNode", hasCondition(corev1.ConditionFalse, ReasonNoReadyNode, noNode))
	waitPod(t, ns, "web", "Waiting for both", hasCondition(corev1.ConditionFalse, ReasonWaiting, "service "+ns+"/db: no endpoints; "+noNode))
	runningOn(t, ns, "ovs-n3", "ovs", "n3", false)
	stillGated(t, ns, "zoned", time.Second)
	waitPod(t, ns, "zoned", "still NoReadyNode", hasCondition(corev1.ConditionFalse, ReasonNoReadyNode, noNode))

	runningOn(t, ns, "ovs-n2", "ovs", "n2", true)
	runningOn(t, ns, "ovs-n1", "ovs", "n1", true)
	waitPod(t, ns, "web", "waiting for the Service alone", hasCondition(corev1.ConditionFalse, ReasonWaiting, "waiting for service "+ns+"/db: no endpoints"))
	// web's condition changes once one node is ready; a pod bound to n1 with the
	// same dependency is released only once the controller's cache has ovs-n1
	// ready too, so web's release below sees both nodes (not a race with it).
	probe := managedPod(t, ns, "probe-n1", deps, inject.SchedulingGate)
	probe.Spec.Affinity = boundTo("n1")
	createPod(t, probe)
	waitPod(t, ns, "probe-n1", "released on n1", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
	readySlice(t, ns, "db")
	web := waitPod(t, ns, "web", "released", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
	want := &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
		{MatchFields: []corev1.NodeSelectorRequirement{nameIs("n1")}}, {MatchFields: []corev1.NodeSelectorRequirement{nameIs("n2")}}}}
	if got := requiredOf(web.Spec.Affinity); !reflect.DeepEqual(got, want) {
		t.Errorf("web's required node affinity after release: %+v, want one term for n1 and one for n2", got)
	}
	zonedPod := waitPod(t, ns, "zoned", "released", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
	terms := requiredOf(zonedPod.Spec.Affinity).NodeSelectorTerms
	if len(terms) != 1 || !reflect.DeepEqual(terms[0].MatchExpressions, []corev1.NodeSelectorRequirement{zone}) ||
		len(terms[0].MatchFields) != 1 || terms[0].MatchFields[0].Key != "metadata.name" || zonedPod.Spec.NodeSelector["disk"] != "ssd" {
		t.Errorf("zoned's affinity after release: %+v, nodeSelector %v; want its term with one node name added", zonedPod.Spec.Affinity, zonedPod.Spec.NodeSelector)
	}
}

// A same-node dependency in another namespace is judged only if the pod's
// ServiceAccount may list pods there: until then the gate stays and the
// condition names the missing RBAC, not where the pods run.
func TestSameNodeAcrossNamespacesNeedsRBAC(t *testing.T) {
	startControllerWith(t, env.Config, nil, func(o *Options) {
		o.Access = access.NewChecker(env.Client.AuthorizationV1().SubjectAccessReviews(), access.Options{DeniedFor: time.Second})
	})
	other, tenant := env.Namespace(t), env.Namespace(t)
	runningOn(t, other, "ovs-n1", "ovs", "n1", true)
	createPod(t, withServiceAccount(managedPod(t, tenant, "app", map[string]string{
		spec.EnvPodsJSON: fmt.Sprintf(`[{"labels":{"app":"ovs"},"namespace":%q,"requireSameNode":true}]`, other),
	}, inject.SchedulingGate), "app"))
	missing := fmt.Sprintf("serviceaccount %s/app may not list pods in %s", tenant, other)
	p := waitPod(t, tenant, "app", "the missing RBAC named", hasCondition(corev1.ConditionFalse, ReasonWaiting, missing))
	stillGated(t, tenant, "app", 2*time.Second)
	if c := findCondition(p); c == nil || strings.Contains(c.Message, "n1") || strings.Contains(c.Message, "ready on") {
		t.Errorf("the condition tells where the pods run: %v", c)
	}
}

// What the API server lets a gated pod's required node affinity gain (KEP-3838;
// kubernetes pkg/apis/core/validation: validateNodeAffinityMutation), which
// narrowed keeps to: with no terms, any terms; with terms, no term added or
// removed, requirements only appended to each, none to a term that had none; a
// node-name requirement holds exactly one name; and nothing once the pod has no
// gate left.
func TestAPIServerNarrowingRules(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	zone := corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}
	gated := func(name string, terms ...corev1.NodeSelectorTerm) *corev1.Pod {
		p := managedPod(t, ns, name, nil, inject.SchedulingGate)
		if len(terms) > 0 {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
		}
		return createPod(t, p)
	}
	patch := func(p *corev1.Pod, ops string) error {
		_, err := env.Client.CoreV1().Pods(ns).Patch(ctx, p.Name, types.JSONPatchType, []byte(ops), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}
	withZone, bare, withEmpty := gated("with-zone", zone), gated("bare"), gated("with-empty", corev1.NodeSelectorTerm{}, zone)
	required := "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution"
	for _, tc := range []struct {
		name    string
		pod     *corev1.Pod
		ops     string
		allowed bool
	}{
		{"no terms: several set", bare, `[{"op":"add","path":"/spec/affinity","value":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[` +
			`{"matchFields":[{"key":"metadata.name","operator":"In","values":["n1"]}]},{"matchFields":[{"key":"metadata.name","operator":"In","values":["n2"]}]}]}}}}]`, true},
		{"a requirement appended to a term", withZone, `[{"op":"add","path":"` + required + `/nodeSelectorTerms/0/matchFields","value":[{"key":"metadata.name","operator":"In","values":["n1"]}]}]`, true},
		{"a term added", withZone, `[{"op":"add","path":"` + required + `/nodeSelectorTerms/-","value":{"matchFields":[{"key":"metadata.name","operator":"In","values":["n1"]}]}}]`, false},
		{"a node-name requirement of two names", bare, `[{"op":"add","path":"/spec/affinity","value":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[` +
			`{"matchFields":[{"key":"metadata.name","operator":"In","values":["n1","n2"]}]}]}}}}]`, false},
		{"a requirement given to an empty term", withEmpty, `[{"op":"add","path":"` + required + `/nodeSelectorTerms/0/matchFields","value":[{"key":"metadata.name","operator":"In","values":["n1"]}]}]`, false},
		{"a term's requirement changed", withZone, `[{"op":"replace","path":"` + required + `/nodeSelectorTerms/0/matchExpressions/0/values","value":["b"]}]`, false},
	} {
		err := patch(tc.pod, tc.ops)
		if (err == nil) != tc.allowed {
			t.Errorf("%s: allowed %v (%v), want %v", tc.name, err == nil, err, tc.allowed)
		}
	}
	if _, err := env.Client.CoreV1().Pods(ns).Patch(ctx, bare.Name, types.JSONPatchType, []byte(`[{"op":"remove","path":"/spec/schedulingGates"}]`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := patch(bare, `[{"op":"add","path":"/spec/affinity","value":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[`+
		`{"matchFields":[{"key":"metadata.name","operator":"In","values":["n1"]}]}]}}}}]`); err == nil {
		t.Error("narrowing a pod without gates: allowed")
	}
}

// The admission warning names a gated pod's same-node dependency in another
// namespace that its ServiceAccount may not list, as the condition would; a pod
// not gated leaves it to its resolver, and draws none.
func TestAccessWarnerSameNode(t *testing.T) {
	w, err := NewAccessWarner(access.NewChecker(env.Client.AuthorizationV1().SubjectAccessReviews(), access.Options{}), nil, testDependencies, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, tenant := env.Namespace(t), env.Namespace(t)
	deps := map[string]string{spec.EnvPodsJSON: fmt.Sprintf(`[{"labels":{"app":"ovs"},"namespace":%q,"requireSameNode":true}]`, other)}
	want := fmt.Sprintf("pods in %s with labels app=ovs on this node: not judged until granted: serviceaccount %s/app may not list pods in %s", other, tenant, other)
	gated := withServiceAccount(managedPod(t, tenant, "app", deps, inject.SchedulingGate), "app")
	if got := w.Warnings(context.Background(), gated); len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Errorf("warnings of the gated pod: %q, want one starting %q", got, want)
	}
	if got := w.Warnings(context.Background(), withServiceAccount(managedPod(t, tenant, "app", deps), "app")); len(got) != 0 {
		t.Errorf("warnings of the pod not gated: %q", got)
	}
}

// wakeLog keeps the pods of each wake, in order.
type wakeLog struct {
	mu      sync.Mutex
	batches [][]types.NamespacedName
}

func (l *wakeLog) add(pods []types.NamespacedName) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches = append(l.batches, slices.Clone(pods))
}

// since are the batches after the first n.
func (l *wakeLog) since(n int) [][]types.NamespacedName {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.batches[n:])
}

func (l *wakeLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.batches)
}

// Two gated pods bound to n1 and n2 wait for the ovs pod on their node: the
// ovs pod's changes on n2 wake the pod on n2 only, those on n1 the pod on n1
// only, and each is released by its own node's ovs pod.
func TestOtherNodesPodWakesNone(t *testing.T) {
	var log wakeLog
	startControllerWith(t, env.Config, nil, func(o *Options) { o.woken = log.add })
	ns := env.Namespace(t)
	deps := map[string]string{spec.EnvPodsJSON: `[{"labels":{"app":"ovs"},"requireSameNode":true}]`}
	waiting := map[string]types.NamespacedName{}
	for _, node := range []string{"n1", "n2"} {
		pod := managedPod(t, ns, "on-"+node, deps, inject.SchedulingGate)
		pod.Spec.Affinity = boundTo(node)
		createPod(t, pod)
		waiting[node] = types.NamespacedName{Namespace: ns, Name: pod.Name}
	}
	text := "pods in " + ns + " with labels app=ovs on this node"
	for node, p := range waiting {
		waitPod(t, ns, p.Name, "waiting on "+node, hasCondition(corev1.ConditionFalse, ReasonWaiting, text+": no matching pods on node "+node))
	}
	start := log.len()

	woken := func(p types.NamespacedName) int {
		n := 0
		for _, b := range log.since(start) {
			if slices.Contains(b, p) {
				n++
			}
		}
		return n
	}
	// Created, then its status set: two changes on n2.
	onN2 := runningOn(t, ns, "ovs-n2", "ovs", "n2", false)
	waitPod(t, ns, "on-n2", "not ready on n2", hasCondition(corev1.ConditionFalse, ReasonWaiting, text+": 0 of 1 matching pods ready on node n2"))
	waitFor(t, "both changes on n2 waking on-n2", func() (bool, string) {
		n := woken(waiting["n2"])
		return n >= 2, fmt.Sprintf("woken %d times", n)
	})
	// The informer hands its changes over in order: once the one on n1 woke
	// on-n1, every wake of n2's changes has been seen.
	onN1 := runningOn(t, ns, "ovs-n1", "ovs", "n1", false)
	waitPod(t, ns, "on-n1", "not ready on n1", hasCondition(corev1.ConditionFalse, ReasonWaiting, text+": 0 of 1 matching pods ready on node n1"))
	waitFor(t, "the change on n1 waking on-n1", func() (bool, string) {
		n := woken(waiting["n1"])
		return n >= 1, fmt.Sprintf("woken %d times", n)
	})
	for _, b := range log.since(start) {
		if slices.Contains(b, waiting["n1"]) && slices.Contains(b, waiting["n2"]) {
			t.Errorf("one pod's change woke the pods waiting on both nodes: %v", b)
		}
	}

	setReady(t, onN2, true)
	waitPod(t, ns, "on-n2", "released", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
	stillGated(t, ns, "on-n1", time.Second)
	setReady(t, onN1, true)
	waitPod(t, ns, "on-n1", "released", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
}
