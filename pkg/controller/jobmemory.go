package controller

import (
	"container/heap"
	"container/list"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
)

// A Job that succeeded may be deleted soon after: by its ttlSecondsAfterFinished,
// by a Helm hook's delete policy, or by hand. The resolver then finds no Job and
// waits for ever (as the original image did), and so would a gated pod created
// after the deletion. The controller remembers instead every Job its informer saw
// succeed (by the resolver's rule, kube.JobsReadiness), and a pod's dependency on
// a Job by name that no longer exists is satisfied by the remembered completion
// of that name, when:
//
//  1. The Job and the pod belong to the same release. The labels that name a
//     release (ReleaseLabels: those Helm charts and openstack-helm's
//     helm-toolkit put on a chart's Jobs and pods alike, and Argo CD's tracking
//     label) must agree: each of them that either the Job or the pod carries,
//     the other carries too, with the same value. A Job of another instance, of
//     another chart version or of another application version thus does not
//     satisfy the pod, nor does a Job labelled where the pod is not. When neither
//     carries any of them, the name alone decides.
//  2. The pod is at least the grace period old (Options.RememberedJobGrace, 30 s
//     by default). A release that does not change those labels (an upgrade with
//     new values only) re-creates its Job under the same name, but Helm applies
//     the Job after the workloads, or in a post-upgrade hook: the new pods exist
//     for a moment while only the old completion is known. Waiting out the grace
//     gives the new Job the time to appear, and a Job of that name that appears
//     replaces the memory at once (below). The pod's age is counted from its
//     creationTimestamp, in whole seconds: the wait is between the grace less
//     one second and the grace.
//
// A Job seen again under the same name with another uid replaces the memory:
// while it runs it is what counts, and only its own completion is remembered
// next. Label-selected Job dependencies are not helped: all their Jobs must
// exist, as in the resolver.
//
// The memory lives in the controller's process, for the life of the leader's
// informers, and is bounded, fairly between namespaces, since anyone who may
// create Jobs in one namespace can have it remember thousands: a namespace holds
// at most MaxRememberedJobsPerNamespace completions (past it, its own first
// remembered is forgotten), and all together at most MaxRememberedJobs (past it,
// the first remembered of the namespace holding the most is forgotten; of those
// holding as many, the one whose first remembered is oldest). A namespace thus
// forgets for another only while it holds as many as any other: one holding less
// than its share (MaxRememberedJobs over the namespaces remembered) never does,
// however many Jobs the others run. A controller that restarts, or becomes the
// leader, knows only the Jobs that exist then: a pod waiting for a Job deleted
// before it then waits, which is the resolver's behaviour too. Nothing is
// persisted.

// ReleaseLabels are the labels whose values tell a release (an instance of a
// chart at a version) apart, compared between a remembered Job and a pod.
var ReleaseLabels = []string{
	"app.kubernetes.io/instance", // Helm's release name in most charts; Argo CD's application
	"release_group",              // openstack-helm's release (helm-toolkit's metadata labels)
	"helm.sh/chart",              // chart name and version
	"app.kubernetes.io/version",  // the application's version
}

// MaxRememberedJobs bounds the completions a controller remembers. An entry holds
// the Job's namespace, name, uid, release labels and completion time, a few
// hundred bytes: at most a few MiB.
const MaxRememberedJobs = 10000

// MaxRememberedJobsPerNamespace bounds the completions remembered of one
// namespace: a tenth of MaxRememberedJobs. Charts run a few dozen Jobs each, but
// every run of a CronJob is a Job of its own: one running every 5 minutes, in a
// namespace that runs nothing else, is remembered back about 3.5 days.
const MaxRememberedJobsPerNamespace = 1000

// DefaultRememberedJobGrace is how old a pod must be before a remembered
// completion counts for it (see above).
const DefaultRememberedJobGrace = 30 * time.Second

// completion is a Job seen succeeded.
type completion struct {
	key types.NamespacedName
	uid types.UID
	// release holds the Job's ReleaseLabels it carries, and only those.
	release map[string]string
	// at is when it succeeded: status.completionTime, else the time of its
	// Complete condition, else when the controller saw it succeeded.
	at time.Time
}

// remembered is a completion in the memory: seq orders them, first remembered first.
type remembered struct {
	completion
	seq uint64
}

// jobMemory holds the completions, by namespace and name, each namespace's in
// the order remembered.
type jobMemory struct {
	max int
	// perNamespace bounds the completions of one namespace: the least of max and
	// MaxRememberedJobsPerNamespace.
	perNamespace int
	now          func() time.Time

	mu         sync.Mutex
	byName     map[types.NamespacedName]*list.Element // of *remembered, in its namespace's order
	namespaces map[string]*namespaceJobs              // those with completions
	// fullest orders the namespaces with completions: the one to forget from
	// first is at the top.
	fullest namespaceHeap
	size    int
	seq     uint64
}

// namespaceJobs are the completions of one namespace.
type namespaceJobs struct {
	order *list.List // of *remembered, first remembered first; never empty
	index int        // in fullest
}

// newJobMemory remembers at most bound completions, and of one namespace the
// least of bound and MaxRememberedJobsPerNamespace.
func newJobMemory(bound int, now func() time.Time) *jobMemory {
	return &jobMemory{
		max: bound, perNamespace: max(1, min(bound, MaxRememberedJobsPerNamespace)), now: now,
		byName: map[types.NamespacedName]*list.Element{}, namespaces: map[string]*namespaceJobs{},
	}
}

// observe takes a Job as its informer gives it: added or updated, or, when
// deleted, as last seen (from a tombstone possibly older than its end). A Job
// deleted as soon as it succeeded (ttlSecondsAfterFinished: 0) is remembered
// from its deletion, which carries its final state.
func (m *jobMemory) observe(job *unstructured.Unstructured) {
	key := types.NamespacedName{Namespace: job.GetNamespace(), Name: job.GetName()}
	st, _ := kube.JobsReadiness([]*unstructured.Unstructured{job})
	m.mu.Lock()
	defer m.mu.Unlock()
	e, known := m.byName[key]
	if known && e.Value.(*remembered).uid == job.GetUID() {
		// Seen succeeded before; a Job does not un-succeed, and a tombstone may
		// be older than the completion.
		e.Value.(*remembered).release = releaseOf(job.GetLabels())
		return
	}
	if known {
		// Another Job of that name: the remembered one is gone and this one
		// counts from now on.
		m.forget(e)
	}
	if !st.Ready {
		return
	}
	m.remember(completion{key: key, uid: job.GetUID(), release: releaseOf(job.GetLabels()), at: completedAt(job, m.now)})
}

// remember adds c, not yet remembered, as the last remembered, then forgets what
// is past the bounds: the first remembered of c's namespace past perNamespace,
// then, past max, the first remembered of the namespace at the top of fullest.
// Each costs O(log n) in the number n of namespaces.
func (m *jobMemory) remember(c completion) {
	m.seq++
	ns := m.namespaces[c.key.Namespace]
	if ns == nil {
		ns = &namespaceJobs{order: list.New()}
		m.namespaces[c.key.Namespace] = ns
		m.byName[c.key] = ns.order.PushBack(&remembered{completion: c, seq: m.seq})
		heap.Push(&m.fullest, ns)
	} else {
		m.byName[c.key] = ns.order.PushBack(&remembered{completion: c, seq: m.seq})
		heap.Fix(&m.fullest, ns.index)
	}
	m.size++
	if ns.order.Len() > m.perNamespace {
		m.forget(ns.order.Front()) // never c: the namespace holds two at least
	}
	for m.size > m.max {
		m.forget(m.fullest[0].order.Front())
	}
}

// forget removes e, a remembered completion.
func (m *jobMemory) forget(e *list.Element) {
	key := e.Value.(*remembered).key
	ns := m.namespaces[key.Namespace]
	ns.order.Remove(e)
	delete(m.byName, key)
	m.size--
	if ns.order.Len() == 0 {
		heap.Remove(&m.fullest, ns.index)
		delete(m.namespaces, key.Namespace)
		return
	}
	heap.Fix(&m.fullest, ns.index)
}

// lookup returns the remembered completion of the Job namespace/name.
func (m *jobMemory) lookup(namespace, name string) (completion, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byName[types.NamespacedName{Namespace: namespace, Name: name}]
	if !ok {
		return completion{}, false
	}
	return e.Value.(*remembered).completion, true
}

func (m *jobMemory) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.size
}

// namespaceHeap is a heap (container/heap) of the namespaces with completions,
// the one to forget from first at the top: the one holding the most, and of
// those holding as many, the one whose first remembered is oldest.
type namespaceHeap []*namespaceJobs

func (h namespaceHeap) Len() int { return len(h) }

func (h namespaceHeap) Less(i, j int) bool {
	a, b := h[i].order, h[j].order
	if a.Len() != b.Len() {
		return a.Len() > b.Len()
	}
	return a.Front().Value.(*remembered).seq < b.Front().Value.(*remembered).seq
}

func (h namespaceHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *namespaceHeap) Push(x any) {
	ns := x.(*namespaceJobs)
	ns.index = len(*h)
	*h = append(*h, ns)
}

func (h *namespaceHeap) Pop() any {
	old := *h
	ns := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	ns.index = -1
	return ns
}

func releaseOf(labels map[string]string) map[string]string {
	var out map[string]string
	for _, k := range ReleaseLabels {
		if v, ok := labels[k]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

func completedAt(job *unstructured.Unstructured, now func() time.Time) time.Time {
	if s, ok, _ := unstructured.NestedString(job.Object, "status", "completionTime"); ok {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t
		}
	}
	conds, _, _ := unstructured.NestedSlice(job.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != "Complete" || m["status"] != "True" {
			continue
		}
		if s, ok := m["lastTransitionTime"].(string); ok {
			if t, err := time.Parse(time.RFC3339, s); err == nil {
				return t
			}
		}
	}
	return now()
}

// rememberedVerdict is what a remembered completion means for one pod.
type rememberedVerdict struct {
	// ready: the completion satisfies the pod; note then says so, for the
	// condition.
	ready bool
	note  string
	// reason is why it does not (yet), in the words of the condition.
	reason string
	// recheck, when positive, is when it will: the pod's grace runs out.
	recheck time.Duration
}

// judgeRemembered decides whether c, the completion of a Job that no longer
// exists, satisfies the pod with podLabels created at created, at now (the rule
// is at the top of this file).
func judgeRemembered(c completion, podLabels map[string]string, created, now time.Time, grace time.Duration) rememberedVerdict {
	succeeded := "succeeded at " + c.at.UTC().Format(time.RFC3339) + " (deleted since)"
	if k, jobValue, podValue, differ := releaseDiffers(c.release, podLabels); differ {
		return rememberedVerdict{reason: fmt.Sprintf("not found; the job of that name that %s was of another release: %s is %s on the job, %s on this pod",
			succeeded, k, shownLabel(jobValue), shownLabel(podValue))}
	}
	if until := created.Add(grace); now.Before(until) {
		return rememberedVerdict{
			reason: succeeded + "; that counts from " + until.UTC().Format(time.RFC3339) +
				" (the pod's creation + " + grace.String() + ") unless a new job of that name appears first",
			recheck: until.Sub(now),
		}
	}
	return rememberedVerdict{ready: true, note: "job " + c.key.String() + " " + succeeded}
}

// releaseDiffers finds the first of ReleaseLabels on which the Job's and the
// pod's labels disagree (one unset counts as a difference); nil values are unset.
func releaseDiffers(job, pod map[string]string) (key string, jobValue, podValue *string, differ bool) {
	for _, k := range ReleaseLabels {
		jv, jok := job[k]
		pv, pok := pod[k]
		if jok != pok || jv != pv {
			if jok {
				jobValue = &jv
			}
			if pok {
				podValue = &pv
			}
			return k, jobValue, podValue, true
		}
	}
	return "", nil, nil, false
}

func shownLabel(v *string) string {
	if v == nil {
		return "unset"
	}
	return fmt.Sprintf("%q", safetext.Truncate(*v, 63))
}
