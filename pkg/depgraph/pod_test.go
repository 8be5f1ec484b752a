package depgraph

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

func TestPodFromGroup(t *testing.T) {
	owner := func(apiVersion, kind, name string, controller bool) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: "u", Controller: ptr.To(controller)}
	}
	cases := []struct {
		name   string
		labels map[string]string
		owners []metav1.OwnerReference
		want   string
	}{
		{"no owner", nil, nil, "pod ns/p"},
		{"an owner that is not the controller", nil,
			[]metav1.OwnerReference{owner("apps/v1", "StatefulSet", "db", false)}, "pod ns/p"},
		{"a Deployment's ReplicaSet", map[string]string{"pod-template-hash": "5d9f8c7b6"},
			[]metav1.OwnerReference{owner("apps/v1", "ReplicaSet", "api-5d9f8c7b6", true)}, "deployment ns/api"},
		{"a ReplicaSet whose name does not end in the hash", map[string]string{"pod-template-hash": "5d9f8c7b6"},
			[]metav1.OwnerReference{owner("apps/v1", "ReplicaSet", "api", true)}, "replicaset ns/api"},
		{"a ReplicaSet without the hash label", nil,
			[]metav1.OwnerReference{owner("apps/v1", "ReplicaSet", "api-5d9f8c7b6", true)}, "replicaset ns/api-5d9f8c7b6"},
		{"a ReplicaSet named only by the hash", map[string]string{"pod-template-hash": "abc"},
			[]metav1.OwnerReference{owner("apps/v1", "ReplicaSet", "-abc", true)}, "replicaset ns/-abc"},
		{"another API group's ReplicaSet", map[string]string{"pod-template-hash": "abc"},
			[]metav1.OwnerReference{owner("example.com/v1", "ReplicaSet", "api-abc", true)}, "replicaset ns/api-abc"},
		{"a StatefulSet, after an owner that is not the controller", nil,
			[]metav1.OwnerReference{owner("v1", "ConfigMap", "c", false), owner("apps/v1", "StatefulSet", "db", true)}, "statefulset ns/db"},
		{"a Job", map[string]string{"batch.kubernetes.io/job-name": "db-init"},
			[]metav1.OwnerReference{owner("batch/v1", "Job", "db-init", true)}, "job ns/db-init"},
		{"a DaemonSet", nil, []metav1.OwnerReference{owner("apps/v1", "DaemonSet", "agent", true)}, "daemonset ns/agent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Labels: tc.labels, OwnerReferences: tc.owners}}
			if got := PodFrom(pod, nil).Owner; got != tc.want {
				t.Errorf("group = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPodFromDependencies(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Labels: app("p")}}
	deps := &spec.Spec{
		Namespace:  "ns",
		Services:   []spec.ObjectRef{svc("ns", "db")},
		Jobs:       []spec.JobRef{jobNamed("ns", "init")},
		Pods:       []spec.PodRef{podsLabelled("ns", app("x"))},
		DaemonSets: []spec.ObjectRef{svc("ns", "agent")},
		CustomResources: []spec.CustomResourceRef{{APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "c"},
			{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "ns", Name: "db"}},
		CEL: []spec.CELRef{{APIVersion: "example.com/v1", Kind: "Widget", Namespace: "ns", Name: "w", Expression: "true"},
			{APIVersion: "v1", Kind: "Pod", Namespace: "ns", Name: "db-0", Expression: "true"},
			{APIVersion: "apps/v1", Kind: "ReplicaSet", Namespace: "ns", Name: "rs", Expression: "true"}},
		Rollouts:   []spec.WorkloadRef{{Namespace: "ns", Kind: "deployment", Name: "api"}},
		Claims:     []spec.ObjectRef{svc("ns", "data")},
		ConfigMaps: []spec.KeyRef{{Namespace: "ns", Name: "settings"}},
		CRDs:       []string{"widgets.example.com"},
		TCP:        []string{"db:5432"},
	}
	want := Pod{
		Namespace: "ns", Name: "p", Labels: app("p"), Owner: "pod ns/p",
		Services: deps.Services, Jobs: deps.Jobs, Pods: deps.Pods, DaemonSets: deps.DaemonSets, Rollouts: deps.Rollouts,
		// Only the pods and workloads: a ConfigMap, a Widget, a ReplicaSet (its
		// pods are its Deployment's group), claims and CRDs wait for no pod.
		Objects: []Object{{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "ns", Name: "db"},
			{CEL: true, APIVersion: "v1", Kind: "Pod", Namespace: "ns", Name: "db-0"}},
	}
	if got := PodFrom(pod, deps); !reflect.DeepEqual(got, want) {
		t.Errorf("PodFrom:\n got %+v\nwant %+v", got, want)
	}
	if got := PodFrom(pod, nil); got.Services != nil || got.Jobs != nil || got.Pods != nil || got.DaemonSets != nil || got.Rollouts != nil || got.Objects != nil {
		t.Errorf("PodFrom without dependencies has some: %+v", got)
	}
}
