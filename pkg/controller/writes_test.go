package controller

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// writeLog records, in the order they are sent, the controller's writes into
// one namespace (the requests other than GET, LIST and WATCH).
type writeLog struct {
	namespace string
	mu        sync.Mutex
	writes    []write
}

// write is one request: its method, what it names below the namespace
// ("pods/app", "pods/app/status", "events"), and its body.
type write struct {
	method, path, body string
}

func (w write) String() string { return w.method + " " + w.path }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// wrap is a rest.Config's WrapTransport that records into l.
func (l *writeLog) wrap(next http.RoundTripper) http.RoundTripper {
	prefix := "/namespaces/" + l.namespace + "/"
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		_, below, ok := strings.Cut(req.URL.Path, prefix)
		if !ok || req.Method == http.MethodGet {
			return next.RoundTrip(req)
		}
		var body []byte
		if req.Body != nil {
			var err error
			if body, err = io.ReadAll(req.Body); err != nil {
				return nil, err
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		l.mu.Lock()
		l.writes = append(l.writes, write{method: req.Method, path: below, body: string(body)})
		l.mu.Unlock()
		return next.RoundTrip(req)
	})
}

func (l *writeLog) snapshot() []write {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]write(nil), l.writes...)
}

// startCounted runs the controller with its writes into ns recorded.
func startCounted(t *testing.T, ns string, set func(*Options)) (*Reconciler, *writeLog) {
	t.Helper()
	log := &writeLog{namespace: ns}
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(log.wrap)
	return startControllerWith(t, cfg, nil, set), log
}

// followedIn counts the pods of ns the controller has reconciled and follows.
func followedIn(r *Reconciler, ns string) int {
	r.states.mu.Lock()
	defer r.states.mu.Unlock()
	n := 0
	for p := range r.states.pods {
		if p.Namespace == ns {
			n++
		}
	}
	return n
}

// waitFor polls ok until it holds, and fails the test with what if it does not.
func waitFor(t *testing.T, what string, ok func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(2 * settle)
	for {
		done, state := ok()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s: %s", what, 2*settle, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var releasedCount = regexp.MustCompile(`^released (\d+) pods? `)

// A burst of gated pods released at once costs one write each, the gate's
// removal, before anything else is written: the Ready conditions come after
// the burst, and one Event counts the pods instead of one per pod. Released
// within the grace, none of them ever got a Waiting condition.
func TestReleaseBurstWritesTheGatesFirst(t *testing.T) {
	const n = 200
	ns := env.Namespace(t)
	r, log := startCounted(t, ns, func(o *Options) { o.WaitingGrace = time.Hour })
	for i := range n {
		createPod(t, managedPod(t, ns, fmt.Sprintf("app-%03d", i), map[string]string{"DEPENDENCY_SERVICE": "db"}, inject.SchedulingGate))
	}
	waitFor(t, "the controller following every pod", func() (bool, string) {
		got := followedIn(r, ns)
		return got == n, fmt.Sprintf("%d of %d followed", got, n)
	})
	if w := log.snapshot(); len(w) != 0 {
		t.Fatalf("writes while the pods wait within their grace: %v", w)
	}

	readySlice(t, ns, "db")
	ctx := context.Background()
	waitFor(t, "every pod released and marked Ready", func() (bool, string) {
		list, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for i := range list.Items {
			if p := &list.Items[i]; gateIndex(p) < 0 && hasCondition(corev1.ConditionTrue, ReasonReady, "")(p) {
				ready++
			}
		}
		return ready == n, fmt.Sprintf("%d of %d", ready, n)
	})
	var notes []string
	waitFor(t, "the release's Events counting every pod", func() (bool, string) {
		list, err := env.Client.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		notes = notes[:0]
		counted := 0
		for _, e := range list.Items {
			notes = append(notes, e.Reason+": "+e.Note)
			if m := releasedCount.FindStringSubmatch(e.Note); e.Reason == "DependenciesReady" && m != nil {
				k, _ := strconv.Atoi(m[1])
				counted += k
			}
		}
		return counted == n, fmt.Sprintf("%d pods counted in %q", counted, notes)
	})
	if len(notes) >= n/10 {
		t.Errorf("%d Events for %d pods released at once; want them counted in a few: %q", len(notes), n, notes)
	}
	for _, note := range notes {
		if !strings.Contains(note, "waiting for service "+ns+"/db") {
			t.Errorf("Event %q does not name what the pods waited for", note)
		}
	}

	writes := log.snapshot()
	gates, statuses := map[string]int{}, map[string]int{}
	lastGate, firstOther := -1, -1
	for i, w := range writes {
		switch {
		case w.method == http.MethodPatch && strings.HasPrefix(w.path, "pods/") && !strings.HasSuffix(w.path, "/status"):
			gates[w.path]++
			lastGate = i
		case w.method == http.MethodPatch && strings.HasSuffix(w.path, "/status"):
			statuses[w.path]++
			if strings.Contains(w.body, `"reason":"`+ReasonWaiting+`"`) {
				t.Errorf("a Waiting condition written for a pod released within its grace: %s %s", w, w.body)
			}
			if firstOther < 0 {
				firstOther = i
			}
		case strings.HasPrefix(w.path, "events"):
			if firstOther < 0 {
				firstOther = i
			}
		default:
			t.Errorf("unexpected write %s", w)
		}
	}
	for i := range n {
		path := fmt.Sprintf("pods/app-%03d", i)
		if gates[path] != 1 || statuses[path+"/status"] != 1 {
			t.Errorf("%s: %d gate patches and %d status patches; want 1 and 1", path, gates[path], statuses[path+"/status"])
		}
	}
	if firstOther >= 0 && firstOther < lastGate {
		t.Errorf("write %d (%s) went before the last gate's removal (write %d): the release is not the only write of the burst",
			firstOther, writes[firstOther], lastGate)
	}
}

// A gated pod that waits longer than the grace gets its Waiting condition, and
// then its Ready one; one released within the grace never gets a Waiting one.
func TestWaitingConditionAfterTheGrace(t *testing.T) {
	for _, tc := range []struct {
		name    string
		grace   time.Duration
		waiting bool // the pod's Waiting condition is written
	}{
		{"released within the grace: no Waiting condition", time.Hour, false},
		{"waiting longer: its Waiting condition", 200 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.Namespace(t)
			r, log := startCounted(t, ns, func(o *Options) { o.WaitingGrace = tc.grace })
			createPod(t, managedPod(t, ns, "app", map[string]string{"DEPENDENCY_SERVICE": "db"}, inject.SchedulingGate))
			if tc.waiting {
				waitPod(t, ns, "app", "condition Waiting", hasCondition(corev1.ConditionFalse, ReasonWaiting, "service "+ns+"/db: no endpoints"))
			} else {
				waitFor(t, "the controller following the pod", func() (bool, string) { return followedIn(r, ns) == 1, "" })
			}
			readySlice(t, ns, "db")
			waitPod(t, ns, "app", "released and Ready", func(p *corev1.Pod) bool {
				return gateIndex(p) < 0 && hasCondition(corev1.ConditionTrue, ReasonReady, "")(p)
			})
			waited := false
			for _, w := range log.snapshot() {
				if w.path == "pods/app/status" && strings.Contains(w.body, `"reason":"`+ReasonWaiting+`"`) {
					waited = true
				}
			}
			if waited != tc.waiting {
				t.Errorf("Waiting condition written: %v; want %v (writes %v)", waited, tc.waiting, log.snapshot())
			}
		})
	}
}

// The Ready conditions of released pods wait while the controller has work:
// with a reconcile under way (held here), the pods are released and their
// conditions only noted; once it ends, they are written.
func TestReadyConditionsWaitForTheBurst(t *testing.T) {
	const n = 20
	ns := env.Namespace(t)
	r, log := startCounted(t, ns, func(o *Options) { o.WaitingGrace = time.Hour })
	for i := range n {
		createPod(t, managedPod(t, ns, fmt.Sprintf("app-%02d", i), map[string]string{"DEPENDENCY_SERVICE": "db"}, inject.SchedulingGate))
	}
	waitFor(t, "the controller following every pod", func() (bool, string) {
		got := followedIn(r, ns)
		return got == n, fmt.Sprintf("%d of %d followed", got, n)
	})

	r.active.Add(1) // a reconcile of another pod, as far as the controller can tell
	busy := true
	defer func() {
		if busy {
			r.active.Add(-1)
		}
	}()
	readySlice(t, ns, "db")
	waitFor(t, "every pod released and its Ready condition noted for later", func() (bool, string) {
		return r.deferred.len() == n, fmt.Sprintf("%d of %d noted", r.deferred.len(), n)
	})
	for _, w := range log.snapshot() {
		if strings.HasSuffix(w.path, "/status") || strings.HasPrefix(w.path, "events") {
			t.Errorf("%s while the controller was busy; want only the gates' patches", w)
		}
	}

	r.active.Add(-1)
	busy = false
	for i := range n {
		waitPod(t, ns, fmt.Sprintf("app-%02d", i), "condition Ready once the controller is idle", hasCondition(corev1.ConditionTrue, ReasonReady, ""))
	}
}
