package controller

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
)

// workloadResource is the resource of each kind a test creates.
func workloadResource(kind string) schema.GroupVersionResource {
	switch kind {
	case "Job", "CronJob":
		return schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: strings.ToLower(kind) + "s"}
	}
	return schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: strings.ToLower(kind) + "s"}
}

// workloadObject is a minimal valid object of kind, labelled app=name, owned
// (as its controller) by owner when set.
func workloadObject(kind, name string, owner *metav1.OwnerReference) *unstructured.Unstructured {
	labels := map[string]any{"app": name}
	template := map[string]any{
		"metadata": map[string]any{"labels": labels},
		"spec": map[string]any{"restartPolicy": "Always",
			"containers": []any{map[string]any{"name": "app", "image": "app"}}},
	}
	spec := map[string]any{"selector": map[string]any{"matchLabels": labels}, "template": template}
	switch kind {
	case "Job":
		template["spec"].(map[string]any)["restartPolicy"] = "Never"
		spec = map[string]any{"template": template}
	case "CronJob":
		template["spec"].(map[string]any)["restartPolicy"] = "Never"
		spec = map[string]any{"schedule": "0 0 1 1 *", "jobTemplate": map[string]any{"spec": map[string]any{"template": template}}}
	case "StatefulSet":
		spec["serviceName"] = name
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": ownerAPIVersion(kind), "kind": kind,
		"metadata": map[string]any{"name": name}, "spec": spec,
	}}
	if owner != nil {
		u.SetOwnerReferences([]metav1.OwnerReference{*owner})
	}
	return u
}

// createWorkload creates the workload top of kind and, for a Deployment or a
// CronJob, the ReplicaSet or Job below it; it returns the reference its pods
// carry.
func createWorkload(t *testing.T, dyn dynamic.Interface, ns, kind, name string) metav1.OwnerReference {
	t.Helper()
	create := func(u *unstructured.Unstructured) metav1.OwnerReference {
		out, err := dyn.Resource(workloadResource(u.GetKind())).Namespace(ns).Create(context.Background(), u, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		return metav1.OwnerReference{APIVersion: out.GetAPIVersion(), Kind: out.GetKind(), Name: out.GetName(), UID: out.GetUID(), Controller: ptr.To(true)}
	}
	ref := create(workloadObject(kind, name, nil))
	switch kind {
	case "Deployment":
		return create(workloadObject("ReplicaSet", name+"-7c9d8", &ref))
	case "CronJob":
		return create(workloadObject("Job", name+"-29000000", &ref))
	}
	return ref
}

// ownedPod is a managed pod of the workload that ref names.
func ownedPod(t *testing.T, ns, name string, ref metav1.OwnerReference, env map[string]string) *corev1.Pod {
	pod := managedPod(t, ns, name, env)
	pod.OwnerReferences = []metav1.OwnerReference{ref}
	return pod
}

// waitWaiting polls the workload's annotation until ok holds.
func waitWaiting(t *testing.T, dyn dynamic.Interface, ns, kind, name, what string, ok func(value string, set bool) bool) *unstructured.Unstructured {
	t.Helper()
	deadline := time.Now().Add(settle)
	var last string
	for time.Now().Before(deadline) {
		u, err := dyn.Resource(workloadResource(kind)).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			value, set := u.GetAnnotations()[api.AnnotationWaiting]
			if ok(value, set) {
				return u
			}
			last = value
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s %s/%s: %s did not happen within %s; %s=%q", kind, ns, name, what, settle, api.AnnotationWaiting, last)
	return nil
}

func is(want string) func(string, bool) bool {
	return func(v string, set bool) bool { return set && v == want }
}

func unset(_ string, set bool) bool { return !set }

func TestOwnerSummary(t *testing.T) {
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	startControllerWith(t, env.Config, nil, func(o *Options) { o.OwnerWriteInterval = 100 * time.Millisecond })
	for _, kind := range []string{"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"} {
		t.Run(kind, func(t *testing.T) {
			ns := env.Namespace(t)
			ctx := context.Background()
			name := strings.ToLower(kind)
			ref := createWorkload(t, dyn, ns, kind, name)
			createPod(t, ownedPod(t, ns, name+"-a", ref, map[string]string{"DEPENDENCY_SERVICE": "db", "DEPENDENCY_JOBS": "migrate"}))
			createPod(t, ownedPod(t, ns, name+"-b", ref, map[string]string{"DEPENDENCY_SERVICE": "db"}))
			createPod(t, ownedPod(t, ns, name+"-c", ref, map[string]string{"DEPENDENCY_SOCKET": "/run/x.sock"}))

			u := waitWaiting(t, dyn, ns, kind, name, "the summary of its pods",
				is("Waiting: 2 of 3 pods wait for service "+ns+"/db; job "+ns+"/migrate"))
			spec := u.Object["spec"]

			if err := env.Client.CoreV1().Pods(ns).Delete(ctx, name+"-a", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
				t.Fatal(err)
			}
			waitWaiting(t, dyn, ns, kind, name, "the deleted pod left out", is("Waiting: 1 of 2 pods wait for service "+ns+"/db"))
			readySlice(t, ns, "db")
			u = waitWaiting(t, dyn, ns, kind, name, "the annotation removed", unset)
			if !equality.Semantic.DeepEqual(u.Object["spec"], spec) {
				t.Errorf("the spec changed: %v, was %v", u.Object["spec"], spec)
			}
			deadline := time.Now().Add(settle)
			for {
				reasons := eventReasons(t, ns, name)
				if slices.Contains(reasons, "DependenciesWaiting") && slices.Contains(reasons, "DependenciesReady") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("events about %s %s: %v; want DependenciesWaiting and DependenciesReady", kind, name, reasons)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// TestOwnerSummaryCycle: the most severe reason of the waiting pods leads.
func TestOwnerSummaryCycle(t *testing.T) {
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	startControllerWith(t, env.Config, fixedCycles{ns + "/api-a": "deployment " + ns + "/api waits for service " + ns + "/db, served by deployment " + ns + "/api"},
		func(o *Options) { o.OwnerWriteInterval = 100 * time.Millisecond })
	ref := createWorkload(t, dyn, ns, "Deployment", "api")
	createPod(t, ownedPod(t, ns, "api-a", ref, map[string]string{"DEPENDENCY_SERVICE": "db"}))
	createPod(t, ownedPod(t, ns, "api-b", ref, map[string]string{"DEPENDENCY_SERVICE": "db"}))
	waitWaiting(t, dyn, ns, "Deployment", "api", "reason Cycle", is("Cycle: 2 of 2 pods wait for service "+ns+"/db"))
}

// TestOwnerWritesCoalesced: however many of its pods change, a workload's
// annotation is written at most once per interval, and the last state lands.
func TestOwnerWritesCoalesced(t *testing.T) {
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	startController(t, nil) // the default interval, 10 s
	ns := env.Namespace(t)
	ref := createWorkload(t, dyn, ns, "Deployment", "web")
	w, err := dyn.Resource(workloadResource("Deployment")).Namespace(ns).Watch(context.Background(),
		metav1.ListOptions{FieldSelector: "metadata.name=web"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// Three pods, then, right after the first write, three more: each of
	// their changes wakes the workload, and the summary changes again well
	// within the interval.
	const pods = 6
	for i := range pods / 2 {
		createPod(t, ownedPod(t, ns, "web-"+string(rune('a'+i)), ref, map[string]string{"DEPENDENCY_SERVICE": "db"}))
	}
	want := "Waiting: 6 of 6 pods wait for service " + ns + "/db"
	var writes []string
	var first, last time.Time
	deadline := time.After(3 * DefaultOwnerWriteInterval)
	for len(writes) == 0 || writes[len(writes)-1] != want {
		select {
		case ev := <-w.ResultChan():
			if ev.Type != watch.Modified {
				continue
			}
			u := ev.Object.(*unstructured.Unstructured)
			writes = append(writes, u.GetAnnotations()[api.AnnotationWaiting])
			last = time.Now()
			if first.IsZero() {
				first = last
				for i := pods / 2; i < pods; i++ {
					createPod(t, ownedPod(t, ns, "web-"+string(rune('a'+i)), ref, map[string]string{"DEPENDENCY_SERVICE": "db"}))
				}
			}
		case <-deadline:
			t.Fatalf("the last state did not land: writes %q", writes)
		}
	}
	// Each write is at least one interval after the one before: n writes
	// take at least (n-1) intervals, as the controller times them; the test
	// times their watch events, which arrive a few milliseconds late or early,
	// so it gives them a quarter of a second.
	if allowed := 1 + int((last.Sub(first)+250*time.Millisecond)/DefaultOwnerWriteInterval); len(writes) > allowed {
		t.Errorf("%d writes in %s, at most %d allowed: %q", len(writes), last.Sub(first), allowed, writes)
	}
	t.Logf("%d pods' changes, %d writes of the annotation: %q", pods, len(writes), writes)
}

func TestSummarize(t *testing.T) {
	long := strings.Repeat("x", 2000)
	many := make([]string, 100)
	for i := range many {
		many[i] = "service ns/db-" + strings.Repeat("y", 20) + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	for _, tc := range []struct {
		name  string
		pods  int
		waits []podWait
		want  string
	}{
		{"none waits", 3, nil, ""},
		{"shared blockers first", 3, []podWait{
			{api.ReasonWaiting, []string{"service ns/db", "job ns/migrate"}},
			{api.ReasonWaiting, []string{"service ns/db"}},
		}, "Waiting: 2 of 3 pods wait for service ns/db; job ns/migrate"},
		{"most severe reason", 4, []podWait{
			{api.ReasonWaiting, []string{"service ns/db"}},
			{api.ReasonNoReadyNode, []string{"daemonset ns/ovs"}},
			{api.ReasonCycle, []string{"service ns/db"}},
		}, "Cycle: 3 of 4 pods wait for service ns/db; daemonset ns/ovs"},
		{"no names", 2, []podWait{{api.ReasonTooManyDependencies, nil}}, "TooManyDependencies: 1 of 2 pods wait"},
		{"unknown reason ranks as waiting", 1, []podWait{{"Other", []string{"a"}}}, "Waiting: 1 of 1 pods wait for a"},
		{"control characters escaped", 1, []podWait{{api.ReasonWaiting, []string{"service ns/a\nb"}}}, `Waiting: 1 of 1 pods wait for service ns/a\nb`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := summarize(tc.pods, tc.waits); got != tc.want {
				t.Errorf("summarize = %q, want %q", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name     string
		blockers []string
		suffix   string
	}{
		{"one name past the bound is cut", []string{long}, "..."},
		{"names past the bound are counted", many, " more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := summarize(1, []podWait{{api.ReasonWaiting, tc.blockers}})
			if len(got) > api.MaxWaitingBytes || !strings.HasSuffix(got, tc.suffix) || !strings.HasPrefix(got, "Waiting: 1 of 1 pods wait for ") {
				t.Errorf("summarize = %q (%d bytes), want at most %d bytes ending in %q", got, len(got), api.MaxWaitingBytes, tc.suffix)
			}
		})
	}
}

func TestBlockersOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason string
		msg    string
		want   []string
	}{
		{"waiting", api.ReasonWaiting, "waiting for service ns/db: no endpoints; job ns/m: 1 active, 0 succeeded, 0 failed", []string{"service ns/db", "job ns/m"}},
		{"counted rest and cut end name none", api.ReasonWaiting, "waiting for service ns/a: no endpoints; and 3 more", []string{"service ns/a"}},
		{"cycle", api.ReasonCycle, "dependency cycle: deployment ns/api waits for service ns/db, served by statefulset ns/db, which waits for service ns/api, served by deployment ns/api; waiting for service ns/db: no endpoints", []string{"service ns/db"}},
		{"no ready node", api.ReasonNoReadyNode, "no node where every same-node dependency is ready (daemonset net/ovs: ready on node n1; pods in net with labels app=l on this node: ready on no node)", []string{"daemonset net/ovs", "pods in net with labels app=l on this node"}},
		{"no ready node, affinity", api.ReasonNoReadyNode, "the same-node dependencies are all ready on node n1, none of which the pod's own required node affinity admits by name", nil},
		{"too many", api.ReasonTooManyDependencies, "not checking the dependencies: 300 items (at most 256, 64 of them selecting by labels); split them", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := blockersOf(&corev1.PodCondition{Reason: tc.reason, Message: tc.msg})
			if !slices.Equal(got, tc.want) {
				t.Errorf("blockersOf = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestOwnerSummaryAfterRestart: nothing of the summary is kept but in memory;
// a new controller (a restart, a new leader) computes it again from the pods
// and corrects what the workload carries.
func TestOwnerSummaryAfterRestart(t *testing.T) {
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	ctx := context.Background()
	ref := createWorkload(t, dyn, ns, "StatefulSet", "db")
	createPod(t, ownedPod(t, ns, "db-0", ref, map[string]string{"DEPENDENCY_SERVICE": "seed"}))
	createPod(t, ownedPod(t, ns, "db-1", ref, map[string]string{"DEPENDENCY_SERVICE": "seed"}))
	t.Run("first controller", func(t *testing.T) {
		startControllerWith(t, env.Config, nil, func(o *Options) { o.OwnerWriteInterval = 100 * time.Millisecond })
		waitWaiting(t, dyn, ns, "StatefulSet", "db", "the summary", is("Waiting: 2 of 2 pods wait for service "+ns+"/seed"))
	}) // its manager stops here
	if err := env.Client.CoreV1().Pods(ns).Delete(ctx, "db-1", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	startControllerWith(t, env.Config, nil, func(o *Options) { o.OwnerWriteInterval = 100 * time.Millisecond })
	waitWaiting(t, dyn, ns, "StatefulSet", "db", "the summary recomputed", is("Waiting: 1 of 1 pods wait for service "+ns+"/seed"))
	readySlice(t, ns, "seed")
	waitWaiting(t, dyn, ns, "StatefulSet", "db", "the annotation removed", unset)
}
