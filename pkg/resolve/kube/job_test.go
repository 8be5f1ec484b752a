package kube_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

func createJob(t *testing.T, ns, name string, labels map[string]string, completions int32) {
	t.Helper()
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: batchv1.JobSpec{
			Completions: ptr.To(completions),
			Parallelism: ptr.To[int32](1),
			Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "init", Image: "busybox"}},
				},
			},
		},
	}
	if _, err := env.Client.BatchV1().Jobs(ns).Create(context.Background(), job, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating job %s/%s: %v", ns, name, err)
	}
}

// jobPhase builds a Job status the API server accepts; it validates the transitions
// the job controller makes (start time, terminal conditions, counts).
type jobPhase int

const (
	jobRunning        jobPhase = iota // one pod active
	jobPartlyDone                     // one of two completions succeeded, one pod active
	jobComplete                       // all completions succeeded: SuccessCriteriaMet and Complete
	jobFailed                         // backoff limit reached: FailureTarget and Failed
	jobRunningTwoPods                 // two pods active
)

func setJobStatus(t *testing.T, ns, name string, phase jobPhase) {
	t.Helper()
	ctx := context.Background()
	job, err := env.Client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	started := job.Status.StartTime // may not change once set
	if started == nil {
		started = &metav1.Time{Time: time.Now().Add(-time.Minute).Truncate(time.Second)}
	}
	now := metav1.Time{Time: time.Now().Truncate(time.Second)}
	cond := func(typ batchv1.JobConditionType, reason, message string) batchv1.JobCondition {
		return batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: message,
			LastProbeTime: now, LastTransitionTime: now}
	}
	st := batchv1.JobStatus{StartTime: started}
	switch phase {
	case jobRunning:
		st.Active = 1
	case jobRunningTwoPods:
		st.Active = 2
	case jobPartlyDone:
		st.Active, st.Succeeded = 1, 1
	case jobComplete:
		st.Succeeded = ptr.Deref(job.Spec.Completions, 1)
		st.CompletionTime = &now
		st.Conditions = []batchv1.JobCondition{
			cond(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods"),
			cond(batchv1.JobComplete, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods"),
		}
	case jobFailed:
		st.Failed = 1
		st.Conditions = []batchv1.JobCondition{
			cond(batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"),
			cond(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"),
		}
	}
	job.Status = st
	if _, err := env.Client.BatchV1().Jobs(ns).UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating the status of job %s/%s: %v", ns, name, err)
	}
}

func TestJobByName(t *testing.T) {
	for _, tc := range []struct {
		name        string
		completions int32
		done        jobPhase
	}{
		// status.succeeded > 0 is enough, even while more completions are wanted.
		{"one success of two", 2, jobPartlyDone},
		{"complete", 1, jobComplete},
		// A Job with zero completions is Complete without a single success.
		{"complete with zero completions", 0, jobComplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.Namespace(t)
			w := start(t, &kube.Job{Client: newClient(t, kube.Options{}), Ref: spec.JobRef{Namespace: ns, Name: "db-init"}})
			w.blocked(t, "not found")
			// Another job's success does not count.
			createJob(t, ns, "db-init-other", nil, 1)
			setJobStatus(t, ns, "db-init-other", jobComplete)
			w.stillBlocked(t)
			createJob(t, ns, "db-init", nil, tc.completions)
			w.blocked(t, "0 active, 0 succeeded, 0 failed")
			setJobStatus(t, ns, "db-init", jobRunning)
			w.blocked(t, "1 active, 0 succeeded")
			w.stillBlocked(t)
			setJobStatus(t, ns, "db-init", tc.done)
			w.ready(t)
		})
	}
}

// With WaitForFailedJobs a failed Job blocks, says so, and is logged as an error once.
func TestJobFailedKeepsBlocking(t *testing.T) {
	ns := env.Namespace(t)
	var logs logSink
	c := newClient(t, kube.Options{Log: logs.logger(), WaitForFailedJobs: true})
	w := start(t, &kube.Job{Client: c, Ref: spec.JobRef{Namespace: ns, Name: "db-sync"}})
	createJob(t, ns, "db-sync", nil, 1)
	setJobStatus(t, ns, "db-sync", jobRunning)
	w.blocked(t, "1 active")
	setJobStatus(t, ns, "db-sync", jobFailed)
	w.blocked(t, "failed: BackoffLimitExceeded: Job has reached the specified backoff limit")
	// More changes to the failed Job are evaluated again but not logged again.
	for _, v := range []string{"1", "2"} {
		patch := `{"metadata":{"annotations":{"touched":"` + v + `"}}}`
		if _, err := env.Client.BatchV1().Jobs(ns).Patch(context.Background(), "db-sync", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	w.stillBlocked(t)
	if n := logs.count("job failed"); n != 1 {
		t.Errorf("the failure was logged %d times, want once; logs: %v", n, logs.snapshot())
	}
	if n := logs.count(`"job"="` + ns + `/db-sync"`); n != 1 {
		t.Errorf("the failure log does not name the job: %v", logs.snapshot())
	}
	// Re-run as Helm does (deleted and created again): its success ends the wait.
	if err := env.Client.BatchV1().Jobs(ns).Delete(context.Background(), "db-sync",
		metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	createJob(t, ns, "db-sync", nil, 1)
	setJobStatus(t, ns, "db-sync", jobComplete)
	w.ready(t)
}

// By default a failed Job ends the wait with a terminal error naming the Job, its
// failure reason and how to keep waiting instead; by name or among several by labels.
func TestJobFailedEndsWaitByDefault(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ref    func(ns string) spec.JobRef
		labels map[string]string
	}{
		{name: "by name", ref: func(ns string) spec.JobRef { return spec.JobRef{Namespace: ns, Name: "db-sync"} }},
		{name: "by labels", labels: map[string]string{"app": "keystone"},
			ref: func(ns string) spec.JobRef {
				return spec.JobRef{Namespace: ns, Labels: map[string]string{"app": "keystone"}}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.Namespace(t)
			w := start(t, &kube.Job{Client: newClient(t, kube.Options{}), Ref: tc.ref(ns)})
			createJob(t, ns, "db-sync", tc.labels, 1)
			setJobStatus(t, ns, "db-sync", jobRunning)
			w.blocked(t, "1 active")
			if tc.labels != nil { // a succeeded Job beside the failed one changes nothing
				createJob(t, ns, "db-init", tc.labels, 1)
				setJobStatus(t, ns, "db-init", jobComplete)
				w.blocked(t, "db-sync: 1 active")
			}
			setJobStatus(t, ns, "db-sync", jobFailed)
			err := w.fails(t, ns+"/db-sync failed: BackoffLimitExceeded: Job has reached the specified backoff limit")
			if !errors.Is(err, resolve.ErrTerminal) {
				t.Errorf("error %v does not wrap resolve.ErrTerminal", err)
			}
			if !strings.Contains(err.Error(), spec.EnvWaitForFailedJobs+"=true") {
				t.Errorf("error %q does not tell how to keep waiting instead", err)
			}
		})
	}
}

// Every Job matching the labels, and at least one, must succeed.
func TestJobByLabels(t *testing.T) {
	ns := env.Namespace(t)
	sel := map[string]string{"app": "keystone", "stage": "bootstrap"}
	var logs logSink
	w := start(t, &kube.Job{Client: newClient(t, kube.Options{Log: logs.logger(), WaitForFailedJobs: true}), Ref: spec.JobRef{Namespace: ns, Labels: sel}})
	w.blocked(t, "not found")

	// A succeeded job that has only some of the labels does not count.
	createJob(t, ns, "keystone-db-init", map[string]string{"app": "keystone", "stage": "db"}, 1)
	setJobStatus(t, ns, "keystone-db-init", jobComplete)
	w.stillBlocked(t)
	w.blocked(t, "not found")

	createJob(t, ns, "bootstrap-a", sel, 1)
	createJob(t, ns, "bootstrap-b", sel, 1)
	setJobStatus(t, ns, "bootstrap-b", jobRunning)
	w.blocked(t, "bootstrap-b: 1 active")
	setJobStatus(t, ns, "bootstrap-a", jobComplete)
	w.blocked(t, "bootstrap-b: 1 active")
	w.stillBlocked(t)
	if r := w.last().Reason; strings.Contains(r, "bootstrap-a") {
		t.Errorf("reason %q names the job that succeeded", r)
	}

	// A failed job among several is named and logged once, however often the others change.
	createJob(t, ns, "bootstrap-c", sel, 1)
	setJobStatus(t, ns, "bootstrap-c", jobFailed)
	w.blocked(t, "bootstrap-c: failed: BackoffLimitExceeded")
	setJobStatus(t, ns, "bootstrap-b", jobRunningTwoPods)
	w.blocked(t, "bootstrap-b: 2 active")
	if n := logs.count("job failed"); n != 1 {
		t.Errorf("the failure was logged %d times, want once; logs: %v", n, logs.snapshot())
	}
	// Background propagation: no garbage collector runs here to clear the orphan finalizer.
	if err := env.Client.BatchV1().Jobs(ns).Delete(context.Background(), "bootstrap-c",
		metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}

	// With the failed job gone, b's success is all that is missing.
	setJobStatus(t, ns, "bootstrap-b", jobComplete)
	w.ready(t)
}
