package controller

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// What a release leaves for later (coalesce.go) goes out once the burst is
// over: when no reconcile is queued or under way. A controller that is never
// idle lets it out after maxDeferral all the same, queued behind every other
// reconcile.
const (
	// afterBurstPoll is how often the controller looks whether it is idle.
	afterBurstPoll = 50 * time.Millisecond
	// maxDeferral bounds how long a condition or Event waits for the
	// controller to become idle.
	maxDeferral = 30 * time.Second
	// deferredPriority queues the reconciles that write deferred conditions
	// behind everything else, the initial list's (handler.LowPriority)
	// included.
	deferredPriority = 2 * handler.LowPriority
)

// afterBursts lets out, until ctx ends, what releases left for after the
// burst: the Events of the releases, then the deferred conditions, a few
// reconciles at a time so that a new burst overtakes them.
func (r *Reconciler) afterBursts(ctx context.Context) {
	t := time.NewTicker(afterBurstPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		idle := r.idle()
		now := r.opts.Now()
		for _, g := range r.releases.take(now, idle, maxDeferral) {
			r.recordRelease(g)
		}
		r.flushConditions(r.deferred.take(r.flushBatch(), now, idle, maxDeferral))
	}
}

// idle: no reconcile is queued (ready to run; those due later do not count)
// or under way.
func (r *Reconciler) idle() bool {
	r.mu.Lock()
	q := r.queue
	r.mu.Unlock()
	return q != nil && q.Len() == 0 && r.active.Load() == 0
}

// flushBatch is how many deferred conditions are queued at once: enough for
// every worker, few enough that a burst behind them waits little.
func (r *Reconciler) flushBatch() int { return 4 * r.opts.Workers }

// flushConditions queues the pods' reconciles that write their deferred
// condition: each decides again, so that what is written is what holds then,
// and nothing when the pod has it already or is gone.
func (r *Reconciler) flushConditions(pods []types.NamespacedName) {
	if len(pods) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range pods {
		r.flush[p] = true
	}
	if pq, ok := r.queue.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
		for _, p := range pods {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(deferredPriority)}, reconcile.Request{NamespacedName: p})
		}
		return
	}
	for _, p := range pods {
		r.queue.Add(reconcile.Request{NamespacedName: p})
	}
}

// recordRelease records the Event of a group of releases, regarding its
// first pod: it lives in the pods' namespace and names only their own
// dependencies.
func (r *Reconciler) recordRelease(g *releaseGroup) {
	first := g.pods[0]
	regarding := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: g.key.namespace, Name: first.name, UID: first.uid},
	}
	r.recorder.Eventf(regarding, nil, g.key.eventType, g.key.reason, "CheckDependencies", "%s", g.note())
}
