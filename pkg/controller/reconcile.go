package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/access"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck/admit"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Reconciler keeps the condition of managed pods and releases gated ones.
type Reconciler struct {
	opts   Options
	client client.Client
	// pods sends the gate's removal, whose answer (the whole pod) is not decoded:
	// the informer brings the pod as patched.
	pods     rest.Interface
	mapper   meta.RESTMapper
	recorder events.EventRecorder
	kinds    *kindInformers
	waiters  *waiters
	states   *podStates
	// programs are the compiled CEL expressions of the pods' dependencies.
	programs admit.Cache
	// eval evaluates them: a few at a time, each (expression, object version)
	// once.
	eval *celcheck.Evaluator
	// access answers whether a pod's ServiceAccount may read what it names.
	access *access.Checker
	// allowed are the kinds custom-resource and CEL items may name.
	allowed allowList
	// jobs are the completions of Jobs seen succeed, which may be deleted since.
	jobs *jobMemory
	// deferred are the pods whose condition is written after the burst, and
	// releases the releases whose Events are (coalesce.go, afterburst.go);
	// active counts the reconciles under way, to tell when the burst is over.
	deferred *deferredConditions
	releases *releaseLog
	active   atomic.Int64

	mu    sync.Mutex
	queue workqueue.TypedRateLimitingInterface[reconcile.Request]
	// dirty is when a dependency change first woke each pod since its last
	// reconcile: the start of the release latency.
	dirty map[types.NamespacedName]time.Time
	// written is the last condition written to each pod, so that a reconcile
	// that reads the pod from a cache not yet updated does not write it (and
	// record its Event) again.
	written map[types.NamespacedName]writtenCondition
	// flush are the pods queued to have their deferred condition written.
	flush map[types.NamespacedName]bool
	// seen is when this process first held back the Waiting condition of each
	// pod, the start of its grace when later than the pod's creation.
	seen map[types.NamespacedName]seenPod
}

// seenPod is when a pod, by uid, was first seen waiting.
type seenPod struct {
	uid types.UID
	at  time.Time
}

// writtenCondition is a condition as written, and the pod's version after it.
type writtenCondition struct {
	// at is when it was written, for the damping of writes.
	at                      time.Time
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
	if opts.InformerIdle <= 0 {
		opts.InformerIdle = DefaultInformerIdle
	}
	if opts.WaitingGrace == 0 {
		opts.WaitingGrace = DefaultWaitingGrace
	}
	if opts.RememberedJobGrace <= 0 {
		opts.RememberedJobGrace = DefaultRememberedJobGrace
	}
	allowed, err := newAllowList(opts.AllowedResources, opts.SecretDependencies)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return nil, fmt.Errorf("the dependency controller's client: %w", err)
	}
	checker := opts.Access
	if checker == nil {
		checker = access.NewChecker(cs.AuthorizationV1().SubjectAccessReviews(), access.Options{})
	}
	r := &Reconciler{
		pods:     cs.CoreV1().RESTClient(),
		access:   checker,
		eval:     celcheck.NewEvaluator(runtime.GOMAXPROCS(0), maxCachedEvaluations),
		allowed:  allowed,
		opts:     opts,
		client:   mgr.GetClient(),
		mapper:   mgr.GetRESTMapper(),
		recorder: mgr.GetEventRecorder(Name),
		waiters:  newWaiters(),
		states:   newPodStates(opts.Now),
		dirty:    map[types.NamespacedName]time.Time{},
		written:  map[types.NamespacedName]writtenCondition{},
		flush:    map[types.NamespacedName]bool{},
		seen:     map[types.NamespacedName]seenPod{},
		jobs:     newJobMemory(MaxRememberedJobs, opts.Now),
		deferred: newDeferredConditions(),
		releases: newReleaseLog(),
	}
	r.kinds = &kindInformers{
		client: opts.Dynamic, log: opts.Log, kinds: map[schema.GroupVersionResource]*kindInformer{}, now: opts.Now,
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
	err = ctrl.NewControllerManagedBy(mgr).
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
	if err := setupOwners(mgr, opts); err != nil {
		return nil, err
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
	go s.r.sweepInformers(ctx)
	go s.r.afterBursts(ctx)
	return nil
}

// sweepInformers stops, every idle/2, the informers no pod needs any more.
func (r *Reconciler) sweepInformers(ctx context.Context) {
	idle := r.opts.InformerIdle
	t := time.NewTicker(idle / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.kinds.sweep(r.waiters.kinds(), idle)
		}
	}
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
	if r.opts.woken != nil {
		r.opts.woken(pods)
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

// Reconcile brings one pod's condition and gate up to date: what is observed of
// it is decided on (decide, which does no I/O), then acted on.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	r.active.Add(1)
	defer r.active.Add(-1)
	key := req.NamespacedName
	wokeAt, woke := r.takeDirty(key)
	flush := r.takeFlush(key)
	var pod corev1.Pod
	in, err := r.observe(ctx, key, &pod)
	if err != nil {
		if flush {
			r.deferred.add(key, r.opts.Now())
		}
		return reconcile.Result{}, err
	}
	return r.act(ctx, key, &pod, decide(in), actContext{wokeAt: wokeAt, woke: woke, flush: flush})
}

// actContext is what act is told besides the decision: when a dependency
// change first woke the pod (woke), and whether the reconcile is the one that
// writes its deferred condition (flush).
type actContext struct {
	wokeAt      time.Time
	woke, flush bool
}

// observe reads the pod into pod and, unless it is not followed, gathers what is
// known of each of its dependencies; it notes which kinds the pod waits for,
// so that their informers wake it. An error is one of reading the pod.
func (r *Reconciler) observe(ctx context.Context, key types.NamespacedName, pod *corev1.Pod) (decisionInput, error) {
	if err := r.client.Get(ctx, key, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return decisionInput{gone: true}, nil
		}
		return decisionInput{}, err
	}
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return decisionInput{finished: true}, nil
	}
	deps, gated, err := r.opts.Dependencies(pod)
	if err != nil {
		return decisionInput{unreadable: err}, nil
	}
	in := decisionInput{gateAt: gateIndex(pod), gateMode: gated, current: findCondition(pod), required: requiredOf(pod.Spec.Affinity),
		created: pod.CreationTimestamp.Time, ready: podIsReady(pod),
		deps: deps, limits: spec.CheckLimits(deps), secrets: r.opts.SecretDependencies}
	if !in.lookups() {
		return in, nil
	}
	c := lookupConfig{mapper: r.mapper, secrets: r.opts.SecretDependencies, programs: &r.programs, eval: r.eval, allowed: r.allowed}
	list := nodeFree(deps, c)
	in.verdicts = r.gather(ctx, pod, list)
	if in.gateAt >= 0 {
		// The gate holds the same-node dependencies too: judged on the pod's
		// one node when its affinity names it, else where they are ready.
		if in.node = kube.BoundNode(pod); in.node != "" {
			onNode := c.onNode(deps, in.node)
			in.verdicts = append(in.verdicts, r.gather(ctx, pod, onNode)...)
			list = append(list, onNode...)
		} else if probe := c.onNode(deps, ""); len(probe) > 0 {
			in.placing = true
			var blocking []verdict
			in.places, blocking = r.place(ctx, pod, deps, probe)
			in.verdicts = append(in.verdicts, blocking...)
			list = append(list, probe...)
		}
	}
	r.waiters.set(key, list)
	in.deniedFor = r.access.DeniedFor()
	if r.opts.Cycles != nil && blocked(in.verdicts) {
		in.cycle, in.inCycle = r.opts.Cycles.CycleOf(key.Namespace, key.Name)
	}
	if in.gateAt >= 0 && deps.OptionalAfter > 0 {
		in.now = r.opts.Now()
	}
	return in, nil
}

// gather finds, in order, what is known of each dependency in list.
func (r *Reconciler) gather(ctx context.Context, pod *corev1.Pod, list []dependency) []verdict {
	out := make([]verdict, len(list))
	for i, d := range list {
		ki, v, ok := r.reach(ctx, pod, d)
		if ok {
			v.judged = true
			v.status, v.remembered = r.judge(ctx, d, ki, pod)
		}
		out[i] = v
	}
	return out
}

// reach finds the synced informer that decides d, once the pod may read d; or,
// ok false, v says why it cannot be judged (yet).
func (r *Reconciler) reach(ctx context.Context, pod *corev1.Pod, d dependency) (ki *kindInformer, v verdict, ok bool) {
	v.text = d.text
	if d.problem != "" {
		v.problem = d.problem
		return nil, v, false
	}
	// Judged only if the pod itself could read it: its state is never
	// looked at, nor its kind watched, for a pod that may not.
	if refused, err := r.authorize(ctx, pod, d); err != nil || refused != "" {
		if err != nil {
			refused = "cannot tell whether the pod may read it: " + shortError(err)
		}
		v.refused = refused
		return nil, v, false
	}
	if ki = r.kinds.get(d.gvr); ki == nil {
		v.pending = true
		return nil, v, false
	}
	synced, problem := ki.state()
	switch {
	case synced:
		return ki, v, true
	case problem != "":
		v.watchProblem = problem
	default:
		v.pending = true
	}
	return nil, v, false
}

// place finds where each same-node item of deps is ready, for a gated pod whose
// node is not known: probe are the items' lookups without a node
// (lookupConfig.onNode), in order. The nodes looked at are those of the pods
// the lookups read; on each, the items are judged by the resolver's rules as on
// a pod bound there. blocking, when some lookup cannot be judged (the pod may
// not read it, its kind is not watched yet), says why, and places is nil.
func (r *Reconciler) place(ctx context.Context, pod *corev1.Pod, deps *spec.Spec, probe []dependency) (places []itemNodes, blocking []verdict) {
	// What each lookup reads, by node for pods (every node alike otherwise).
	byNode := make([]map[string][]*unstructured.Unstructured, len(probe))
	whole := make([][]*unstructured.Unstructured, len(probe))
	nodes := map[string]bool{}
	for i, d := range probe {
		ki, v, ok := r.reach(ctx, pod, d)
		if !ok {
			blocking = append(blocking, v)
			continue
		}
		objs := d.objects(ki)
		if d.gvr != podsResource {
			whole[i] = objs
			continue
		}
		byNode[i] = map[string][]*unstructured.Unstructured{}
		for _, o := range objs {
			if n := nodeOf(o); n != "" {
				byNode[i][n] = append(byNode[i][n], o)
				nodes[n] = true
			}
		}
	}
	if len(blocking) > 0 {
		return nil, blocking
	}
	same := sameNodeSpec(deps)
	for _, it := range onNodeItems(same, "") {
		places = append(places, itemNodes{text: it.Text})
	}
	for _, n := range slices.Sorted(maps.Keys(nodes)) {
		k := 0 // index of the item's first lookup in probe
		for i, it := range onNodeItems(same, n) {
			ready := true
			for j, l := range it.Lookups {
				objs := whole[k+j]
				if byNode[k+j] != nil {
					objs = byNode[k+j][n]
				}
				if l.Evaluate == nil || !l.Evaluate(objs).Ready {
					ready = false
					break
				}
			}
			if ready {
				places[i].nodes = append(places[i].nodes, n)
			}
			k += len(it.Lookups)
		}
	}
	return places, nil
}

// act carries out what was decided of the pod: removes its gate (the one write
// of a release: its Event and condition come after the burst), or ensures its
// condition, records Events and metrics, and keeps or forgets what the
// controller holds of it.
func (r *Reconciler) act(ctx context.Context, key types.NamespacedName, pod *corev1.Pod, d decision, ac actContext) (reconcile.Result, error) {
	if d.forget {
		if d.ignored != "" {
			// Labelled by hand, or injected by a webhook of another version.
			ctrl.LoggerFrom(ctx).V(1).Info("not checking the pod's dependencies", "reason", d.ignored)
		}
		r.forget(key)
		return reconcile.Result{}, nil
	}
	if d.unwatch {
		r.waiters.forget(key)
	}
	switch d.gate {
	case releaseReady:
		if err := r.removeGate(ctx, pod, d.narrow); err != nil {
			return reconcile.Result{}, err
		}
		if d.narrow != nil {
			ctrl.LoggerFrom(ctx).Info("removed the scheduling gate and narrowed the pod's required node affinity to the nodes where its same-node dependencies are ready",
				"nodes", d.narrowedTo)
		}
		now := r.opts.Now()
		if r.opts.Metrics != nil {
			if ac.woke {
				r.opts.Metrics.ReleaseLatency.Observe(now.Sub(ac.wokeAt).Seconds())
			}
			r.opts.Metrics.GatedDuration.Observe(now.Sub(pod.CreationTimestamp.Time).Seconds())
		}
		r.released(key, pod, releaseReadyKey(key.Namespace, d.waitedFor), now)
		r.states.set(key, d.state, false, pod.CreationTimestamp.Time)
		return requeued(reconcile.Result{}, d.requeue), nil
	case releaseOptional:
		if err := r.removeGate(ctx, pod, d.narrow); err != nil {
			return reconcile.Result{}, err
		}
		ctrl.LoggerFrom(ctx).Info("removed the scheduling gate without the dependencies still blocking: they are optional after this long",
			"optionalAfter", d.optionalAfter.String(), "blocking", d.still)
		r.released(key, pod, releaseOptionalKey(key.Namespace, d.optionalAfter, d.still), r.opts.Now())
		r.states.set(key, d.state, false, pod.CreationTimestamp.Time)
		return requeued(reconcile.Result{}, d.requeue), nil
	}
	if !d.write {
		return reconcile.Result{RequeueAfter: d.requeue}, nil
	}
	current := findCondition(pod)
	if hold := r.waitingHeld(key, pod, current, d); hold > 0 {
		r.states.set(key, d.want.Reason, d.gated, pod.CreationTimestamp.Time)
		return requeued(reconcile.Result{RequeueAfter: hold}, d.requeue), nil
	}
	later := deferredAfterRelease(d.want, d.released) && !ac.flush
	result, err := r.ensureCondition(ctx, key, pod, current, d.want, d.released, d.gated, later)
	if err != nil {
		return reconcile.Result{RequeueAfter: d.requeueOnError}, err
	}
	return requeued(result, d.requeue), nil
}

// requeued is result brought back after the given time if that is sooner; 0:
// as it is.
func requeued(result reconcile.Result, after time.Duration) reconcile.Result {
	if after > 0 {
		optionalRequeue(&result, after)
	}
	return result
}

// maxCachedEvaluations bounds the CEL results kept: one per expression and
// object version, so a thousand pods on one expression evaluate it once.
const maxCachedEvaluations = 4096

// conditionDamping is the least time between two condition writes to one pod:
// a pod whose blockers change all the time (a flapping dependency, a forged
// pod) costs at most one write and one Event per interval. What changes in
// between is written when it is up.
const conditionDamping = time.Second

// ensureCondition writes want unless the pod has it already (or this process
// wrote it and the cache lags), at most once per conditionDamping, with an
// Event unless the pod's release was announced (releaseLog). later leaves the
// write for after the burst (afterburst.go).
func (r *Reconciler) ensureCondition(ctx context.Context, key types.NamespacedName, pod *corev1.Pod,
	current *corev1.PodCondition, want corev1.PodCondition, released, gated, later bool) (reconcile.Result, error) {
	defer r.states.set(key, want.Reason, gated, pod.CreationTimestamp.Time)
	if current != nil && current.Status == want.Status && current.Reason == want.Reason && current.Message == want.Message {
		return reconcile.Result{}, nil
	}
	if r.alreadyWritten(key, pod, want) {
		return reconcile.Result{}, nil
	}
	if later {
		r.deferred.add(key, r.opts.Now())
		return reconcile.Result{}, nil
	}
	if wait := r.damped(key, pod.UID); wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	version, err := r.setCondition(ctx, pod, current, want)
	if err != nil {
		return reconcile.Result{}, err
	}
	r.remember(key, pod.UID, version, want)
	if !deferredAfterRelease(want, released) {
		r.event(pod, want, released)
	}
	return reconcile.Result{}, nil
}

// damped is how long the next condition write to the pod must wait; 0: none.
func (r *Reconciler) damped(key types.NamespacedName, uid types.UID) time.Duration {
	r.mu.Lock()
	w, ok := r.written[key]
	r.mu.Unlock()
	if !ok || w.uid != uid {
		return 0
	}
	if since := r.opts.Now().Sub(w.at); since < conditionDamping {
		return conditionDamping - since
	}
	return 0
}

// authorize says, for a dependency outside the pod's namespace (or of a
// cluster-scoped kind) that discovery does not show anyway, whether the pod's ServiceAccount may read it as the
// resolver would: "" when it may, else what RBAC it lacks.
func (r *Reconciler) authorize(ctx context.Context, pod *corev1.Pod, d dependency) (refused string, err error) {
	if d.public {
		return "", nil
	}
	req := access.Request{PodNamespace: pod.Namespace, ServiceAccount: serviceAccountOf(pod),
		Verb: d.verb(), Resource: d.gvr, Namespace: d.namespace}
	if req.Verb == "get" {
		req.Name = d.name
	}
	ok, err := r.access.Allowed(ctx, req)
	if err != nil || ok {
		return "", err
	}
	return req.Denied(), nil
}

// serviceAccountOf is the pod's ServiceAccount; "default" where the pod names
// none (the API server sets it so when the ServiceAccount admission plugin runs).
func serviceAccountOf(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName != "" {
		return pod.Spec.ServiceAccountName
	}
	return "default"
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
	r.deferred.remove(key)
	r.mu.Lock()
	delete(r.written, key)
	delete(r.flush, key)
	delete(r.seen, key)
	r.mu.Unlock()
}

// waitingHeld is how long the pod's first Waiting condition is still held
// back (waitingHeld of coalesce.go): its grace runs from its creation, or
// from when this process first held it back if that is later (after a
// restart, or a hand-over of the lease). 0: write it now.
func (r *Reconciler) waitingHeld(key types.NamespacedName, pod *corev1.Pod, current *corev1.PodCondition, d decision) time.Duration {
	if !d.gated || current != nil || d.want.Status == corev1.ConditionTrue || r.opts.WaitingGrace <= 0 {
		return 0
	}
	now := r.opts.Now()
	r.mu.Lock()
	s, ok := r.seen[key]
	if !ok || s.uid != pod.UID {
		s = seenPod{uid: pod.UID, at: now}
		r.seen[key] = s
	}
	r.mu.Unlock()
	since := pod.CreationTimestamp.Time
	if s.at.After(since) {
		since = s.at
	}
	return waitingHeld(current, d.want, d.gated, since, now, r.opts.WaitingGrace)
}

// released notes the pod's release for the Event of its group, and forgets
// when its wait was first seen.
func (r *Reconciler) released(key types.NamespacedName, pod *corev1.Pod, group releaseKey, now time.Time) {
	r.releases.add(group, podRef{name: pod.Name, uid: pod.UID}, now)
	r.mu.Lock()
	delete(r.seen, key)
	r.mu.Unlock()
}

func (r *Reconciler) takeFlush(key types.NamespacedName) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok := r.flush[key]
	delete(r.flush, key)
	return ok
}

func (r *Reconciler) remember(key types.NamespacedName, uid types.UID, version string, c corev1.PodCondition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.written[key] = writtenCondition{at: r.opts.Now(), uid: uid, resourceVersion: version, status: string(c.Status), reason: c.Reason, message: c.Message}
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
// reconcile then reads the pod again. With narrow, the same patch sets the pod's
// required node affinity to it (narrowed), and fails as well if anything of the
// pod changed since it was read (its resourceVersion): what was narrowed is what
// the API server holds.
func (r *Reconciler) removeGate(ctx context.Context, pod *corev1.Pod, narrow *corev1.NodeSelector) error {
	data, err := json.Marshal(gateRemovalOps(pod, narrow))
	if err != nil {
		return err
	}
	err = r.pods.Patch(types.JSONPatchType).Namespace(pod.Namespace).Resource("pods").Name(pod.Name).Body(data).Do(ctx).Error()
	if err != nil {
		if narrow != nil {
			return fmt.Errorf("removing scheduling gate %s and narrowing the pod's required node affinity: %w", inject.SchedulingGate, err)
		}
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
	r.recorder.Eventf(pod, nil, typ, reason, "CheckDependencies", "%s", shown(note, maxEventNote))
}

// judge applies d's rule to what its informer holds. For a Job by name that does
// not exist, the completion remembered under that name (jobmemory.go) is judged
// too: v is then its verdict, which decides when it is ready, and otherwise
// explains st.
func (r *Reconciler) judge(ctx context.Context, d dependency, ki *kindInformer, pod *corev1.Pod) (st resolve.Status, v *rememberedVerdict) {
	objects := d.objects(ki)
	if d.values && len(objects) > 0 {
		// The informer keeps no values: the one object is read whole, the pod's
		// access to it checked already.
		var err error
		if objects, err = r.readWhole(ctx, d); err != nil {
			return resolve.Status{Reason: "cannot read it: " + shortError(err)}, nil
		}
	}
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

// shortError is an API error's reason and message, without what the informer or
// client wrapped around it.
func shortError(err error) string {
	var s apierrors.APIStatus
	if errors.As(err, &s) {
		return string(s.Status().Reason) + ": " + s.Status().Message
	}
	return err.Error()
}

// readTimeout bounds the GET of one object whose values a rule compares.
const readTimeout = 5 * time.Second

// readWhole GETs the dependency's one object, values included; none when it
// is gone.
func (r *Reconciler) readWhole(ctx context.Context, d dependency) ([]*unstructured.Unstructured, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	var res dynamic.ResourceInterface = r.opts.Dynamic.Resource(d.gvr)
	if d.namespace != "" {
		res = r.opts.Dynamic.Resource(d.gvr).Namespace(d.namespace)
	}
	obj, err := res.Get(ctx, d.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []*unstructured.Unstructured{obj}, nil
}
