package controller

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// One write per released pod: the gate's removal is the only write on the
// release path. What else a release used to write is held back or coalesced
// (the pure parts are here, the goroutine that lets them out in afterburst.go):
//
//   - a gated pod's Waiting condition waits for Options.WaitingGrace from the
//     pod's creation or from when this process first saw it waiting: a pod
//     released sooner never gets one (waitingHeld);
//   - the Ready condition of a released pod is written after the burst, when
//     no reconcile is queued or running, by a reconcile that decides it again
//     (deferredConditions), so what is written is not stale;
//   - the Events of releases are one per namespace and set of dependencies,
//     counting the pods, instead of one per pod (releaseLog).

// DefaultWaitingGrace is how long a gated pod may wait before its Waiting
// condition is written: a pod released within it never gets one.
const DefaultWaitingGrace = time.Second

// waitingHeld is how long the condition want of a pod is still held back; 0:
// write it now. Held is only the first condition of a gated pod that waits
// (current nil, want not True), until grace has passed since since (the later
// of the pod's creation and when this process first saw it waiting).
func waitingHeld(current *corev1.PodCondition, want corev1.PodCondition, gated bool, since, now time.Time, grace time.Duration) time.Duration {
	if !gated || current != nil || want.Status == corev1.ConditionTrue || grace <= 0 {
		return 0
	}
	return max(since.Add(grace).Sub(now), 0)
}

// deferredAfterRelease tells whether the condition want of a pod is left for
// after the burst: the Ready condition of a pod whose gate is gone.
func deferredAfterRelease(want corev1.PodCondition, released bool) bool {
	return released && want.Status == corev1.ConditionTrue
}

// deferredConditions are the pods whose condition write waits for the end of
// the burst, with when each was first deferred.
type deferredConditions struct {
	mu    sync.Mutex
	since map[types.NamespacedName]time.Time
}

func newDeferredConditions() *deferredConditions {
	return &deferredConditions{since: map[types.NamespacedName]time.Time{}}
}

// add defers the pod's condition; a pod deferred already keeps its time.
func (d *deferredConditions) add(pod types.NamespacedName, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.since[pod]; !ok {
		d.since[pod] = now
	}
}

func (d *deferredConditions) remove(pod types.NamespacedName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.since, pod)
}

func (d *deferredConditions) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.since)
}

// take removes and returns, oldest first, at most n pods whose write is due:
// every one when idle, otherwise only those deferred for maxWait already (so
// that a controller never idle still writes them, at the lowest priority).
func (d *deferredConditions) take(n int, now time.Time, idle bool, maxWait time.Duration) []types.NamespacedName {
	d.mu.Lock()
	defer d.mu.Unlock()
	var due []types.NamespacedName
	for pod, at := range d.since {
		if idle || now.Sub(at) >= maxWait {
			due = append(due, pod)
		}
	}
	slices.SortFunc(due, func(a, b types.NamespacedName) int {
		if c := d.since[a].Compare(d.since[b]); c != 0 {
			return c
		}
		return strings.Compare(a.String(), b.String())
	})
	if len(due) > n {
		due = due[:n]
	}
	for _, pod := range due {
		delete(d.since, pod)
	}
	return due
}

// podRef names a released pod in its release's Event.
type podRef struct {
	name string
	uid  types.UID
}

// releaseKey groups releases into one Event: the pods' namespace (where the
// Event lives; it names no pod nor dependency of another), the Event's type
// and reason, and what the pods waited for, in the words of their own
// dependencies (or, for an optional release, what still blocked).
type releaseKey struct {
	namespace, eventType, reason, what string
}

// releaseGroup is one Event to be: the pods released, the first of which the
// Event regards, and when the first was.
type releaseGroup struct {
	key   releaseKey
	first time.Time
	pods  []podRef // the first maxNamedPods
	count int
}

// maxNamedPods bounds the pods an Event names; it counts them all.
const maxNamedPods = 5

// note is the Event's text, e.g. "released 200 pods waiting for service
// ns/db (removed scheduling gate entrypoint.io/dependencies): app-0, app-1,
// app-2, app-3, app-4 and 195 more".
func (g *releaseGroup) note() string {
	names := make([]string, len(g.pods))
	for i, p := range g.pods {
		names[i] = p.name
	}
	list := strings.Join(names, ", ")
	if more := g.count - len(g.pods); more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	pods := "pods"
	if g.count == 1 {
		pods = "pod"
	}
	return shown(fmt.Sprintf("released %d %s %s (removed scheduling gate %s): %s",
		g.count, pods, g.key.what, inject.SchedulingGate, list), maxEventNote)
}

// releaseLog gathers the releases until their Events are recorded.
type releaseLog struct {
	mu     sync.Mutex
	groups map[releaseKey]*releaseGroup
}

func newReleaseLog() *releaseLog { return &releaseLog{groups: map[releaseKey]*releaseGroup{}} }

func (l *releaseLog) add(key releaseKey, pod podRef, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.groups[key]
	if g == nil {
		g = &releaseGroup{key: key, first: now}
		l.groups[key] = g
	}
	g.count++
	if len(g.pods) < maxNamedPods {
		g.pods = append(g.pods, pod)
	}
}

// take removes and returns the groups due, oldest first: all when idle,
// otherwise those begun maxWait ago.
func (l *releaseLog) take(now time.Time, idle bool, maxWait time.Duration) []*releaseGroup {
	l.mu.Lock()
	defer l.mu.Unlock()
	var due []*releaseGroup
	for k, g := range l.groups {
		if idle || now.Sub(g.first) >= maxWait {
			due = append(due, g)
			delete(l.groups, k)
		}
	}
	slices.SortFunc(due, func(a, b *releaseGroup) int {
		if c := a.first.Compare(b.first); c != 0 {
			return c
		}
		return strings.Compare(a.key.namespace+"/"+a.key.what, b.key.namespace+"/"+b.key.what)
	})
	return due
}

// releaseReadyKey groups the pods of namespace released because what they
// waited for (the texts of their dependencies, in order) is ready.
func releaseReadyKey(namespace string, waitedFor []string) releaseKey {
	what := "waiting for " + joinBlockers(waitedFor)
	if len(waitedFor) == 0 {
		what = "with no dependency that needs no node"
	}
	return releaseKey{namespace: namespace, eventType: corev1.EventTypeNormal, reason: "DependenciesReady", what: what}
}

// releaseOptionalKey groups the pods of namespace released after optionalAfter
// without what still blocked.
func releaseOptionalKey(namespace string, optionalAfter time.Duration, still string) releaseKey {
	return releaseKey{namespace: namespace, eventType: corev1.EventTypeWarning, reason: "StartedWithoutDependencies",
		what: "after " + optionalAfter.String() + " (entrypoint.io/optional-after) without " + still}
}
