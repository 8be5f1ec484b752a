//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	klabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/commands"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

type oshRunOptions struct {
	name string
	// adopt labels the namespace for adoption.
	adopt bool
	// outage scales the webhook to 0 while keystone's Jobs are created.
	outage bool
}

// oshResult is what one run measured.
type oshResult struct {
	name      string
	converged time.Duration
	pods      int
	withDeps  int
	waited    int
	// Items of the pods' rendered init containers, node-free (judged from the API
	// alone) and same-node, and how many of each the webhook moved into the gate.
	nodeFree, nodeFreeGated, sameNode, sameNodeGated int
	adopted                                          int
	// requests by the openstack ServiceAccounts (the resolvers), by the adopted
	// pods, and by the pods whose resolver had nothing left to read from the API
	// after admission.
	requests, requestsAdopted, requestsNoAPI int
	// gatedPods carried the gate; inTime got the condition within 2 s.
	gatedPods, inTime int
	// maxCondition is the longest a gated pod went without the condition.
	maxCondition time.Duration
	outage       time.Duration
	// during names the pods created while the webhook was down; notAdopted counts
	// those not adopted.
	during     []string
	notAdopted int
	// Items of the pods created while the webhook served, and how many were gated.
	nodeFreeServed, nodeFreeServedGated int
	// sameNodeServed: the same-node items of the pods created while the webhook served.
	sameNodeServed int
	// orderChecked counts the (pod, dependency) pairs whose start order was
	// checked; early those where the application started first.
	orderChecked, early int
	why                 string
	podsTable           string
}

// runOpenstackHelm installs the plan once in a fresh namespace and measures it.
func runOpenstackHelm(t *testing.T, dyn dynamic.Interface, plan *oshPlan, o oshRunOptions) *oshResult {
	ctx := context.Background()
	r := &oshResult{name: o.name}
	freshNamespace(t, o.adopt)
	t.Cleanup(func() {
		// Before the namespace goes: pods, their logs and events, then the gates
		// and conditions and the webhook's and the controller's log tails.
		if t.Failed() {
			dumpNamespace(t, oshNamespace)
			dumpGate(t, oshNamespace)
		}
	})
	auditFrom := fileSize(cluster.AuditLogPath())
	rec := recordPods(t)

	began := time.Now()
	create := func(chart string, objs ...*unstructured.Unstructured) {
		t.Helper()
		for _, obj := range objs {
			gvr, _ := oshResource(obj.GetKind())
			if _, err := dyn.Resource(gvr).Namespace(oshNamespace).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
				t.Fatalf("creating %s %s of chart %s: %v", obj.GetKind(), obj.GetName(), chart, err)
			}
		}
	}
	workloads := func(chart string, keep func(oshWorkload) bool) {
		t.Helper()
		for _, w := range plan.Workloads[chart] {
			if keep(w) {
				create(chart, plan.Objects[w.key()])
			}
		}
	}
	all := func(oshWorkload) bool { return true }
	// Everything but the workloads first, as helm install would in one go: RBAC,
	// Secrets, ConfigMaps, Services.
	for _, chart := range oshCharts() {
		create(chart, plan.Plain[chart]...)
	}
	// The infrastructure.
	for _, chart := range []string{"mariadb", "rabbitmq", "memcached"} {
		workloads(chart, all)
	}
	// keystone: its Jobs, during the outage in the adopted run, then its API.
	isJob := func(w oshWorkload) bool { return w.Kind == "Job" }
	if o.outage {
		down := time.Now()
		restore := webhookDown(t)
		// Creation timestamps are in whole seconds: from the second the outage began.
		from := time.Now().Truncate(time.Second)
		workloads("keystone", isJob)
		var jobs []string
		for _, w := range plan.Workloads["keystone"] {
			if isJob(w) {
				jobs = append(jobs, w.Name)
			}
		}
		oshWait(t, "a pod of each of keystone's Jobs, created during the webhook's outage", 2*time.Minute, func(ctx context.Context) (bool, error) {
			return rec.jobsHavePods(jobs), nil
		})
		r.during = rec.createdBetween(from, time.Now())
		restore()
		r.outage = time.Since(down)
		for _, name := range r.during {
			if !rec.adopted(name) {
				r.notAdopted++
			}
		}
		t.Logf("webhook outage: %s from scaling it to 0 to its injecting again; %d pods created while it was down, %d of them not adopted: %v",
			r.outage.Round(100*time.Millisecond), len(r.during), r.notAdopted, r.during)
	} else {
		workloads("keystone", isJob)
	}
	workloads("keystone", func(w oshWorkload) bool { return !isJob(w) })
	r.why = whyMidInstall(t, "deployment/keystone-api")
	// neutron, with the openvswitch server its agent waits for on the node.
	workloads("neutron", all)
	workloads("openvswitch", all)

	waitConverged(t, plan, 8*time.Minute)
	r.converged = time.Since(began)
	t.Logf("%s: converged %s after the first object was created", o.name, r.converged.Round(100*time.Millisecond))

	pods, err := cs.CoreV1().Pods(oshNamespace).List(ctx, metav1.ListOptions{})
	must(t, err)
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	requests, kinds, err := auditRequests(cluster.AuditLogPath(), auditFrom, "system:serviceaccount:"+oshNamespace+":")
	must(t, err)
	t.Logf("%s: the resolvers' API requests by verb and resource (kube-apiserver's audit log): %s", o.name, kinds)
	measure(t, r, plan, pods.Items, requests, rec, o)
	if o.adopt {
		// Adoption fails open: a pod it does not take over is left as it was and
		// waits in its own init container, which is correct but shows in the
		// share gated. Say which, and the webhook's words for why.
		if left := notAdoptedServed(t, plan, pods.Items, r.during); len(left) > 0 {
			t.Logf("%s: %d pods with node-free dependencies created while the webhook served were not adopted: %v; the webhook's skips:\n%s",
				o.name, len(left), left, webhookSkips(began))
		}
	}
	r.podsTable = oshPodsTable(pods.Items)
	if o.adopt {
		t.Logf("kubectl get pods -n %s, at the end of the adopted run (DEPENDENCIES: the condition %s):\n%s", oshNamespace, api.ConditionType, r.podsTable)
		t.Logf("kubectl entrypoint why -n %s deployment/keystone-api, mid-install:\n%s", oshNamespace, r.why)
	}
	return r
}

// freshNamespace creates oshNamespace, labelled for adoption when adopt, once a
// namespace of that name from an earlier run is gone; it is deleted when the test
// ends, and the next run waits for that.
func freshNamespace(t *testing.T, adopt bool) {
	t.Helper()
	waitNamespaceGone(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: oshNamespace}}
	if adopt {
		ns.Labels = map[string]string{inject.NamespaceLabelAdopt: "true"}
	}
	_, err := cs.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	must(t, err)
	t.Cleanup(func() {
		if err := cs.CoreV1().Namespaces().Delete(context.Background(), oshNamespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", oshNamespace, err)
		}
		waitNamespaceGone(t)
	})
}

// waitNamespaceGone waits until oshNamespace does not exist: its pods' grace
// periods (up to the charts' 30 s and more) run first.
func waitNamespaceGone(t *testing.T) {
	t.Helper()
	oshWait(t, "namespace "+oshNamespace+" to be gone", 3*time.Minute, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, oshNamespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// oshPodRecord is what the watch saw of one pod.
type oshPodRecord struct {
	created time.Time
	labels  map[string]string
	// firstCondition is the condition the controller wrote as first seen: its
	// lastTransitionTime is when it was first written, or later (never earlier).
	firstCondition *corev1.PodCondition
	// firstReady is the lastTransitionTime of the pod's Ready condition when it was
	// first seen True: a pod whose probe failed later keeps its first time.
	firstReady time.Time
	adopted    bool
	job        string
}

// podRecorder watches the namespace's pods from before the first is created, so
// that what is written once and changed soon after (the first condition) is seen.
type podRecorder struct {
	mu   sync.Mutex
	pods map[string]*oshPodRecord
}

func recordPods(t *testing.T) *podRecorder {
	t.Helper()
	rec := &podRecorder{pods: map[string]*oshPodRecord{}}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(oshNamespace))
	inf := factory.Core().V1().Pods().Informer()
	see := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		r := rec.pods[p.Name]
		if r == nil {
			r = &oshPodRecord{created: p.CreationTimestamp.Time, labels: p.Labels, job: p.Labels[batchv1.JobNameLabel]}
			rec.pods[p.Name] = r
		}
		if c := podCondition(p, corev1.PodReady); r.firstReady.IsZero() && c != nil && c.Status == corev1.ConditionTrue {
			r.firstReady = c.LastTransitionTime.Time
		}
		r.adopted = r.adopted || podAdopted(p)
		if r.firstCondition == nil {
			if c := podCondition(p, api.ConditionType); c != nil {
				r.firstCondition = c.DeepCopy()
			}
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: see, UpdateFunc: func(_, obj any) { see(obj) }}); err != nil {
		t.Fatalf("watching the pods of %s: %v", oshNamespace, err)
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	factory.Start(stop)
	if !cache.WaitForCacheSync(stop, inf.HasSynced) {
		t.Fatalf("the pods' informer of %s did not sync", oshNamespace)
	}
	return rec
}

func (rec *podRecorder) jobsHavePods(jobs []string) bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, j := range jobs {
		found := false
		for _, r := range rec.pods {
			found = found || r.job == j
		}
		if !found {
			return false
		}
	}
	return true
}

// createdBetween names the pods created from one time to another, both included.
func (rec *podRecorder) createdBetween(from, to time.Time) []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var names []string
	for name, r := range rec.pods {
		if !r.created.Before(from) && !r.created.After(to) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func (rec *podRecorder) adopted(name string) bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := rec.pods[name]
	return r != nil && r.adopted
}

// readySince is the earliest time a pod sel matches was first seen Ready, of every
// pod seen, gone ones included; zero when none was.
func (rec *podRecorder) readySince(sel klabels.Selector) time.Time {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var since time.Time
	for _, r := range rec.pods {
		if !r.firstReady.IsZero() && sel.Matches(klabels.Set(r.labels)) && (since.IsZero() || r.firstReady.Before(since)) {
			since = r.firstReady
		}
	}
	return since
}

func (rec *podRecorder) get(name string) (oshPodRecord, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := rec.pods[name]
	if r == nil {
		return oshPodRecord{}, false
	}
	return *r, true
}

// oshStatus is the part of the webhook's entrypoint.io/status annotation read here.
type oshStatus struct {
	Mode  string `json:"mode"`
	Gated []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"gated"`
}

// webhookDown scales the webhook's Deployment to 0 and waits until no replica is
// left and an annotated pod is refused (the outage is real); the returned function
// scales it back and waits until it injects again. A failed test restores it too, so
// that the tests after it find a webhook.
func webhookDown(t *testing.T) (restore func()) {
	t.Helper()
	ctx := context.Background()
	list, err := cs.AppsV1().Deployments(webhookNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=webhook"})
	must(t, err)
	if len(list.Items) != 1 {
		t.Fatalf("want one webhook Deployment in %s, have %d", webhookNamespace, len(list.Items))
	}
	name := list.Items[0].Name
	replicas := ptr.Deref(list.Items[0].Spec.Replicas, 1)
	scale := func(n int32) error {
		s, err := cs.AppsV1().Deployments(webhookNamespace).GetScale(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Replicas = n
		_, err = cs.AppsV1().Deployments(webhookNamespace).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
		return err
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if err := scale(replicas); err != nil {
				t.Errorf("scaling the webhook %s back to %d: %v", name, replicas, err)
				return
			}
			waitWebhookInjects(t)
		})
	}
	t.Cleanup(restore)
	must(t, scale(0))
	oshWait(t, "the webhook's pods to be gone", 2*time.Minute, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(webhookNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=webhook"})
		if err != nil {
			return false, err
		}
		return len(pods.Items) == 0, nil
	})
	oshWait(t, "an annotated pod to be refused (the webhook is down)", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := dryRunAnnotatedPod(ctx)
		return err != nil, nil
	})
	return restore
}

// waitWebhookInjects waits until the webhook injects an annotated pod again.
func waitWebhookInjects(t *testing.T) {
	t.Helper()
	oshWait(t, "the webhook to inject again", 2*time.Minute, func(ctx context.Context) (bool, error) {
		p, err := dryRunAnnotatedPod(ctx)
		return err == nil && p.Annotations[inject.AnnotationStatus] != "", nil
	})
}

// dryRunAnnotatedPod asks the API server to create (not store) an annotated pod in
// namespace default: the webhook's ordinary entry (failurePolicy Fail) is called
// for it, whatever state the scenario's namespace is in (a failed test restores the
// webhook before it deletes the namespace, but the namespace may be going).
func dryRunAnnotatedPod(ctx context.Context) (*corev1.Pod, error) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "webhook-probe-", Annotations: map[string]string{"entrypoint.io/dependency-service": "probe"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{container("app", "sleep")}},
	}
	return cs.CoreV1().Pods(metav1.NamespaceDefault).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

// whyMidInstall runs `kubectl entrypoint why` (the plugin's own command, in this
// process) on target once it has a pod, and returns what it printed, with its exit
// status: 1 while something blocks.
func whyMidInstall(t *testing.T, target string) string {
	t.Helper()
	name := strings.TrimPrefix(target, "deployment/")
	oshWait(t, "a pod of "+target, 2*time.Minute, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(oshNamespace).List(ctx, metav1.ListOptions{LabelSelector: "application=keystone,component=api"})
		if err != nil {
			return false, err
		}
		return len(pods.Items) > 0 && strings.HasPrefix(pods.Items[0].Name, name), nil
	})
	var out bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}
	code := commands.Execute(streams, "e2e", []string{"why", "--kubeconfig", cluster.KubeconfigPath(), "-n", oshNamespace, target})
	return fmt.Sprintf("$ kubectl entrypoint why -n %s %s\n%s(exit status %d)", oshNamespace, target, out.String(), code)
}

// notAdoptedServed names the pods with node-free dependencies, created while the
// webhook served, that it did not adopt.
func notAdoptedServed(t *testing.T, plan *oshPlan, pods []corev1.Pod, during []string) []string {
	t.Helper()
	owners, err := replicaSetOwners(context.Background())
	must(t, err)
	var left []string
	for i := range pods {
		p := &pods[i]
		w, ok := plan.workload(workloadOf(p, owners))
		if nodeFree, _ := places(w.Deps); ok && nodeFree > 0 && !podAdopted(p) && !slices.Contains(during, p.Name) {
			left = append(left, p.Name)
		}
	}
	return left
}

// webhookSkips are the lines of the webhook's log since a time that say it left a
// pod of the scenario's namespace as it was, and why.
func webhookSkips(since time.Time) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, err := cs.CoreV1().Pods(webhookNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=webhook"})
	if err != nil {
		return "(listing the webhook's pods: " + err.Error() + ")"
	}
	var lines []string
	for _, p := range pods.Items {
		b, err := cs.CoreV1().Pods(webhookNamespace).GetLogs(p.Name, &corev1.PodLogOptions{SinceTime: &metav1.Time{Time: since}}).DoRaw(ctx)
		if err != nil {
			lines = append(lines, "(the log of "+p.Name+": "+err.Error()+")")
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "skipped") && strings.Contains(l, oshNamespace) {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) == 0 {
		return "(none in the webhook's log)"
	}
	return strings.Join(lines, "\n")
}

// oshWait polls cond every 250 ms until it returns true or timeout passes. Unlike
// eventually it takes an error for "not yet" (an API server busy with 25 pods on
// two cores may time a request out) and names the last one if the time runs out.
func oshWait(t *testing.T, what string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond(ctx)
		if err != nil {
			last = err
		} else if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not after %s (last error: %v)", what, timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitConverged waits until every workload of the plan is available or complete,
// and fails at once on a failed Job. The wait is long (a 2-core machine shared with
// other runs), and on failure says what is still pending.
func waitConverged(t *testing.T, plan *oshPlan, timeout time.Duration) {
	t.Helper()
	var pending []string
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		var err error
		pending, err = notConverged(ctx, plan)
		var failed *jobFailedError
		if errors.As(err, &failed) {
			t.Fatal(err)
		}
		if err == nil && len(pending) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not converged after %s: %s (last error: %v)", timeout, strings.Join(pending, "; "), err)
		case <-time.After(time.Second):
		}
	}
}

type jobFailedError struct{ job, why string }

func (e *jobFailedError) Error() string { return "Job " + e.job + " failed: " + e.why }

// notConverged lists the workloads not yet available (or complete), each with why.
func notConverged(ctx context.Context, plan *oshPlan) ([]string, error) {
	var pending []string
	for _, w := range plan.workloads() {
		var why string
		switch w.Kind {
		case "Deployment":
			d, err := cs.AppsV1().Deployments(oshNamespace).Get(ctx, w.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			want := ptr.Deref(d.Spec.Replicas, 1)
			if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != want || d.Status.AvailableReplicas != want {
				why = fmt.Sprintf("%d of %d available", d.Status.AvailableReplicas, want)
			}
		case "StatefulSet":
			s, err := cs.AppsV1().StatefulSets(oshNamespace).Get(ctx, w.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			want := ptr.Deref(s.Spec.Replicas, 1)
			if s.Status.ObservedGeneration < s.Generation || s.Status.ReadyReplicas != want || s.Status.AvailableReplicas != want {
				why = fmt.Sprintf("%d of %d ready", s.Status.ReadyReplicas, want)
			}
		case "DaemonSet":
			d, err := cs.AppsV1().DaemonSets(oshNamespace).Get(ctx, w.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			if d.Status.ObservedGeneration < d.Generation || d.Status.DesiredNumberScheduled == 0 || d.Status.NumberAvailable != d.Status.DesiredNumberScheduled {
				why = fmt.Sprintf("%d of %d available", d.Status.NumberAvailable, d.Status.DesiredNumberScheduled)
			}
		case "Job":
			j, err := cs.BatchV1().Jobs(oshNamespace).Get(ctx, w.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			switch {
			case jobCondition(j, batchv1.JobFailed):
				c := jobConditionOf(j, batchv1.JobFailed)
				return nil, &jobFailedError{job: w.Name, why: c.Reason + ": " + c.Message}
			case !jobCondition(j, batchv1.JobComplete):
				why = fmt.Sprintf("not complete (%d active, %d failed)", j.Status.Active, j.Status.Failed)
			}
		}
		if why != "" {
			pending = append(pending, w.key()+" "+why)
		}
	}
	return pending, nil
}

func jobConditionOf(j *batchv1.Job, typ batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == typ {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

func jobCondition(j *batchv1.Job, typ batchv1.JobConditionType) bool {
	c := jobConditionOf(j, typ)
	return c != nil && c.Status == corev1.ConditionTrue
}

// workloadOf is the plan's key of the workload a pod belongs to, by its owner
// references (a Deployment's pod through its ReplicaSet).
func workloadOf(p *corev1.Pod, replicaSets map[string]string) string {
	for _, o := range p.OwnerReferences {
		if !ptr.Deref(o.Controller, false) {
			continue
		}
		if o.Kind == "ReplicaSet" {
			return "Deployment/" + replicaSets[o.Name]
		}
		return o.Kind + "/" + o.Name
	}
	return ""
}

func replicaSetOwners(ctx context.Context) (map[string]string, error) {
	list, err := cs.AppsV1().ReplicaSets(oshNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	owners := map[string]string{}
	for _, rs := range list.Items {
		if o := metav1.GetControllerOf(&rs); o != nil && o.Kind == "Deployment" {
			owners[rs.Name] = o.Name
		}
	}
	return owners, nil
}
