package kube

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

var jobsResource = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}

// Job is ready when the named Job, or every Job matching the labels (at least one),
// has succeeded at least once. A failed Job ends the wait (a terminal error);
// with WaitForFailedJobs it is logged as an error once and waited out instead.
type Job struct {
	Client *Client
	Ref    spec.JobRef
}

func (j *Job) String() string {
	if j.Ref.Name != "" {
		return "job " + j.Ref.Namespace + "/" + j.Ref.Name
	}
	return "jobs in " + j.Ref.Namespace + " with labels " + labels.SelectorFromSet(j.Ref.Labels).String()
}

// Wait waits until the Job dependency is ready, reporting each change of its status.
func (j *Job) Wait(ctx context.Context, report func(resolve.Status)) error {
	r := reporter{report: report}
	src := source{resource: jobsResource, namespace: j.Ref.Namespace}
	if j.Ref.Name != "" {
		src.fieldSelector = "metadata.name=" + j.Ref.Name
	} else {
		src.labelSelector = labels.SelectorFromSet(j.Ref.Labels).String()
	}
	failedLogged := map[string]bool{}
	return j.Client.follow(ctx, []source{src}, func(snaps []snapshot) (bool, error) {
		snap := snaps[0]
		if snap.err != nil {
			r.set(resolve.Status{Reason: "cannot list jobs: " + shortError(snap.err)})
			return false, nil
		}
		st, failed := JobsReadiness(snap.objects)
		for _, f := range failed {
			if !j.Client.opts.WaitForFailedJobs {
				return false, resolve.Terminal("job %s/%s failed: %s (to keep waiting for a re-run instead, set %s=true or --wait-for-failed-jobs)",
					f.Job.GetNamespace(), f.Job.GetName(), f.Reason, spec.EnvWaitForFailedJobs)
			}
			if !failedLogged[f.Job.GetName()] {
				failedLogged[f.Job.GetName()] = true
				j.Client.opts.Log.Error(nil, "job failed; waiting in case it is re-run ("+spec.EnvWaitForFailedJobs+" is set)",
					"job", f.Job.GetNamespace()+"/"+f.Job.GetName(), "reason", f.Reason)
			}
		}
		r.set(st)
		return st.Ready, nil
	})
}

// FailedJob is a Job that failed, and why.
type FailedJob struct {
	Job    *unstructured.Unstructured
	Reason string
}

// JobsReadiness is the Job rule: ready when every Job (at least one) succeeded at
// least once; a failed one is not ready, and is also returned so the caller can
// stop (the default) or tell. The resolver and the dependency controller both
// decide with it.
func JobsReadiness(jobs []*unstructured.Unstructured) (resolve.Status, []FailedJob) {
	if len(jobs) == 0 {
		return resolve.Status{Reason: "not found"}, nil
	}
	var waiting []string
	var failedJobs []FailedJob
	for _, job := range jobs {
		done, failed, state := jobState(job)
		if done {
			continue
		}
		if failed != "" {
			failedJobs = append(failedJobs, FailedJob{Job: job, Reason: failed})
			state = "failed: " + failed
		}
		waiting = append(waiting, prefixName(job, len(jobs) > 1)+state)
	}
	if len(waiting) == 0 {
		return resolve.Status{Ready: true}, nil
	}
	return resolve.Status{Reason: strings.Join(waiting, "; ")}, failedJobs
}

// jobState tells whether the Job succeeded at least once, and if not, whether it
// failed (with the reason) and what it is doing.
func jobState(job *unstructured.Unstructured) (succeeded bool, failed string, state string) {
	if nestedInt(job.Object, "status", "succeeded") > 0 {
		return true, "", ""
	}
	if st, _, _ := condition(job.Object, "Complete"); st == "True" {
		return true, "", ""
	}
	if st, reason, message := condition(job.Object, "Failed"); st == "True" {
		return false, strings.TrimSuffix(reason+": "+message, ": "), ""
	}
	return false, "", fmt.Sprintf("%d active, 0 succeeded, %d failed",
		nestedInt(job.Object, "status", "active"), nestedInt(job.Object, "status", "failed"))
}

func prefixName(obj *unstructured.Unstructured, yes bool) string {
	if !yes {
		return ""
	}
	return obj.GetName() + ": "
}
