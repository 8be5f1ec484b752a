// Package graph is the dependency graph of a namespace's (or a cluster's)
// workloads: each workload, grouped by controller as pkg/depgraph groups pods,
// points at what it waits for, and each of those at the workloads that satisfy
// it. Cycles are pkg/depgraph's; a dependency nothing in the cluster can satisfy
// (a Service whose selector matches no workload, a Job that does not exist and no
// CronJob creates) is marked. It is pure: the caller lists the objects.
package graph

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/why"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/depgraph"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Workload is a group of pods: a controller's (by its pod template) or a pod
// of its own, named as pkg/depgraph names groups ("deployment ns/web").
type Workload struct {
	Name      string
	Namespace string
	// Labels are those of its pods (for a Job's, with the job-name label).
	Labels map[string]string
	// Deps is what its pods wait for; nil when nothing.
	Deps *spec.Spec
	// Source says where Deps was read.
	Source string
	// Problem is why its dependencies could not be read.
	Problem string
}

// Objects are what a graph is made of, as listed from the cluster.
type Objects struct {
	Pods         []corev1.Pod
	Deployments  []appsv1.Deployment
	StatefulSets []appsv1.StatefulSet
	DaemonSets   []appsv1.DaemonSet
	ReplicaSets  []appsv1.ReplicaSet
	Jobs         []batchv1.Job
	CronJobs     []batchv1.CronJob
	Services     []corev1.Service
}

// Workloads are the groups of objects: one per controller with a pod template
// (its dependencies read from the template, as the webhook would inject it or as
// its DEPENDENCY_* environment says), then one per group of pods no listed
// template covers (bare pods, pods of other controllers), read from the pods.
func Workloads(ctx context.Context, o Objects) []Workload {
	var out []Workload
	seen := map[string]bool{}
	add := func(kind string, meta metav1.ObjectMeta, tmpl corev1.PodTemplateSpec, extra map[string]string) {
		w := fromTemplate(ctx, kind+" "+meta.Namespace+"/"+meta.Name, meta, tmpl, extra)
		seen[w.Name] = true
		out = append(out, w)
	}
	for _, d := range o.Deployments {
		add("deployment", d.ObjectMeta, d.Spec.Template, nil)
	}
	for _, s := range o.StatefulSets {
		add("statefulset", s.ObjectMeta, s.Spec.Template, nil)
	}
	for _, d := range o.DaemonSets {
		add("daemonset", d.ObjectMeta, d.Spec.Template, nil)
	}
	for _, j := range o.Jobs {
		add("job", j.ObjectMeta, j.Spec.Template, map[string]string{batchv1.JobNameLabel: j.Name})
	}
	for _, c := range o.CronJobs {
		add("cronjob", c.ObjectMeta, c.Spec.JobTemplate.Spec.Template, nil)
	}
	for _, rs := range o.ReplicaSets {
		if metav1.GetControllerOf(&rs) == nil { // a Deployment's is covered by its template
			add("replicaset", rs.ObjectMeta, rs.Spec.Template, nil)
		}
	}
	for i := range o.Pods {
		pod := &o.Pods[i]
		group := depgraph.PodFrom(pod, nil).Owner
		if seen[group] {
			continue
		}
		seen[group] = true
		w := Workload{Name: group, Namespace: pod.Namespace, Labels: pod.Labels}
		sources, err := why.Sources(pod)
		if err != nil {
			w.Problem = err.Error()
		}
		for _, s := range sources {
			w.Deps = merge(w.Deps, s.Deps)
			w.Source = s.Where + " of pod " + pod.Name
		}
		out = append(out, w)
	}
	return out
}

// fromTemplate reads a workload's dependencies from its pod template: its
// entrypoint.io/ annotations as the webhook injects them, else the DEPENDENCY_*
// environment of its containers.
func fromTemplate(ctx context.Context, name string, meta metav1.ObjectMeta, tmpl corev1.PodTemplateSpec, extra map[string]string) Workload {
	labels := map[string]string{}
	for k, v := range tmpl.Labels {
		labels[k] = v
	}
	for k, v := range extra {
		labels[k] = v
	}
	w := Workload{Name: name, Namespace: meta.Namespace, Labels: labels}
	pod, denied := why.TemplatePod(ctx, meta.Namespace, meta.Name, tmpl)
	if denied != nil {
		w.Problem = denied.Error()
		return w
	}
	sources, err := why.Sources(pod)
	if err != nil {
		w.Problem = err.Error()
	}
	for _, s := range sources {
		w.Deps = merge(w.Deps, s.Deps)
		w.Source = s.Where + ", in its pod template"
	}
	return w
}

// merge is the dependencies of a and b together (a nil is none).
func merge(a, b *spec.Spec) *spec.Spec {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	m := *a
	m.Services = append(append([]spec.ObjectRef(nil), a.Services...), b.Services...)
	m.Jobs = append(append([]spec.JobRef(nil), a.Jobs...), b.Jobs...)
	m.DaemonSets = append(append([]spec.ObjectRef(nil), a.DaemonSets...), b.DaemonSets...)
	m.Pods = append(append([]spec.PodRef(nil), a.Pods...), b.Pods...)
	m.CustomResources = append(append([]spec.CustomResourceRef(nil), a.CustomResources...), b.CustomResources...)
	m.Rollouts = append(append([]spec.WorkloadRef(nil), a.Rollouts...), b.Rollouts...)
	m.Claims = append(append([]spec.ObjectRef(nil), a.Claims...), b.Claims...)
	m.ConfigMaps = append(append([]spec.KeyRef(nil), a.ConfigMaps...), b.ConfigMaps...)
	m.Secrets = append(append([]spec.KeyRef(nil), a.Secrets...), b.Secrets...)
	m.CRDs = append(append([]string(nil), a.CRDs...), b.CRDs...)
	m.CEL = append(append([]spec.CELRef(nil), a.CEL...), b.CEL...)
	return &m
}
