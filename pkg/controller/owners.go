package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
)

// DefaultOwnerWriteInterval is the least time between two writes of one
// workload's summary: a rollout of many pods changes their conditions in a
// burst, and each write of the workload wakes every controller watching it.
const DefaultOwnerWriteInterval = 10 * time.Second

// OwnersName is the owner-summary controller's name in logs and Events.
const OwnersName = "entrypoint-owners"

// ownerKey names a workload by kind (Deployment, ReplicaSet, StatefulSet,
// DaemonSet, Job, CronJob), namespace and name.
type ownerKey struct {
	Kind, Namespace, Name string
}

func (k ownerKey) String() string { return k.Kind + " " + k.Namespace + "/" + k.Name }

// ownerAPIVersion is the API version of the kinds a summary concerns; "" for
// any other kind.
func ownerAPIVersion(kind string) string {
	switch kind {
	case "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet":
		return "apps/v1"
	case "Job", "CronJob":
		return "batch/v1"
	}
	return ""
}

// ownerState is what this process knows of one workload's annotation.
type ownerState struct {
	// known: value is the annotation as last read or written; otherwise it is
	// read before anything is written (after a restart, nothing is assumed).
	known bool
	value string
	// wrote is when the annotation was last written, for the interval;
	// counted when the pods were last counted, for ownerRecount.
	wrote, counted time.Time
}

// owners keeps the annotation api.AnnotationWaiting on the workloads whose
// pods the controller follows. Its queue holds each pod's direct controller
// (a ReplicaSet, StatefulSet, DaemonSet or Job); a reconcile finds the
// workload above it, counts that workload's pods from the cache and writes
// the summary of their conditions, at most once per interval (later changes
// wait in the queue, so the last one always lands).
type owners struct {
	client   client.Client // the cached managed pods; the annotation's patches
	reader   client.Reader // the workloads' metadata, read uncached: no watch on every Deployment
	recorder events.EventRecorder
	interval time.Duration
	now      func() time.Time

	mu sync.Mutex
	// tops maps a ReplicaSet or Job to the workload that controls it (a
	// Deployment, a CronJob) or to itself: their owners do not change.
	tops   map[ownerKey]ownerKey
	states map[ownerKey]*ownerState
}

// maxRememberedTops bounds the ReplicaSets and Jobs whose workload is
// remembered; past it they are all forgotten and read again when needed.
const maxRememberedTops = 10000

func setupOwners(mgr ctrl.Manager, opts Options) error {
	o := &owners{
		client:   mgr.GetClient(),
		reader:   mgr.GetAPIReader(),
		recorder: mgr.GetEventRecorder(OwnersName),
		interval: opts.OwnerWriteInterval,
		now:      opts.Now,
		tops:     map[ownerKey]ownerKey{},
		states:   map[ownerKey]*ownerState{},
	}
	if o.interval <= 0 {
		o.interval = DefaultOwnerWriteInterval
	}
	pods := source.TypedKind(mgr.GetCache(), &corev1.Pod{},
		handler.TypedEnqueueRequestsFromMapFunc(func(_ context.Context, pod *corev1.Pod) []ownerKey {
			if k, ok := directOwner(pod); ok {
				return []ownerKey{k}
			}
			return nil
		}))
	// One worker: reconciles of two ReplicaSets of one Deployment would
	// otherwise race on its annotation. A reconcile reads the cache; the API
	// only for what it has not seen (a ReplicaSet's or Job's owner, a
	// workload's annotation after a restart) and to write.
	err := builder.TypedControllerManagedBy[ownerKey](mgr).
		Named(OwnersName).
		WatchesRawSource(pods).
		WithOptions(controller.TypedOptions[ownerKey]{MaxConcurrentReconciles: 1}).
		WithLogConstructor(func(k *ownerKey) logr.Logger {
			if k == nil {
				return opts.Log
			}
			return opts.Log.WithValues("controller", OwnersName, "owner", k.String())
		}).
		Complete(o)
	if err != nil {
		return fmt.Errorf("setting up the owner-summary controller: %w", err)
	}
	return nil
}

// directOwner is the pod's controller, when of a kind whose workload gets a
// summary.
func directOwner(pod *corev1.Pod) (ownerKey, bool) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return ownerKey{}, false
	}
	switch ref.Kind {
	case "ReplicaSet", "StatefulSet", "DaemonSet", "Job":
		if gv := ownerAPIVersion(ref.Kind); ref.APIVersion == gv {
			return ownerKey{Kind: ref.Kind, Namespace: pod.Namespace, Name: ref.Name}, true
		}
	}
	return ownerKey{}, false
}

// Reconcile brings the summary of the workload above direct up to date.
func (o *owners) Reconcile(ctx context.Context, direct ownerKey) (reconcile.Result, error) {
	top, ok, err := o.top(ctx, direct)
	if err != nil || !ok {
		return reconcile.Result{}, err
	}
	if wait := o.untilDue(top); wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	want, pods, err := o.summaryOf(ctx, top)
	if err != nil {
		return reconcile.Result{}, err
	}
	o.mu.Lock()
	if st := o.states[top]; st != nil {
		st.counted = o.now()
	} else {
		o.states[top] = &ownerState{counted: o.now()}
	}
	o.mu.Unlock()
	return reconcile.Result{}, o.ensure(ctx, top, want, pods)
}

// top is the workload a summary is kept on for direct: the Deployment of a
// ReplicaSet, the CronJob of a Job, or direct itself; ok false: none (a
// ReplicaSet of no Deployment, or one gone).
func (o *owners) top(ctx context.Context, direct ownerKey) (ownerKey, bool, error) {
	if direct.Kind != "ReplicaSet" && direct.Kind != "Job" {
		return direct, true, nil
	}
	o.mu.Lock()
	top, ok := o.tops[direct]
	o.mu.Unlock()
	if ok {
		return top, top.Kind != "", nil
	}
	meta := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: ownerAPIVersion(direct.Kind), Kind: direct.Kind}}
	err := o.reader.Get(ctx, types.NamespacedName{Namespace: direct.Namespace, Name: direct.Name}, meta)
	if apierrors.IsNotFound(err) {
		return ownerKey{}, false, nil // its pods go too
	}
	if err != nil {
		return ownerKey{}, false, fmt.Errorf("reading %s to find its workload: %w", direct, err)
	}
	top = direct
	ref := metav1.GetControllerOf(meta)
	switch {
	case direct.Kind == "ReplicaSet" && ref != nil && ref.Kind == "Deployment" && ref.APIVersion == "apps/v1":
		top = ownerKey{Kind: "Deployment", Namespace: direct.Namespace, Name: ref.Name}
	case direct.Kind == "ReplicaSet":
		top = ownerKey{} // a bare ReplicaSet: no summary
	case ref != nil && ref.Kind == "CronJob" && ref.APIVersion == "batch/v1":
		top = ownerKey{Kind: "CronJob", Namespace: direct.Namespace, Name: ref.Name}
	}
	o.mu.Lock()
	if len(o.tops) >= maxRememberedTops {
		clear(o.tops)
	}
	o.tops[direct] = top
	o.mu.Unlock()
	return top, top.Kind != "", nil
}

// ownerRecount is the least time between two counts of one workload's pods
// (at most the write interval): a count lists the namespace's pods from the
// cache, and a release of thousands of pods wakes their workload thousands of
// times.
const ownerRecount = time.Second

// untilDue is how long until top's pods may be counted again and its
// annotation written.
func (o *owners) untilDue(top ownerKey) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := o.states[top]
	if st == nil {
		return 0
	}
	due := st.counted.Add(min(ownerRecount, o.interval))
	if !st.wrote.IsZero() {
		if w := st.wrote.Add(o.interval); w.After(due) {
			due = w
		}
	}
	return due.Sub(o.now())
}

// summaryOf summarizes the conditions of top's pods that the cache holds; pods
// is how many it has.
func (o *owners) summaryOf(ctx context.Context, top ownerKey) (summary string, pods int, err error) {
	var list corev1.PodList
	// Not copied: the pods are only read, and a namespace may hold thousands.
	if err := o.client.List(ctx, &list, client.InNamespace(top.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return "", 0, fmt.Errorf("listing the pods of %s: %w", top, err)
	}
	var waits []podWait
	for i := range list.Items {
		pod := &list.Items[i]
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		direct, ok := directOwner(pod)
		if !ok {
			continue
		}
		if direct != top {
			t, ok, err := o.top(ctx, direct)
			if err != nil {
				return "", 0, err
			}
			if !ok || t != top {
				continue
			}
		}
		pods++
		if c := findCondition(pod); c != nil && c.Status == corev1.ConditionFalse {
			waits = append(waits, podWait{reason: c.Reason, blockers: blockersOf(c)})
		}
	}
	return summarize(pods, waits), pods, nil
}

// ensure writes want (an empty want removes the annotation) unless top has it,
// with an Event when waiting starts or ends.
func (o *owners) ensure(ctx context.Context, top ownerKey, want string, pods int) error {
	log := ctrl.LoggerFrom(ctx).WithValues("workload", top.String())
	o.mu.Lock()
	st := o.states[top]
	if st == nil {
		st = &ownerState{}
		o.states[top] = st
	}
	cur := *st
	o.mu.Unlock()

	meta := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: ownerAPIVersion(top.Kind), Kind: top.Kind}}
	if !cur.known {
		err := o.reader.Get(ctx, types.NamespacedName{Namespace: top.Namespace, Name: top.Name}, meta)
		if apierrors.IsNotFound(err) {
			o.forget(top)
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", top, err)
		}
		cur = ownerState{known: true, value: meta.Annotations[api.AnnotationWaiting]}
	}
	if cur.value == want {
		o.mu.Lock()
		if pods == 0 && want == "" {
			delete(o.states, top) // nothing to remember of a workload without pods
		} else {
			st.known, st.value = true, cur.value
		}
		o.mu.Unlock()
		return nil
	}

	var value any // nil removes it
	if want != "" {
		value = want
	}
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{api.AnnotationWaiting: value}}})
	if err != nil {
		return fmt.Errorf("encoding the patch of %s: %w", top, err)
	}
	meta.Namespace, meta.Name = top.Namespace, top.Name
	// A merge patch of this one annotation: the workload's spec, its other
	// annotations and its status are never sent.
	if err := o.client.Patch(ctx, meta, client.RawPatch(types.MergePatchType, data)); err != nil {
		if apierrors.IsNotFound(err) {
			o.forget(top)
			return nil
		}
		return fmt.Errorf("writing annotation %s of %s: %w", api.AnnotationWaiting, top, err)
	}
	o.mu.Lock()
	st.known, st.value, st.wrote = true, want, o.now()
	o.mu.Unlock()
	log.V(1).Info("wrote the owner's summary", "annotation", api.AnnotationWaiting, "summary", want, "pods", pods)

	switch {
	case cur.value == "" && want != "":
		typ := corev1.EventTypeNormal
		if slices.Contains(api.UnsatisfiableReasons(), summaryReason(want)) {
			typ = corev1.EventTypeWarning
		}
		o.recorder.Eventf(meta, nil, typ, "DependenciesWaiting", "CheckDependencies", "%s", want)
	case cur.value != "" && want == "":
		o.recorder.Eventf(meta, nil, corev1.EventTypeNormal, "DependenciesReady", "CheckDependencies",
			"none of its pods waits for its dependencies any more")
	}
	return nil
}

func (o *owners) forget(top ownerKey) {
	o.mu.Lock()
	delete(o.states, top)
	o.mu.Unlock()
}

// podWait is what a waiting pod's condition says: its reason, and the names of
// the dependencies it waits for.
type podWait struct {
	reason   string
	blockers []string
}

// summarize is the annotation's value for a workload of pods pods, of which
// waits wait: "" when none does. Blockers are named by how many pods wait for
// them, the most first, as many as fit.
func summarize(pods int, waits []podWait) string {
	if len(waits) == 0 {
		return ""
	}
	severity := api.ReasonSeverity()
	rank := func(reason string) int {
		if i := slices.Index(severity, reason); i >= 0 {
			return i
		}
		return slices.Index(severity, api.ReasonWaiting) // another writer's reason: plain waiting
	}
	reason := api.ReasonWaiting
	counts := map[string]int{}
	var names []string
	for _, w := range waits {
		if rank(w.reason) < rank(reason) {
			reason = w.reason
		}
		for _, b := range w.blockers {
			if counts[b] == 0 {
				names = append(names, b)
			}
			counts[b]++
		}
	}
	slices.SortStableFunc(names, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	head := reason + ": " + strconv.Itoa(len(waits)) + " of " + strconv.Itoa(pods) + " pods wait"
	if len(names) == 0 {
		return safetext.Truncate(safetext.Escape(head), api.MaxWaitingBytes)
	}
	const room = len("; and 9999 more")
	s := head + " for "
	shown := 0
	for _, n := range names {
		n = safetext.Escape(n)
		if shown > 0 {
			n = "; " + n
		}
		if len(s)+len(n) > api.MaxWaitingBytes-room {
			break
		}
		s += n
		shown++
	}
	if shown == 0 { // one name longer than the bound: cut, never left out
		s += safetext.Truncate(safetext.Escape(names[0]), api.MaxWaitingBytes-room-len(s))
		shown = 1
	}
	if rest := len(names) - shown; rest > 0 {
		s += fmt.Sprintf("; and %d more", rest)
	}
	return safetext.Truncate(s, api.MaxWaitingBytes)
}

// summaryReason is the reason a summary starts with.
func summaryReason(summary string) string {
	reason, _, _ := strings.Cut(summary, ":")
	return reason
}

// blockersOf names the dependencies a waiting pod's condition message lists:
// each blocker there is "<dependency>: <why>" and they are separated by "; "
// (decide), after "waiting for " (Waiting, Cycle) or inside the parentheses of
// NoReadyNode. A part without ": " (the message's cut end, "and 3 more") names
// none. The names are the condition's own text: nothing is judged again.
func blockersOf(c *corev1.PodCondition) []string {
	msg := c.Message
	var list string
	switch c.Reason {
	case api.ReasonWaiting:
		list = strings.TrimPrefix(msg, "waiting for ")
	case api.ReasonCycle:
		_, list, _ = strings.Cut(msg, "; waiting for ")
	case api.ReasonNoReadyNode:
		if open := strings.Index(msg, " ("); open >= 0 && strings.HasSuffix(msg, ")") {
			list = msg[open+2 : len(msg)-1]
		}
	}
	var names []string
	for part := range strings.SplitSeq(list, "; ") {
		name, _, ok := strings.Cut(part, ": ")
		if ok && name != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}
