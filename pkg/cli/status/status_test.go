package status

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

func TestBlockers(t *testing.T) {
	for _, tc := range []struct {
		name, message string
		want          []string
		unnamed       int
	}{
		{name: "ready", message: "all 2 dependencies that need no node are ready"},
		{name: "one", message: "waiting for service ns/db: no endpoints", want: []string{"service ns/db"}},
		{name: "several and more", message: "waiting for service ns/db: no endpoints; job ns/m: 0 active, 0 succeeded, 0 failed; and 4 more",
			want: []string{"service ns/db", "job ns/m"}, unnamed: 4},
		{name: "cycle", message: "dependency cycle: deployment ns/a, service ns/b; waiting for service ns/b: no endpoints",
			want: []string{"service ns/b"}},
		{name: "a reason with a semicolon", message: "waiting for cel apps/v1 Deployment ns/api: no such key; see the docs; tcp c:1: refused",
			want: []string{"cel apps/v1 Deployment ns/api", "tcp c:1"}},
		{name: "the same twice", message: "waiting for job ns/m: a; job ns/m: b", want: []string{"job ns/m"}},
		{name: "no node", message: "waiting for the same-node dependencies: none is ready on any node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, unnamed := Blockers(tc.message)
			if !slices.Equal(got, tc.want) || unnamed != tc.unnamed {
				t.Errorf("Blockers(%q) = %q, %d; want %q, %d", tc.message, got, unnamed, tc.want, tc.unnamed)
			}
		})
	}
}

func TestWaiting(t *testing.T) {
	cond := func(s corev1.ConditionStatus) []corev1.PodCondition {
		return []corev1.PodCondition{{Type: api.ConditionType, Status: s}}
	}
	gate := []corev1.PodSchedulingGate{{Name: inject.SchedulingGate}}
	now := metav1.Now()
	for _, tc := range []struct {
		name string
		pod  corev1.Pod
		want bool
	}{
		{name: "not judged", pod: corev1.Pod{}},
		{name: "condition False", pod: corev1.Pod{Status: corev1.PodStatus{Conditions: cond(corev1.ConditionFalse)}}, want: true},
		{name: "condition Unknown", pod: corev1.Pod{Status: corev1.PodStatus{Conditions: cond(corev1.ConditionUnknown)}}, want: true},
		{name: "condition True", pod: corev1.Pod{Status: corev1.PodStatus{Conditions: cond(corev1.ConditionTrue)}}},
		{name: "gated", pod: corev1.Pod{Spec: corev1.PodSpec{SchedulingGates: gate}}, want: true},
		{name: "another gate", pod: corev1.Pod{Spec: corev1.PodSpec{SchedulingGates: []corev1.PodSchedulingGate{{Name: "x"}}}}},
		{name: "finished", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Conditions: cond(corev1.ConditionFalse)}}},
		{name: "being deleted", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Spec: corev1.PodSpec{SchedulingGates: gate}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Waiting(&tc.pod); got != tc.want {
				t.Errorf("Waiting = %v, want %v", got, tc.want)
			}
		})
	}
}
