package controller

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/depgraph"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// CycleDetector keeps the dependency graph of the managed pods and the Services
// that may serve them, rebuilt at most once per Interval after a change, and tells
// which pods sit in a cycle. It runs on every replica, so that the webhook can
// warn when a new pod closes a cycle, whichever replica the API server calls.
type CycleDetector struct {
	Cache        cache.Cache
	Dependencies DependenciesFunc
	Log          logr.Logger
	// Interval between two rebuilds while things change; 0 means 1 s.
	Interval time.Duration

	dirty  atomic.Bool
	graph  atomic.Pointer[detected]
	mu     sync.Mutex
	wake   func([]types.NamespacedName)
	parsed map[types.UID]depgraph.Pod // dependencies by pod: the env cannot change
	// ignored are the pods left out of the graph (not parsable, or past the
	// caps), remembered so that no rebuild parses them again.
	ignored map[types.UID]struct{}
}

type detected struct {
	graph  *depgraph.Graph
	cycles map[types.NamespacedName]depgraph.Cycle
}

// NeedLeaderElection is false: every replica answers admission requests.
func (d *CycleDetector) NeedLeaderElection() bool { return false }

// OnChange sets what is called with the pods whose cycle appeared, changed or
// went away (the controller's Wake).
func (d *CycleDetector) OnChange(wake func([]types.NamespacedName)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wake = wake
}

// CycleOf implements CycleFinder.
func (d *CycleDetector) CycleOf(namespace, name string) (string, bool) {
	g := d.graph.Load()
	if g == nil {
		return "", false
	}
	c, ok := g.cycles[types.NamespacedName{Namespace: namespace, Name: name}]
	if !ok {
		return "", false
	}
	return c.Message(), true
}

// Warnings says, for a pod being admitted (already mutated), whether it closes or
// joins a dependency cycle; nil when not, or before the first graph is built.
func (d *CycleDetector) Warnings(_ context.Context, pod *corev1.Pod) []string {
	g := d.graph.Load()
	if g == nil {
		return nil
	}
	deps, _, err := d.Dependencies(pod)
	if err != nil || spec.CheckLimits(deps) != nil {
		return nil
	}
	if c, ok := g.graph.Closes(depgraph.PodFrom(pod, deps)); ok {
		return []string{"this pod closes a dependency cycle and will wait until it is broken: " + c.Message()}
	}
	return nil
}

// Start follows managed pods and Services and rebuilds the graph after changes.
func (d *CycleDetector) Start(ctx context.Context) error {
	interval := d.Interval
	if interval <= 0 {
		interval = time.Second
	}
	d.parsed = map[types.UID]depgraph.Pod{}
	d.ignored = map[types.UID]struct{}{}
	mark := toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { d.dirty.Store(true) },
		UpdateFunc: func(oldObj, obj any) {
			if changedForGraph(oldObj, obj) {
				d.dirty.Store(true)
			}
		},
		DeleteFunc: func(any) { d.dirty.Store(true) },
	}
	for _, obj := range []client.Object{&corev1.Pod{}, &corev1.Service{}} {
		inf, err := d.Cache.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("cycle detection: watching %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(mark); err != nil {
			return err
		}
	}
	if !d.Cache.WaitForCacheSync(ctx) {
		return nil
	}
	d.dirty.Store(true)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if d.dirty.Swap(false) {
			if err := d.rebuild(ctx); err != nil {
				d.Log.Error(err, "cannot build the dependency graph; cycles are not reported until it can")
				d.dirty.Store(true)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// changedForGraph: updates matter when labels or a Service's selector change;
// status updates (the controller's own condition among them) do not.
func changedForGraph(oldObj, obj any) bool {
	switch o := obj.(type) {
	case *corev1.Pod:
		old, ok := oldObj.(*corev1.Pod)
		return !ok || !equalMaps(old.Labels, o.Labels) || old.DeletionTimestamp != o.DeletionTimestamp
	case *corev1.Service:
		old, ok := oldObj.(*corev1.Service)
		return !ok || !equalMaps(old.Spec.Selector, o.Spec.Selector)
	}
	return true
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (d *CycleDetector) rebuild(ctx context.Context) error {
	var pods corev1.PodList
	// The cache's own objects, not copies (a rebuild reads them only): ten
	// thousand pods copied once a second are a lot of garbage.
	if err := d.Cache.List(ctx, &pods, client.MatchingLabelsSelector{Selector: ManagedPods()}, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	var services corev1.ServiceList
	if err := d.Cache.List(ctx, &services, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	nodes := make([]depgraph.Pod, 0, len(pods.Items))
	seen := make(map[types.UID]struct{}, len(pods.Items))
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		seen[pod.UID] = struct{}{}
		if _, ok := d.ignored[pod.UID]; ok {
			continue
		}
		node, ok := d.parsed[pod.UID]
		if !ok {
			deps, _, err := d.Dependencies(pod)
			if err != nil || spec.CheckLimits(deps) != nil {
				// Past the caps a pod is not judged (TooManyDependencies); its
				// edges would cost every rebuild what its author chose.
				d.ignored[pod.UID] = struct{}{}
				continue
			}
			node = depgraph.PodFrom(pod, deps)
			d.parsed[pod.UID] = node
		}
		node.Labels = pod.Labels
		nodes = append(nodes, node)
	}
	for uid := range d.parsed {
		if _, ok := seen[uid]; !ok {
			delete(d.parsed, uid)
		}
	}
	for uid := range d.ignored {
		if _, ok := seen[uid]; !ok {
			delete(d.ignored, uid)
		}
	}
	svcs := make([]depgraph.Service, 0, len(services.Items))
	for _, s := range services.Items {
		svcs = append(svcs, depgraph.Service{Namespace: s.Namespace, Name: s.Name, Selector: s.Spec.Selector})
	}
	g := depgraph.Build(nodes, svcs)
	next := &detected{graph: g, cycles: g.Cycles()}
	prev := d.graph.Swap(next)

	var changed []types.NamespacedName
	for pod, c := range next.cycles {
		if prev == nil || prev.cycles[pod].Message() != c.Message() {
			changed = append(changed, pod)
		}
	}
	if prev != nil {
		for pod := range prev.cycles {
			if _, ok := next.cycles[pod]; !ok {
				changed = append(changed, pod)
			}
		}
	}
	if len(changed) > 0 {
		d.Log.Info("dependency cycles changed", "pods", len(changed), "podsInCycles", len(next.cycles))
		d.mu.Lock()
		wake := d.wake
		d.mu.Unlock()
		if wake != nil {
			wake(changed)
		}
	}
	return nil
}
