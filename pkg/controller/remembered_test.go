package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// These tests play the Job controller (the status) and the TTL controller (the
// deletion): the test API server runs neither.

// succeededJob creates the Job ns/name with labels and marks it succeeded.
func succeededJob(t *testing.T, ns, name string, lbls map[string]string) *batchv1.Job {
	t.Helper()
	job := createJob(t, ns, name, lbls)
	now := metav1.Now()
	job.Status = batchv1.JobStatus{Succeeded: 1, StartTime: &now, CompletionTime: &now, Conditions: []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now}}}
	job, err := env.Client.BatchV1().Jobs(ns).UpdateStatus(context.Background(), job, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("marking job %s succeeded: %v", name, err)
	}
	return job
}

func createJob(t *testing.T, ns, name string, lbls map[string]string) *batchv1.Job {
	t.Helper()
	job, err := env.Client.BatchV1().Jobs(ns).Create(context.Background(), &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "j", Image: "j"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating job %s: %v", name, err)
	}
	return job
}

// deleteJob deletes the Job as its TTL controller does (in the background: its
// pods are the garbage collector's), and waits until it is gone.
func deleteJob(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	err := env.Client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
	if err != nil {
		t.Fatalf("deleting job %s: %v", name, err)
	}
	deadline := time.Now().Add(settle)
	for {
		_, err := env.Client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still there after its deletion: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deleteSeenJob deletes the Job whose completion seeCompletion showed the
// controller, and waits until the controller has seen it go (the watcher's
// condition names the remembered completion): the API server answering "not
// found" does not mean the controller's informer has caught up, and a pod
// created before it has would be judged by the Job still in its cache.
func deleteSeenJob(t *testing.T, ns, name string) {
	t.Helper()
	deleteJob(t, ns, name)
	waitPod(t, ns, "watcher", "the deletion seen by the controller", func(p *corev1.Pod) bool {
		c := findCondition(p)
		return c != nil && strings.Contains(c.Message, "(deleted since)")
	})
}

// releasedPod is a managed pod of the release r, labelled as Helm's charts label
// their pods, waiting in gate mode for the Job db-init.
func releasedPod(t *testing.T, ns, name, release string) *corev1.Pod {
	pod := managedPod(t, ns, name, map[string]string{"DEPENDENCY_JOBS": "db-init"}, inject.SchedulingGate)
	pod.Labels["app.kubernetes.io/instance"] = release
	pod.Labels["helm.sh/chart"] = "db-1.0.0"
	return pod
}

var releaseR1 = map[string]string{"app.kubernetes.io/instance": "r1", "helm.sh/chart": "db-1.0.0", "app.kubernetes.io/component": "db-init"}

// seeCompletion makes the controller watch Jobs (a pod waits for one) and see
// db-init succeed: the watching pod turns Ready.
func seeCompletion(t *testing.T, ns string, lbls map[string]string) {
	t.Helper()
	createPod(t, releasedPod(t, ns, "watcher", lbls["app.kubernetes.io/instance"]))
	waitPod(t, ns, "watcher", "condition Waiting", hasCondition(corev1.ConditionFalse, ReasonWaiting, "job "+ns+"/db-init: not found"))
	succeededJob(t, ns, "db-init", lbls)
	waitPod(t, ns, "watcher", "released by the Job", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
}

// A pod created after its Job succeeded and was deleted is released by the
// controller's memory of the completion, once its grace is over, and the
// condition says so.
func TestRememberedJobReleasesLaterPod(t *testing.T) {
	const grace = 3 * time.Second
	r := startControllerWith(t, env.Config, nil, func(o *Options) { o.RememberedJobGrace = grace })
	ns := env.Namespace(t)
	seeCompletion(t, ns, releaseR1)
	deleteSeenJob(t, ns, "db-init")

	created := createPod(t, releasedPod(t, ns, "app", "r1"))
	waitPod(t, ns, "app", "the grace named", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		"job "+ns+"/db-init: succeeded at "))
	if p, _ := env.Client.CoreV1().Pods(ns).Get(context.Background(), "app", metav1.GetOptions{}); gateIndex(p) < 0 &&
		time.Since(created.CreationTimestamp.Time) < grace-time.Second {
		t.Fatalf("released %s after its creation, before the grace of %s", time.Since(created.CreationTimestamp.Time), grace)
	}
	waitPod(t, ns, "app", "released by the remembered completion", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
	if age := time.Since(created.CreationTimestamp.Time); age < grace-time.Second { // creation times are in seconds
		t.Errorf("released %s after its creation; want after the grace, %s", age, grace)
	}
	waitPod(t, ns, "app", "condition Ready naming the deleted Job", hasCondition(corev1.ConditionTrue, ReasonReady,
		"the dependency that needs no node is ready; job "+ns+"/db-init succeeded at "))
	if c, ok := r.jobs.lookup(ns, "db-init"); !ok || c.release["app.kubernetes.io/instance"] != "r1" {
		t.Errorf("remembered %+v (%v); want the completion of db-init with its release", c, ok)
	}
}

// A Job of another release (here: another instance of the chart) does not
// satisfy the pod, however long it waits.
func TestRememberedJobOfAnotherReleaseDoesNotCount(t *testing.T) {
	startControllerWith(t, env.Config, nil, func(o *Options) { o.RememberedJobGrace = 100 * time.Millisecond })
	ns := env.Namespace(t)
	seeCompletion(t, ns, releaseR1)
	deleteSeenJob(t, ns, "db-init")

	createPod(t, releasedPod(t, ns, "app", "r2"))
	waitPod(t, ns, "app", "the other release named", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		`job `+ns+`/db-init: not found; the job of that name that succeeded at `))
	waitPod(t, ns, "app", "the labels named", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		`(deleted since) was of another release: app.kubernetes.io/instance is "r1" on the job, "r2" on this pod`))
	time.Sleep(2 * time.Second) // well past the grace
	p, err := env.Client.CoreV1().Pods(ns).Get(context.Background(), "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if gateIndex(p) < 0 {
		t.Fatalf("a pod of release r2 was released by the Job of release r1: conditions %s", conditionsOf(p))
	}
}

// A Job re-created under the same name counts instead of the remembered one: the
// pods wait for it again until it succeeds.
func TestRecreatedJobBlocksAgain(t *testing.T) {
	startControllerWith(t, env.Config, nil, func(o *Options) { o.RememberedJobGrace = 100 * time.Millisecond })
	ns := env.Namespace(t)
	seeCompletion(t, ns, releaseR1)
	deleteSeenJob(t, ns, "db-init")
	createPod(t, releasedPod(t, ns, "before", "r1"))
	waitPod(t, ns, "before", "released by the remembered completion", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })

	createJob(t, ns, "db-init", releaseR1)
	// Once the controller has seen the new Job (the released pod, not running
	// without a kubelet, still gets its condition): with a grace this short, a
	// pod reconciled before that would be released by the old completion.
	waitPod(t, ns, "before", "the new Job seen", hasCondition(corev1.ConditionFalse, ReasonWaiting, "job "+ns+"/db-init: 0 active, 0 succeeded"))
	createPod(t, releasedPod(t, ns, "after", "r1"))
	waitPod(t, ns, "after", "waiting for the new Job", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		"job "+ns+"/db-init: 0 active, 0 succeeded"))
	time.Sleep(time.Second) // well past the grace
	if p, _ := env.Client.CoreV1().Pods(ns).Get(context.Background(), "after", metav1.GetOptions{}); gateIndex(p) < 0 {
		t.Fatalf("released while the re-created Job runs: conditions %s", conditionsOf(p))
	}

	// Deleted before it succeeded: nothing is remembered any more.
	deleteJob(t, ns, "db-init")
	waitPod(t, ns, "after", "not found", hasCondition(corev1.ConditionFalse, ReasonWaiting, "job "+ns+"/db-init: not found"))
	time.Sleep(time.Second)
	if p, _ := env.Client.CoreV1().Pods(ns).Get(context.Background(), "after", metav1.GetOptions{}); gateIndex(p) < 0 ||
		!hasCondition(corev1.ConditionFalse, ReasonWaiting, "job "+ns+"/db-init: not found")(p) {
		t.Fatalf("after the unfinished Job's deletion: gates %v, conditions %s; want still gated, not found", gateNames(p), conditionsOf(p))
	}

	succeededJob(t, ns, "db-init", releaseR1)
	waitPod(t, ns, "after", "released by the new Job", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
}
