package depgraph

import (
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Short builders for the tables.

func svc(namespace, name string) spec.ObjectRef {
	return spec.ObjectRef{Namespace: namespace, Name: name}
}

func jobNamed(namespace, name string) spec.JobRef {
	return spec.JobRef{Namespace: namespace, Name: name}
}

func jobsLabelled(namespace string, labels map[string]string) spec.JobRef {
	return spec.JobRef{Namespace: namespace, Labels: labels}
}

func podsLabelled(namespace string, labels map[string]string) spec.PodRef {
	return spec.PodRef{Namespace: namespace, Labels: labels}
}

func app(name string) map[string]string { return map[string]string{"app": name} }

// jobPod is a pod of Job name, labelled the way the Job controller labels them.
func jobPod(namespace, name, pod string) Pod {
	return Pod{
		Namespace: namespace, Name: pod, Owner: "job " + namespace + "/" + name,
		Labels: map[string]string{"batch.kubernetes.io/job-name": name, "app": name},
	}
}
