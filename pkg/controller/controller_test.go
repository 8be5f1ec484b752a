package controller

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

func TestConditionFollowsTheService(t *testing.T) {
	startController(t, nil)
	ns := env.Namespace(t)
	createPod(t, managedPod(t, ns, "app", map[string]string{"DEPENDENCY_SERVICE": "db", "DEPENDENCY_SOCKET": "/run/x.sock"}))

	p := waitPod(t, ns, "app", "condition Waiting on the service", hasCondition(corev1.ConditionFalse, ReasonWaiting, "service "+ns+"/db: no endpoints"))
	if c := findCondition(p); c.LastTransitionTime.IsZero() {
		t.Errorf("condition without lastTransitionTime: %+v", c)
	}
	readySlice(t, ns, "db")
	p = waitPod(t, ns, "app", "condition Ready", hasCondition(corev1.ConditionTrue, ReasonReady, "the resolver in the pod checks socket /run/x.sock"))
	if len(p.Spec.SchedulingGates) != 0 {
		t.Errorf("an ungated pod got gates: %v", gateNames(p))
	}
	deadline := time.Now().Add(settle)
	for {
		reasons := eventReasons(t, ns, "app")
		if slices.Contains(reasons, "DependenciesWaiting") && slices.Contains(reasons, "DependenciesReady") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events about the pod: %v; want DependenciesWaiting and DependenciesReady", reasons)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestGateRemovedOnlyWhenAllReadyAndOnlyOurs(t *testing.T) {
	startController(t, nil)
	ns := env.Namespace(t)
	ctx := context.Background()
	createPod(t, managedPod(t, ns, "app", map[string]string{
		"DEPENDENCY_SERVICE": "db",
		"DEPENDENCY_JOBS":    "migrate",
	}, "example.com/other", inject.SchedulingGate))

	waitPod(t, ns, "app", "both blockers named", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		"service "+ns+"/db: no endpoints; job "+ns+"/migrate: not found"))
	readySlice(t, ns, "db")
	waitPod(t, ns, "app", "only the job left", hasCondition(corev1.ConditionFalse, ReasonWaiting, "waiting for job "+ns+"/migrate: not found"))
	if p, _ := env.Client.CoreV1().Pods(ns).Get(ctx, "app", metav1.GetOptions{}); gateIndex(p) < 0 {
		t.Fatalf("gate removed while job %s/migrate was not found: gates %v", ns, gateNames(p))
	}

	job, err := env.Client.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "migrate"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "m", Image: "m"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitPod(t, ns, "app", "the job's state named", hasCondition(corev1.ConditionFalse, ReasonWaiting, "job "+ns+"/migrate: 0 active, 0 succeeded"))
	now := metav1.Now()
	job.Status = batchv1.JobStatus{Succeeded: 1, StartTime: &now, CompletionTime: &now, Conditions: []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now}}}
	if _, err := env.Client.BatchV1().Jobs(ns).UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(t, ns, "app", "our gate removed", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
	if got := gateNames(p); !slices.Equal(got, []string{"example.com/other"}) {
		t.Errorf("gates after release: %v; want only example.com/other kept", got)
	}
	waitPod(t, ns, "app", "condition Ready", hasCondition(corev1.ConditionTrue, ReasonReady, "all 2 dependencies that need no node are ready"))
}

// The gate's removal must not undo a concurrent change of the pod's gates: a
// patch built from a stale read fails, and the next reconcile does it right.
func TestGateRemovalIsGuarded(t *testing.T) {
	r := startController(t, nil)
	ns := env.Namespace(t)
	ctx := context.Background()
	// A dependency that never becomes ready keeps the controller off this pod's gate.
	createPod(t, managedPod(t, ns, "app", map[string]string{"DEPENDENCY_SERVICE": "never"}, "example.com/other", inject.SchedulingGate))
	stale := waitPod(t, ns, "app", "condition Waiting", hasCondition(corev1.ConditionFalse, ReasonWaiting, "never"))

	// Another controller removes its own gate meanwhile.
	fresh := stale.DeepCopy()
	fresh.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: inject.SchedulingGate}}
	if _, err := env.Client.CoreV1().Pods(ns).Update(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := r.removeGate(ctx, stale, nil)
	if err == nil {
		t.Fatal("removing the gate from a stale read succeeded; it must fail so it cannot restore a removed gate")
	}
	p, _ := env.Client.CoreV1().Pods(ns).Get(ctx, "app", metav1.GetOptions{})
	if got := gateNames(p); !slices.Equal(got, []string{inject.SchedulingGate}) {
		t.Fatalf("gates after the failed removal: %v; want [%s] untouched", got, inject.SchedulingGate)
	}
	// A pod deleted and created again under the same name is another pod.
	if err := r.removeGate(ctx, p, nil); err != nil {
		t.Fatalf("removing the gate from a fresh read: %v", err)
	}
	p2 := managedPod(t, ns, "app2", map[string]string{"DEPENDENCY_SERVICE": "never"}, inject.SchedulingGate)
	created := createPod(t, p2)
	created.UID = types.UID("00000000-0000-0000-0000-000000000000")
	if err := r.removeGate(ctx, created, nil); err == nil {
		t.Error("removing the gate with another pod's uid succeeded")
	}
}

// The pod informer is label-selected: an annotated pod without the label is not
// the controller's (the webhook labels every pod it injects).
func TestOnlyLabelledPods(t *testing.T) {
	r := startController(t, nil)
	ns := env.Namespace(t)
	unlabelled := managedPod(t, ns, "unlabelled", map[string]string{"DEPENDENCY_SERVICE": "db"})
	delete(unlabelled.Labels, inject.LabelManaged)
	createPod(t, unlabelled)
	createPod(t, managedPod(t, ns, "labelled", map[string]string{"DEPENDENCY_SERVICE": "db"}))
	waitPod(t, ns, "labelled", "condition Waiting", hasCondition(corev1.ConditionFalse, ReasonWaiting, "db"))
	// The controller reconciles every pod it sees once it has seen one; give it a
	// moment more, then look: the unlabelled pod must have no condition.
	r.Wake(types.NamespacedName{Namespace: ns, Name: "unlabelled"})
	readySlice(t, ns, "db")
	waitPod(t, ns, "labelled", "condition Ready", hasCondition(corev1.ConditionTrue, ReasonReady, ""))
	p, err := env.Client.CoreV1().Pods(ns).Get(context.Background(), "unlabelled", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := findCondition(p); c != nil {
		t.Errorf("unlabelled pod got the condition: %+v", c)
	}
}

// Many pods waiting on many Services share one informer: one watch per kind.
func TestOneInformerPerKind(t *testing.T) {
	r := startController(t, nil)
	ns := env.Namespace(t)
	for i := range 30 {
		svc := "svc-" + strings.Repeat("x", i%3) + string(rune('a'+i%26))
		createPod(t, managedPod(t, ns, "p"+string(rune('a'+i%26))+strings.Repeat("y", i/26), map[string]string{"DEPENDENCY_SERVICE": svc}))
	}
	createPod(t, managedPod(t, ns, "job-waiter", map[string]string{"DEPENDENCY_JOBS": "a,b,c"}))
	waitPod(t, ns, "job-waiter", "condition Waiting", hasCondition(corev1.ConditionFalse, ReasonWaiting, "job "+ns+"/a: not found"))
	waitPod(t, ns, "pa", "condition Waiting", hasCondition(corev1.ConditionFalse, ReasonWaiting, "no endpoints"))
	if n := r.kinds.count(); n != 2 {
		t.Errorf("%d informers for 31 pods on 30 Services and 3 Jobs; want 2 (EndpointSlices and Jobs)", n)
	}
}

func TestCycleReported(t *testing.T) {
	ns := env.Namespace(t)
	startController(t, fixedCycles{ns + "/a": "deployment " + ns + "/a waits for service " + ns + "/b, served by deployment " + ns + "/b, which waits for service " + ns + "/a"})
	createPod(t, managedPod(t, ns, "a", map[string]string{"DEPENDENCY_SERVICE": "b"}, inject.SchedulingGate))
	createPod(t, managedPod(t, ns, "c", map[string]string{"DEPENDENCY_SERVICE": "b"}))
	waitPod(t, ns, "a", "condition Cycle", hasCondition(corev1.ConditionFalse, ReasonCycle,
		"dependency cycle: deployment "+ns+"/a waits for service "+ns+"/b"))
	waitPod(t, ns, "c", "condition Waiting (not in the cycle)", hasCondition(corev1.ConditionFalse, ReasonWaiting, "service "+ns+"/b"))
	// A cycle whose dependencies are all ready holds nothing back.
	readySlice(t, ns, "b")
	waitPod(t, ns, "a", "released", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
}

// Pods by labels and custom resources (here a ConfigMap's field) use the
// resolver's rules and words too; same-node pods are left to the resolver.
func TestPodsAndCustomResources(t *testing.T) {
	startController(t, nil)
	ns := env.Namespace(t)
	ctx := context.Background()
	createPod(t, managedPod(t, ns, "app", map[string]string{
		"DEPENDENCY_POD_JSON":        `[{"labels":{"app":"cache"}}]`,
		"DEPENDENCY_CUSTOM_RESOURCE": `[{"apiVersion":"v1","kind":"ConfigMap","name":"settings","fields":[{"key":"data.mode","value":"on"}]}]`,
		"DEPENDENCY_SOCKET":          "/run/agent.sock",
	}, inject.SchedulingGate))
	waitPod(t, ns, "app", "both named", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		"pods in "+ns+" with labels app=cache: no matching pods; configmap "+ns+"/settings (v1): not found"))

	cache := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cache", Labels: map[string]string{"app": "cache"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "c"}}}}
	cache, err := env.Client.CoreV1().Pods(ns).Create(ctx, cache, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitPod(t, ns, "app", "pods not ready", hasCondition(corev1.ConditionFalse, ReasonWaiting, "0 of 1 matching pods ready"))
	cache.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	if _, err := env.Client.CoreV1().Pods(ns).UpdateStatus(ctx, cache, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"mode": "off"}}
	if cm, err = env.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ns, "app", "only the field left", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		`waiting for configmap `+ns+`/settings (v1): field data.mode does not match`))
	cm.Data["mode"] = "on"
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(t, ns, "app", "released", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
	waitPod(t, ns, "app", "Ready naming what the resolver checks", hasCondition(corev1.ConditionTrue, ReasonReady,
		"the resolver in the pod checks socket /run/agent.sock"))
	_ = p
}

// A reconcile that reads the pod from a cache not yet updated by the controller's
// own status write must not write the condition (and its Event) again; a
// condition changed by someone else after that write is written back.
func TestConditionWrittenOncePerChange(t *testing.T) {
	r := startController(t, nil)
	ns := env.Namespace(t)
	ctx := context.Background()
	created := createPod(t, managedPod(t, ns, "app", map[string]string{"DEPENDENCY_SERVICE": "db"}))
	p := waitPod(t, ns, "app", "condition Waiting", hasCondition(corev1.ConditionFalse, ReasonWaiting, "service "+ns+"/db"))
	key := types.NamespacedName{Namespace: ns, Name: "app"}
	written := *findCondition(p)
	if !r.alreadyWritten(key, created, written) {
		t.Error("a read from before the controller's write would write the condition again")
	}
	if r.alreadyWritten(key, p, written) {
		t.Error("a read from after the write counts as stale")
	}

	// One Event for the one change so far.
	time.Sleep(time.Second)
	if n := recordedEvents(t, ns, "app", "DependenciesWaiting"); n != 1 {
		t.Errorf("%d DependenciesWaiting events recorded; want 1", n)
	}

	// Someone else changes the condition: the controller writes its own back.
	patch := `{"status":{"conditions":[{"type":"` + ConditionType + `","status":"False","reason":"Waiting","message":"edited by hand"}]}}`
	if _, err := env.Client.CoreV1().Pods(ns).Patch(ctx, "app", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ns, "app", "the controller's condition written back", hasCondition(corev1.ConditionFalse, ReasonWaiting, "service "+ns+"/db"))
}

// recordedEvents counts the events of reason about the pod, each of a series as
// many times as the API server was told it happened.
func recordedEvents(t *testing.T, ns, pod, reason string) int {
	t.Helper()
	list, err := env.Client.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "regarding.name=" + pod})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range list.Items {
		if e.Reason != reason {
			continue
		}
		n++
		if e.Series != nil {
			n += int(e.Series.Count) - 1
		}
	}
	return n
}

// A failed Job is named with its reason in the condition, and the gate stays:
// there is nothing to release (the resolver in a resolver-mode pod exits 4).
func TestFailedJobKeepsTheGate(t *testing.T) {
	startController(t, nil)
	ns := env.Namespace(t)
	ctx := context.Background()
	createPod(t, managedPod(t, ns, "app", map[string]string{"DEPENDENCY_JOBS": "migrate"}, inject.SchedulingGate))
	job, err := env.Client.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "migrate"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "m", Image: "m"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	job.Status = batchv1.JobStatus{Failed: 1, StartTime: &now, Conditions: []batchv1.JobCondition{
		{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonBackoffLimitExceeded, LastTransitionTime: now},
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonBackoffLimitExceeded, LastTransitionTime: now}}}
	if _, err := env.Client.BatchV1().Jobs(ns).UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(t, ns, "app", "the failure named", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		"job "+ns+"/migrate: failed: BackoffLimitExceeded"))
	if gateIndex(p) < 0 {
		t.Fatal("gate removed although the job failed")
	}
}

// "db#2" holds the gate until two distinct endpoints of the Service are ready,
// and the condition counts them.
func TestServiceMinimumHoldsTheGate(t *testing.T) {
	startController(t, nil)
	ns := env.Namespace(t)
	ctx := context.Background()
	createPod(t, managedPod(t, ns, "app", map[string]string{"DEPENDENCY_SERVICE": "db#2"}, inject.SchedulingGate))
	waitPod(t, ns, "app", "the minimum named", hasCondition(corev1.ConditionFalse, ReasonWaiting, "service "+ns+"/db: 0 of 2 required endpoints ready"))
	addSlice := func(ip string) {
		t.Helper()
		_, err := env.Client.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{GenerateName: "db-", Labels: map[string]string{serviceNameLabel: "db"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating EndpointSlice of db: %v", err)
		}
	}
	addSlice("10.0.0.1")
	p := waitPod(t, ns, "app", "one of two counted", hasCondition(corev1.ConditionFalse, ReasonWaiting, "service "+ns+"/db: 1 of 2 required endpoints ready"))
	if gateIndex(p) < 0 {
		t.Fatal("gate removed with one of two required endpoints ready")
	}
	addSlice("10.0.0.2")
	waitPod(t, ns, "app", "gate removed", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
}

// With ENTRYPOINT_OPTIONAL_AFTER the gate goes that long after the pod's
// creation whatever still blocks, with a Warning Event naming it; without, it stays.
func TestOptionalAfterLiftsTheGate(t *testing.T) {
	// No grace for the Waiting condition: the test looks for it well before
	// the optional-after time.
	startControllerWith(t, env.Config, nil, func(o *Options) { o.WaitingGrace = -1 })
	ns := env.Namespace(t)
	created := time.Now()
	createPod(t, managedPod(t, ns, "optional", map[string]string{"DEPENDENCY_SERVICE": "never", "ENTRYPOINT_OPTIONAL_AFTER": "2s"}, inject.SchedulingGate))
	createPod(t, managedPod(t, ns, "required", map[string]string{"DEPENDENCY_SERVICE": "never"}, inject.SchedulingGate))
	p := waitPod(t, ns, "optional", "condition Waiting", hasCondition(corev1.ConditionFalse, ReasonWaiting, "service "+ns+"/never: no endpoints"))
	if gateIndex(p) < 0 {
		t.Fatal("gate removed before the optional-after time")
	}
	waitPod(t, ns, "optional", "gate removed", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
	if elapsed := time.Since(created); elapsed < time.Second {
		t.Errorf("gate removed after %s, want about 2s", elapsed)
	}
	deadline := time.Now().Add(settle)
	for !slices.Contains(eventReasons(t, ns, "optional"), "StartedWithoutDependencies") {
		if time.Now().After(deadline) {
			t.Fatalf("events about the pod: %v; want StartedWithoutDependencies", eventReasons(t, ns, "optional"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	list, err := env.Client.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "regarding.name=optional,reason=StartedWithoutDependencies"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Type != corev1.EventTypeWarning || !strings.Contains(list.Items[0].Note, "service "+ns+"/never: no endpoints") {
		t.Errorf("events %+v; want one Warning naming service %s/never", list.Items, ns)
	}
	if p, _ := env.Client.CoreV1().Pods(ns).Get(context.Background(), "required", metav1.GetOptions{}); gateIndex(p) < 0 {
		t.Error("gate removed from the pod without optional-after")
	}
}
