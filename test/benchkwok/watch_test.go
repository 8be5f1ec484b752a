package benchkwok

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
)

// podState is what the harness saw of one pod: the first moment it was seen
// without the gate, bound, Ready (zero: not yet).
type podState struct {
	gated     bool // the last event showed the scheduling gate
	evaluated bool // it carries the controller's condition
	phase     corev1.PodPhase
	node      string
	released  time.Time
	bound     time.Time
	ready     time.Time
}

// podWatch follows the pods of one namespace with a single watch and time-stamps
// what each pod went through. Waiting on it costs the API server nothing.
type podWatch struct {
	stop context.CancelFunc
	done chan struct{}

	mu   sync.Mutex
	pods map[string]*podState
	err  error // the watch ended early
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
			if pod, ok := ev.Object.(*corev1.Pod); ok {
				w.observe(pod, now)
			}
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
	s := w.pods[pod.Name]
	if s == nil {
		s = &podState{}
		w.pods[pod.Name] = s
	}
	s.gated, s.phase, s.node = hasGate(pod), pod.Status.Phase, pod.Spec.NodeName
	if !s.gated && s.released.IsZero() {
		s.released = now
	}
	if s.node != "" && s.bound.IsZero() {
		s.bound = now
	}
	for _, c := range pod.Status.Conditions {
		switch {
		case c.Type == api.ConditionType:
			s.evaluated = true
		case c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && s.ready.IsZero():
			s.ready = now
		}
	}
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
// error says how many did not, names one and gives the pods' states and the
// diagnosis of every process involved. It gives up early when one of them ended.
func (w *podWatch) waitFor(names []string, timeout time.Duration, what string, procs diagnoser, ok func(*podState) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		n, missing := w.count(names, ok)
		if n == len(names) {
			return nil
		}
		w.mu.Lock()
		err := w.err
		w.mu.Unlock()
		if err == nil {
			err = procs.running()
		}
		if err == nil && time.Now().After(deadline) {
			err = fmt.Errorf("timed out after %s", timeout)
		}
		if err != nil {
			return fmt.Errorf("%d of %d pods are %s, not %s: %w\npods: %s\n%s", n, len(names), what, missing, err, w.summary(names), procs.diagnosis())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// summary counts the pods of names by what the watch saw of them.
func (w *podWatch) summary(names []string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	counts := map[string]int{}
	for _, name := range names {
		s := w.pods[name]
		if s == nil {
			counts["never seen"]++
			continue
		}
		phase := string(s.phase)
		if phase == "" {
			phase = "no phase"
		}
		counts["phase "+phase]++
		switch {
		case s.gated:
			counts["gated"]++
		case s.node == "":
			counts["ungated, unbound"]++
		default:
			counts["bound"]++
		}
		if s.evaluated {
			counts["evaluated by the controller"]++
		}
		if !s.ready.IsZero() {
			counts["Ready"]++
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, counts[k])
	}
	return strings.Join(parts, ", ")
}

// times is pick of each pod of names, in order.
func (w *podWatch) times(names []string, pick func(*podState) time.Time) []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]time.Time, len(names))
	for i, name := range names {
		if s := w.pods[name]; s != nil {
			out[i] = pick(s)
		}
	}
	return out
}

func seen(s *podState) bool            { return s.gated || !s.released.IsZero() }
func evaluated(s *podState) bool       { return s.evaluated }
func isReleased(s *podState) bool      { return !s.released.IsZero() }
func isBound(s *podState) bool         { return !s.bound.IsZero() }
func isReady(s *podState) bool         { return !s.ready.IsZero() }
func releasedAt(s *podState) time.Time { return s.released }
func boundAt(s *podState) time.Time    { return s.bound }
func readyAt(s *podState) time.Time    { return s.ready }

// diagnoser is the processes a wait depends on.
type diagnoser []interface {
	Running() error
	Diagnosis() string
}

func (d diagnoser) running() error {
	for _, p := range d {
		if err := p.Running(); err != nil {
			return err
		}
	}
	return nil
}

func (d diagnoser) diagnosis() string {
	parts := make([]string, len(d))
	for i, p := range d {
		parts[i] = p.Diagnosis()
	}
	return strings.Join(parts, "\n")
}
