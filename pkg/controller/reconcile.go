package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck/admit"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/local"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Reconciler keeps the condition of managed pods and releases gated ones.
type Reconciler struct {
	opts     Options
	client   client.Client
	mapper   meta.RESTMapper
	recorder events.EventRecorder
	kinds    *kindInformers
	waiters  *waiters
	states   *podStates
	// programs are the compiled CEL expressions of the pods' dependencies.
	programs admit.Cache
	// jobs are the completions of Jobs seen succeed, which may be deleted since.
	jobs *jobMemory

	mu    sync.Mutex
	queue workqueue.TypedRateLimitingInterface[reconcile.Request]
	// dirty is when a dependency change first woke each pod since its last
	// reconcile: the start of the release latency.
	dirty map[types.NamespacedName]time.Time
	// written is the last condition written to each pod, so that a reconcile
	// that reads the pod from a cache not yet updated does not write it (and
	// record its Event) again.
	written map[types.NamespacedName]writtenCondition
}

// writtenCondition is a condition as written, and the pod's version after it.
type writtenCondition struct {
	uid                     types.UID
	resourceVersion         string
	status, reason, message string
}

// SetupWithManager builds the controller and adds it to mgr: leader-elected, pods
// from mgr's cache (which CacheByObject limits to the managed pods), dependency
// kinds from informers of its own.
func SetupWithManager(mgr ctrl.Manager, opts Options) (*Reconciler, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RememberedJobGrace <= 0 {
		opts.RememberedJobGrace = DefaultRememberedJobGrace
	}
	r := &Reconciler{
		opts:     opts,
		client:   mgr.GetClient(),
		mapper:   mgr.GetRESTMapper(),
		recorder: mgr.GetEventRecorder(Name),
		waiters:  newWaiters(),
		states:   newPodStates(opts.Now),
		dirty:    map[types.NamespacedName]time.Time{},
		written:  map[types.NamespacedName]writtenCondition{},
		jobs:     newJobMemory(MaxRememberedJobs, opts.Now),
	}
	r.kinds = &kindInformers{
		client: opts.Dynamic, log: opts.Log, kinds: map[schema.GroupVersionResource]*kindInformer{},
		changed: func(gvr schema.GroupVersionResource, old, obj *unstructured.Unstructured) {
			if gvr == jobsResource {
				// Before the wake, so that the pods woken find it remembered.
				r.jobs.observe(obj)
			}
			r.wake(r.waiters.of(gvr, old, obj))
		},
		synced: func(gvr schema.GroupVersionResource) { r.wake(r.waiters.ofKind(gvr)) },
	}
	if n, ok := opts.Cycles.(interface {
		OnChange(func([]types.NamespacedName))
	}); ok {
		n.OnChange(r.wake)
	}
	if opts.Metrics != nil {
		// The pods' counts are the Metrics', registered once per process.
		r.states = opts.Metrics.states
		r.states.reset()
	}
	err := ctrl.NewControllerManagedBy(mgr).
		Named(Name).
		For(&corev1.Pod{}).
		WatchesRawSource(dependencySource{r}).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.Workers}).
		WithLogConstructor(func(req *reconcile.Request) logr.Logger {
			if req == nil {
				return opts.Log
			}
			return opts.Log.WithValues("pod", req.String())
		}).
		Complete(r)
	if err != nil {
		return nil, fmt.Errorf("setting up the dependency controller: %w", err)
	}
	return r, nil
}

// dependencySource hands the controller's queue to the reconciler, so that changes
// of what pods wait for, seen by its own informers, wake those pods.
type dependencySource struct{ r *Reconciler }

func (s dependencySource) Start(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	s.r.mu.Lock()
	s.r.queue = q
	s.r.mu.Unlock()
	s.r.kinds.start(ctx)
	return nil
}

// Wake queues the pods for a reconcile, e.g. when their cycle changed. It does
// nothing where the controller does not run (not the leader).
func (r *Reconciler) Wake(pods ...types.NamespacedName) { r.wake(pods) }

func (r *Reconciler) wake(pods []types.NamespacedName) {
	if len(pods) == 0 {
		return
	}
	now := r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.queue == nil {
		return
	}
	pq, prioritized := r.queue.(priorityqueue.PriorityQueue[reconcile.Request])
	for _, p := range pods {
		if _, ok := r.dirty[p]; !ok {
			r.dirty[p] = now
		}
		if prioritized {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(wakePriority)}, reconcile.Request{NamespacedName: p})
		} else {
			r.queue.Add(reconcile.Request{NamespacedName: p})
		}
	}
}

// wakePriority puts the pods woken by a change of what they wait for ahead of
// those woken by their own updates: when a Service becomes ready for a thousand
// gated pods, every gate goes before the conditions of the pods already
// released (each release's update wakes its pod at the default priority 0).
const wakePriority = 10

func (r *Reconciler) takeDirty(p types.NamespacedName) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.dirty[p]
	delete(r.dirty, p)
	return t, ok
}

// pendingRecheck is how soon a pod is looked at again while a kind it waits for
// is not watched yet; the informer's sync wakes it sooner.
const pendingRecheck = 10 * time.Second

// Reconcile brings one pod's condition and gate up to date.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (result reconcile.Result, err error) {
	key := req.NamespacedName
	wokeAt, woke := r.takeDirty(key)
	var pod corev1.Pod
	if err := r.client.Get(ctx, key, &pod); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(key)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		r.forget(key)
		return reconcile.Result{}, nil
	}
	deps, gated, err := r.opts.Dependencies(&pod)
	if err != nil {
		// Labelled by hand, or injected by a webhook of another version.
		ctrl.LoggerFrom(ctx).V(1).Info("not checking the pod's dependencies", "reason", err.Error())
		r.forget(key)
		return reconcile.Result{}, nil
	}
	gateAt := gateIndex(&pod)
	current := findCondition(&pod)
	if gateAt < 0 && current != nil && current.Status == corev1.ConditionTrue && podIsReady(&pod) {
		// Released and running: nothing left to explain.
		r.forget(key)
		return reconcile.Result{}, nil
	}
	list := nodeFree(deps, r.mapper, r.opts.SecretDependencies, &r.programs)
	r.waiters.set(key, list)

	var blockers, notes []string
	pending := false
	var recheck time.Duration // when a remembered Job's grace runs out
	for _, d := range list {
		if d.problem != "" {
			blockers = append(blockers, blocker(d.text, d.problem))
			continue
		}
		ki := r.kinds.get(d.gvr)
		if ki == nil {
			pending = true
			continue
		}
		synced, problem := ki.state()
		switch {
		case synced:
			st, v := r.judge(d, ki, &pod)
			switch {
			case v != nil && v.ready:
				notes = append(notes, v.note)
			case !st.Ready:
				blockers = append(blockers, blocker(d.text, st.Reason))
			}
			if v != nil && v.recheck > 0 && (recheck == 0 || v.recheck < recheck) {
				recheck = v.recheck
			}
		case problem != "":
			blockers = append(blockers, blocker(d.text, problem))
		default:
			pending = true
		}
	}
	if pending && len(blockers) == 0 {
		// Not all kinds are watched yet; their sync wakes the pod.
		return reconcile.Result{RequeueAfter: pendingRecheck}, nil
	}

	if recheck > 0 {
		defer func() {
			if err == nil {
				optionalRequeue(&result, recheck)
			}
		}()
	}
	want := corev1.PodCondition{Type: ConditionType, Status: corev1.ConditionTrue, Reason: ReasonReady,
		Message: readyMessage(len(list), nodeLocal(deps, r.opts.SecretDependencies), notes)}
	if len(blockers) > 0 {
		want.Status, want.Reason, want.Message = corev1.ConditionFalse, ReasonWaiting, "waiting for "+joinBlockers(blockers)
		if r.opts.Cycles != nil {
			if cycle, ok := r.opts.Cycles.CycleOf(key.Namespace, key.Name); ok {
				want.Reason, want.Message = ReasonCycle, "dependency cycle: "+cycle+"; waiting for "+joinBlockers(blockers)
			}
		}
	}

	if gateAt >= 0 && len(blockers) == 0 && !pending {
		if err := r.removeGate(ctx, &pod); err != nil {
			return reconcile.Result{}, err
		}
		now := r.opts.Now()
		if r.opts.Metrics != nil {
			if woke {
				r.opts.Metrics.ReleaseLatency.Observe(now.Sub(wokeAt).Seconds())
			}
			r.opts.Metrics.GatedDuration.Observe(now.Sub(pod.CreationTimestamp.Time).Seconds())
		}
		r.states.set(key, ReasonReady, false, pod.CreationTimestamp.Time)
		// The condition comes with the reconcile that the pod's update wakes:
		// when a thousand pods are released at once, every gate goes first.
		return reconcile.Result{}, nil
	}
	if gateAt >= 0 && deps.OptionalAfter > 0 {
		// The dependencies are optional after this long from the pod's creation:
		// then the gate goes whatever still blocks, with a Warning.
		wait := pod.CreationTimestamp.Add(deps.OptionalAfter).Sub(r.opts.Now())
		if wait <= 0 {
			if err := r.removeGate(ctx, &pod); err != nil {
				return reconcile.Result{}, err
			}
			// Here something blocks: with nothing blocking the gate went above.
			still := joinBlockers(blockers)
			ctrl.LoggerFrom(ctx).Info("removed the scheduling gate without the dependencies still blocking: they are optional after this long",
				"optionalAfter", deps.OptionalAfter.String(), "blocking", still)
			r.recorder.Eventf(&pod, nil, corev1.EventTypeWarning, "StartedWithoutDependencies", "CheckDependencies", "%s",
				truncate("removed scheduling gate "+inject.SchedulingGate+" after "+deps.OptionalAfter.String()+
					" (entrypoint.io/optional-after) without "+still, maxEventNote))
			r.states.set(key, want.Reason, false, pod.CreationTimestamp.Time)
			return reconcile.Result{}, nil
		}
		defer func() { optionalRequeue(&result, wait) }()
	}
	if (current == nil || current.Status != want.Status || current.Reason != want.Reason || current.Message != want.Message) &&
		!r.alreadyWritten(key, &pod, want) {
		version, err := r.setCondition(ctx, &pod, current, want)
		if err != nil {
			return reconcile.Result{}, err
		}
		r.remember(key, pod.UID, version, want)
		r.event(&pod, want, gated && gateAt < 0)
	}
	r.states.set(key, want.Reason, gateAt >= 0, pod.CreationTimestamp.Time)
	if pending {
		return reconcile.Result{RequeueAfter: pendingRecheck}, nil
	}
	return reconcile.Result{}, nil
}

// optionalRequeue makes a successful result come back when the gate's
// optional-after time is up, unless it comes back sooner anyway.
func optionalRequeue(result *reconcile.Result, wait time.Duration) {
	if result.RequeueAfter == 0 || wait < result.RequeueAfter {
		result.RequeueAfter = wait
	}
}

func (r *Reconciler) forget(key types.NamespacedName) {
	r.waiters.forget(key)
	r.states.forget(key)
	r.mu.Lock()
	delete(r.written, key)
	r.mu.Unlock()
}

func (r *Reconciler) remember(key types.NamespacedName, uid types.UID, version string, c corev1.PodCondition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.written[key] = writtenCondition{uid: uid, resourceVersion: version, status: string(c.Status), reason: c.Reason, message: c.Message}
}

// alreadyWritten says that want is what this process last wrote to the pod and
// that the pod as read is older than that write: the cache lags behind, and its
// update will come. A pod read at or after the write whose condition differs was
// changed by someone else, and gets the condition again.
func (r *Reconciler) alreadyWritten(key types.NamespacedName, pod *corev1.Pod, want corev1.PodCondition) bool {
	r.mu.Lock()
	w, ok := r.written[key]
	r.mu.Unlock()
	if !ok || w.uid != pod.UID || w.status != string(want.Status) || w.reason != want.Reason || w.message != want.Message {
		return false
	}
	read, err1 := strconv.ParseUint(pod.ResourceVersion, 10, 64)
	wrote, err2 := strconv.ParseUint(w.resourceVersion, 10, 64)
	// Resource versions are opaque to clients; where they are not numbers,
	// writing again is the safe side.
	return err1 == nil && err2 == nil && read < wrote
}

// removeGate removes the scheduling gate, and only it, with a JSON patch whose
// test operations make it fail if the pod was replaced or its gates changed since
// it was read (another controller adding or removing its own gate): the next
// reconcile then reads the pod again.
func (r *Reconciler) removeGate(ctx context.Context, pod *corev1.Pod) error {
	var keep []corev1.PodSchedulingGate
	for _, g := range pod.Spec.SchedulingGates {
		if g.Name != inject.SchedulingGate {
			keep = append(keep, g)
		}
	}
	ops := []map[string]any{
		{"op": "test", "path": "/metadata/uid", "value": pod.UID},
		{"op": "test", "path": "/spec/schedulingGates", "value": pod.Spec.SchedulingGates},
	}
	if len(keep) == 0 {
		ops = append(ops, map[string]any{"op": "remove", "path": "/spec/schedulingGates"})
	} else {
		ops = append(ops, map[string]any{"op": "replace", "path": "/spec/schedulingGates", "value": keep})
	}
	data, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	if err := r.client.Patch(ctx, pod.DeepCopy(), client.RawPatch(types.JSONPatchType, data)); err != nil {
		return fmt.Errorf("removing scheduling gate %s: %w", inject.SchedulingGate, err)
	}
	return nil
}

// setCondition patches the pod's status with the condition, merged by type so
// that the kubelet's and others' conditions stay; the uid in the patch makes it
// fail on a pod of the same name created since.
// It returns the pod's resource version after the write.
func (r *Reconciler) setCondition(ctx context.Context, pod *corev1.Pod, current *corev1.PodCondition, want corev1.PodCondition) (string, error) {
	want.LastTransitionTime = metav1.NewTime(r.opts.Now())
	if current != nil && current.Status == want.Status {
		want.LastTransitionTime = current.LastTransitionTime
	}
	patch := map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status":   map[string]any{"conditions": []corev1.PodCondition{want}},
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return "", err
	}
	patched := pod.DeepCopy()
	if err := r.client.Status().Patch(ctx, patched, client.RawPatch(types.StrategicMergePatchType, data)); err != nil {
		return "", fmt.Errorf("setting condition %s: %w", ConditionType, err)
	}
	return patched.ResourceVersion, nil
}

// event records the condition's change; released says the gate was removed.
func (r *Reconciler) event(pod *corev1.Pod, c corev1.PodCondition, released bool) {
	typ := corev1.EventTypeNormal
	reason := "DependenciesWaiting"
	switch c.Reason {
	case ReasonReady:
		reason = "DependenciesReady"
	case ReasonCycle:
		typ, reason = corev1.EventTypeWarning, "DependencyCycle"
	}
	note := c.Message
	if released && c.Reason == ReasonReady {
		note = "removed scheduling gate " + inject.SchedulingGate + "; " + note
	}
	r.recorder.Eventf(pod, nil, typ, reason, "CheckDependencies", "%s", truncate(note, maxEventNote))
}

// Bounds of what is written, whatever the annotations say: a condition message
// names the first blockers and counts the rest; an Event's note is cut (the
// events API allows 1 kB).
const (
	maxBlockersShown  = 5
	maxConditionBytes = 2048
	maxEventNote      = 1000
)

func joinBlockers(blockers []string) string {
	shown := blockers
	if len(shown) > maxBlockersShown {
		shown = shown[:maxBlockersShown]
	}
	s := strings.Join(shown, "; ")
	if n := len(blockers) - len(shown); n > 0 {
		s += fmt.Sprintf("; and %d more", n)
	}
	return truncate(s, maxConditionBytes)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && (s[cut]&0xC0) == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return s[:cut] + "..."
}

// readyMessage says what the Ready condition covers, and what it does not, and
// which dependencies only the memory of a deleted Job satisfied (notes).
func readyMessage(checked int, local, notes []string) string {
	msg := fmt.Sprintf("all %d dependencies that need no node are ready", checked)
	switch checked {
	case 0:
		msg = "no dependency that needs no node"
	case 1:
		msg = "the dependency that needs no node is ready"
	}
	if len(notes) > 0 {
		msg += "; " + joinBlockers(notes)
	}
	if len(local) > 0 {
		msg += "; the resolver in the pod checks " + joinBlockers(local)
	}
	return truncate(msg, maxConditionBytes)
}

// judge applies d's rule to what its informer holds. For a Job by name that does
// not exist, the completion remembered under that name (jobmemory.go) is judged
// too: v is then its verdict, which decides when it is ready, and otherwise
// explains st.
func (r *Reconciler) judge(d dependency, ki *kindInformer, pod *corev1.Pod) (st resolve.Status, v *rememberedVerdict) {
	objects := d.objects(ki)
	st = d.evaluate(objects)
	if st.Ready || len(objects) > 0 || d.gvr != jobsResource || d.selector != nil {
		return st, nil
	}
	c, ok := r.jobs.lookup(d.namespace, d.name)
	if !ok {
		return st, nil
	}
	verdict := judgeRemembered(c, pod.Labels, pod.CreationTimestamp.Time, r.opts.Now(), r.opts.RememberedJobGrace)
	if verdict.ready {
		return resolve.Status{Ready: true}, &verdict
	}
	return resolve.Status{Reason: verdict.reason}, &verdict
}

// nodeLocal names, as the resolver does, the dependencies only the resolver in the
// pod can check: Secrets among them unless the controller watches them.
func nodeLocal(deps *spec.Spec, secrets bool) []string {
	var out []string
	if !secrets {
		for _, ref := range deps.Secrets {
			out = append(out, (&kube.Secret{Ref: ref}).String())
		}
	}
	for _, ref := range deps.DaemonSets {
		out = append(out, (&kube.DaemonSet{Ref: ref}).String())
	}
	for _, ref := range deps.Pods {
		if ref.RequireSameNode {
			out = append(out, (&kube.Pod{Ref: ref}).String())
		}
	}
	for _, name := range deps.Containers {
		out = append(out, (&kube.Container{Name: name}).String())
	}
	for _, path := range deps.Sockets {
		out = append(out, (&local.Socket{Path: path}).String())
	}
	for _, addr := range deps.TCP {
		out = append(out, (&local.TCP{Address: addr}).String())
	}
	for _, u := range deps.HTTP {
		out = append(out, (&local.HTTP{URL: u}).String())
	}
	return out
}

func gateIndex(pod *corev1.Pod) int {
	for i, g := range pod.Spec.SchedulingGates {
		if g.Name == inject.SchedulingGate {
			return i
		}
	}
	return -1
}

func findCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == ConditionType {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func podIsReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// shortError is an API error's reason and message, without what the informer or
// client wrapped around it.
func shortError(err error) string {
	var s apierrors.APIStatus
	if errors.As(err, &s) {
		return string(s.Status().Reason) + ": " + s.Status().Message
	}
	return err.Error()
}
