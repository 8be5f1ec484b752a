package controller

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

func obj(ns, name string, lbls map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetLabels(lbls)
	return u
}

func TestWaitersWakeOnlyThePodsAffected(t *testing.T) {
	w := newWaiters()
	a := types.NamespacedName{Namespace: "ns", Name: "a"}
	b := types.NamespacedName{Namespace: "ns", Name: "b"}
	c := types.NamespacedName{Namespace: "other", Name: "c"}
	w.set(a, []dependency{{gvr: endpointSlicesResource, namespace: "ns", name: "db"}})
	w.set(b, []dependency{
		{gvr: endpointSlicesResource, namespace: "ns", name: "db"},
		{gvr: podsResource, namespace: "ns", selector: labels.SelectorFromSet(labels.Set{"app": "cache"})},
	})
	w.set(c, []dependency{{gvr: jobsResource, namespace: "other", name: "migrate"}, {problem: "not served"}})

	sorted := func(p []types.NamespacedName) []string {
		out := make([]string, len(p))
		for i, x := range p {
			out[i] = x.String()
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		name     string
		gvr      schema.GroupVersionResource
		old, obj *unstructured.Unstructured
		want     []string
	}{
		{"a slice of the service wakes both", endpointSlicesResource, nil, obj("ns", "db-x1", map[string]string{serviceNameLabel: "db"}), []string{"ns/a", "ns/b"}},
		{"a slice of another service wakes none", endpointSlicesResource, nil, obj("ns", "web-x1", map[string]string{serviceNameLabel: "web"}), []string{}},
		{"the same service name in another namespace wakes none", endpointSlicesResource, nil, obj("other", "db-x1", map[string]string{serviceNameLabel: "db"}), []string{}},
		{"a matching pod", podsResource, nil, obj("ns", "cache-0", map[string]string{"app": "cache", "x": "y"}), []string{"ns/b"}},
		{"a pod that stopped matching", podsResource, obj("ns", "cache-0", map[string]string{"app": "cache"}), obj("ns", "cache-0", map[string]string{"app": "other"}), []string{"ns/b"}},
		{"a job by name", jobsResource, nil, obj("other", "migrate", nil), []string{"other/c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sorted(w.of(tc.gvr, tc.old, tc.obj))
			if !slices.Equal(got, tc.want) {
				t.Errorf("woke %v, want %v", got, tc.want)
			}
		})
	}
	if got := sorted(w.ofKind(jobsResource)); !slices.Equal(got, []string{"other/c"}) {
		t.Errorf("waiting for jobs: %v", got)
	}
	w.forget(b)
	if got := sorted(w.of(podsResource, nil, obj("ns", "cache-0", map[string]string{"app": "cache"}))); len(got) != 0 {
		t.Errorf("a forgotten pod's selector still wakes %v", got)
	}
	if len(w.selectors) != 0 {
		t.Errorf("selectors left after the only pod using them was forgotten: %v", w.selectors)
	}
	w.forget(a)
	w.forget(c)
	if len(w.byKey) != 0 || len(w.ofPod) != 0 {
		t.Errorf("index not empty after every pod was forgotten: %v %v", w.byKey, w.ofPod)
	}
}

// Whatever the annotations, the condition's message stays bounded.
func TestMessagesAreBounded(t *testing.T) {
	var many []string
	for i := range 100 {
		many = append(many, fmt.Sprintf("service ns/s%d: no endpoints", i))
	}
	got := joinBlockers(many)
	if !strings.HasSuffix(got, "; and 95 more") || strings.Count(got, "no endpoints") != maxBlockersShown {
		t.Errorf("100 blockers: %q", got)
	}
	huge := joinBlockers([]string{strings.Repeat("é", 10000)})
	if len(huge) > maxConditionBytes || !utf8.ValidString(huge) || !strings.HasSuffix(huge, "...") {
		t.Errorf("a 20 kB blocker: %d bytes, valid UTF-8 %v", len(huge), utf8.ValidString(huge))
	}
	if got := readyMessage(decisionInput{verdicts: make([]verdict, 1), deps: &spec.Spec{Sockets: []string{"/run/x.sock"}}}, nil); got != "the dependency that needs no node is ready; the resolver in the pod checks socket /run/x.sock" {
		t.Errorf("readyMessage: %q", got)
	}
	if got := readyMessage(decisionInput{deps: &spec.Spec{}}, nil); got != "no dependency that needs no node" {
		t.Errorf("readyMessage without dependencies: %q", got)
	}
}

// The cached pod keeps what the controller reads, and its dependencies read from
// it are those of the full pod.
func TestSlimPodKeepsWhatIsRead(t *testing.T) {
	full := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", ResourceVersion: "7",
			Labels: map[string]string{"app": "a"}, Annotations: map[string]string{envAnnotation: `{"DEPENDENCY_SERVICE":"db"}`},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "a-1"}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: corev1.PodSpec{
			NodeName:        "n1",
			SchedulingGates: []corev1.PodSchedulingGate{{Name: "entrypoint.io/dependencies"}},
			InitContainers:  []corev1.Container{{Name: "install", Image: "i", Command: []string{"install"}}},
			Containers: []corev1.Container{{Name: "app", Image: "app", Command: []string{"/r"},
				Env: []corev1.EnvVar{{Name: "DEPENDENCY_JOBS", Value: "migrate"}}}},
			Volumes: []corev1.Volume{{Name: "v"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending,
			Conditions:        []corev1.PodCondition{{Type: ConditionType, Status: corev1.ConditionFalse}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app"}}},
	}
	out, err := slimPod(full)
	if err != nil {
		t.Fatal(err)
	}
	slim := out.(*corev1.Pod)
	if slim.UID != "u1" || slim.ResourceVersion != "7" || slim.Labels["app"] != "a" || len(slim.OwnerReferences) != 1 || slim.Annotations[envAnnotation] == "" {
		t.Errorf("metadata not kept: %+v", slim.ObjectMeta)
	}
	if slim.ManagedFields != nil || slim.Spec.Volumes != nil || slim.Status.ContainerStatuses != nil || slim.Spec.Containers[0].Image != "" {
		t.Errorf("what the controller never reads was kept: %+v", slim)
	}
	if slim.Spec.NodeName != "n1" || gateIndex(slim) != 0 || findCondition(slim) == nil || slim.Status.Phase != corev1.PodPending ||
		slim.Spec.Containers[0].Env[0].Value != "migrate" || slim.Spec.InitContainers[0].Name != "install" {
		t.Errorf("what the controller reads was dropped: %+v", slim)
	}
	if full.ManagedFields == nil || full.Spec.Containers[0].Image != "app" {
		t.Error("the transform changed the object it was given")
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: full}
	if got, _ := slimPod(tomb); got != any(tomb) {
		t.Errorf("a tombstone was changed: %v", got)
	}
}

// A gated pod with optional-after comes back when its time is up, or sooner.
func TestOptionalRequeue(t *testing.T) {
	for _, tc := range []struct {
		name         string
		before, wait time.Duration
		want         time.Duration
	}{
		{"no requeue yet", 0, 3 * time.Minute, 3 * time.Minute},
		{"pending recheck sooner", pendingRecheck, 3 * time.Minute, pendingRecheck},
		{"optional-after sooner", pendingRecheck, 2 * time.Second, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := reconcile.Result{RequeueAfter: tc.before}
			optionalRequeue(&r, tc.wait)
			if r.RequeueAfter != tc.want {
				t.Errorf("RequeueAfter %s, want %s", r.RequeueAfter, tc.want)
			}
		})
	}
}
