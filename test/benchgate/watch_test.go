package benchgate

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// conditionType is the pod condition the controller keeps on every managed pod;
// a pod that carries it has been evaluated at least once.
const conditionType = api.ConditionType

// podState is what the harness saw of one pod.
type podState struct {
	gated     bool      // the last event showed the scheduling gate
	released  time.Time // first event without the gate; zero while gated
	regated   int       // events with the gate after one without: never, as a removed gate cannot come back
	condition *corev1.PodCondition
}

// podWatch follows the pods of one namespace with a single watch and time-stamps
// the first event of each pod without the scheduling gate. Waiting on it costs
// the API server nothing: the waits read the watch's state.
type podWatch struct {
	stop context.CancelFunc
	done chan struct{}

	mu     sync.Mutex
	pods   map[string]*podState
	events int   // received: the harness's share of the API server's watch events
	err    error // the watch ended early
}

// watchPods starts watching ns from now on.
func watchPods(ctx context.Context, client kubernetes.Interface, ns string) (*podWatch, error) {
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s to start the watch: %w", ns, err)
	}
	ctx, stop := context.WithCancel(ctx)
	rw, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, podWatcher{client, ns})
	if err != nil {
		stop()
		return nil, fmt.Errorf("watching the pods of %s: %w", ns, err)
	}
	w := &podWatch{stop: stop, done: make(chan struct{}), pods: map[string]*podState{}}
	go w.run(rw)
	return w, nil
}

// podWatcher is the pods of one namespace, for the RetryWatcher, which resumes
// from the last resource version when the API server ends a watch.
type podWatcher struct {
	client kubernetes.Interface
	ns     string
}

func (p podWatcher) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return p.client.CoreV1().Pods(p.ns).Watch(ctx, opts)
}

func (w *podWatch) run(rw *watchtools.RetryWatcher) {
	defer close(w.done)
	defer rw.Stop()
	for ev := range rw.ResultChan() {
		now := time.Now()
		switch ev.Type {
		case watch.Added, watch.Modified:
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			w.observe(pod, now)
		case watch.Error:
			w.mu.Lock()
			w.err = fmt.Errorf("the pod watch failed: %v", ev.Object)
			w.mu.Unlock()
			return
		}
	}
}

func (w *podWatch) observe(pod *corev1.Pod, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events++
	s := w.pods[pod.Name]
	if s == nil {
		s = &podState{}
		w.pods[pod.Name] = s
	}
	s.gated = hasGate(pod)
	if s.gated && !s.released.IsZero() {
		s.regated++
	}
	if !s.gated && s.released.IsZero() {
		s.released = now
	}
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == conditionType {
			c := pod.Status.Conditions[i]
			s.condition = &c
		}
	}
}

func hasGate(pod *corev1.Pod) bool {
	for _, g := range pod.Spec.SchedulingGates {
		if g.Name == inject.SchedulingGate {
			return true
		}
	}
	return false
}

func (w *podWatch) close() {
	w.stop()
	<-w.done
}

// count is how many of names satisfy ok; also the first that does not, for
// diagnosis.
func (w *podWatch) count(names []string, ok func(*podState) bool) (n int, missing string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, name := range names {
		if s := w.pods[name]; s != nil && ok(s) {
			n++
		} else if missing == "" {
			missing = name
		}
	}
	return n, missing
}

// waitFor polls the watch's state until every pod of names satisfies ok; the
// error says how many did not, and names one. It gives up early when alive
// (nil: always alive) reports that the process doing the work is gone.
func (w *podWatch) waitFor(names []string, timeout time.Duration, what string, alive func() error, ok func(*podState) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if alive != nil {
			if err := alive(); err != nil {
				n, _ := w.count(names, ok)
				return fmt.Errorf("%d of %d pods are %s, but %w", n, len(names), what, err)
			}
		}
		n, missing := w.count(names, ok)
		if n == len(names) {
			return nil
		}
		w.mu.Lock()
		err := w.err
		w.mu.Unlock()
		if err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s, %d of %d pods are %s; %s is not", timeout, n, len(names), what, missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// released is the release time of each pod of names (zero when not released).
func (w *podWatch) released(names []string) []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]time.Time, len(names))
	for i, name := range names {
		if s := w.pods[name]; s != nil {
			out[i] = s.released
		}
	}
	return out
}

func (w *podWatch) received() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.events
}

// state is a copy of what the watch saw of one pod.
func (w *podWatch) state(name string) (podState, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.pods[name]
	if !ok {
		return podState{}, false
	}
	return *s, true
}

func seenGated(s *podState) bool  { return s.gated || !s.released.IsZero() }
func evaluated(s *podState) bool  { return s.condition != nil }
func isReleased(s *podState) bool { return !s.released.IsZero() }
func markedReady(s *podState) bool {
	return s.condition != nil && s.condition.Status == corev1.ConditionTrue
}
