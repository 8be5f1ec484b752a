package kube_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(envtest.Environment{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// settle is how long a test is willing to wait for something that should happen
// within milliseconds; generous because CI machines are shared.
const settle = 20 * time.Second

// logSink collects log lines so tests can assert what a person would read.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, args)
	}, funcr.Options{Verbosity: 0})
}

// snapshot is a copy of the lines logged so far.
func (l *logSink) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

func (l *logSink) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

// newClient builds a resolver client as admin (watch allowed) with a poll interval
// so long that only a watch can resolve a dependency within the test's time.
func newClient(t *testing.T, o kube.Options) *kube.Client {
	t.Helper()
	if o.PollInterval == 0 {
		o.PollInterval = time.Hour
	}
	c, err := kube.NewClient(env.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waiting runs dep.Wait in the background and records its statuses.
type waiting struct {
	dep    resolve.Dependency
	cancel context.CancelFunc
	done   chan error

	mu       sync.Mutex
	statuses []resolve.Status
}

func start(t *testing.T, dep resolve.Dependency) *waiting {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &waiting{dep: dep, cancel: cancel, done: make(chan error, 1)}
	go func() {
		w.done <- dep.Wait(ctx, func(s resolve.Status) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.statuses = append(w.statuses, s)
		})
	}()
	t.Cleanup(cancel)
	return w
}

func (w *waiting) last() resolve.Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.statuses) == 0 {
		return resolve.Status{}
	}
	return w.statuses[len(w.statuses)-1]
}

// blocked asserts the dependency reports a reason containing want and has not
// returned.
func (w *waiting) blocked(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		select {
		case err := <-w.done:
			t.Fatalf("%s: returned %v while it should still block with %q", w.dep, err, want)
		default:
		}
		if s := w.last(); !s.Ready && strings.Contains(s.Reason, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: last status %+v, want a reason containing %q", w.dep, w.last(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Make sure it does not resolve right after reporting.
}

// stillBlocked asserts the dependency stays blocked for a short while.
func (w *waiting) stillBlocked(t *testing.T) {
	t.Helper()
	select {
	case err := <-w.done:
		t.Fatalf("%s: returned %v, want it to keep waiting (last status %+v)", w.dep, err, w.last())
	case <-time.After(300 * time.Millisecond):
	}
}

func (w *waiting) ready(t *testing.T) {
	t.Helper()
	select {
	case err := <-w.done:
		if err != nil {
			t.Fatalf("%s: %v, want ready", w.dep, err)
		}
	case <-time.After(settle):
		t.Fatalf("%s: still waiting after %s (last status %+v), want ready", w.dep, settle, w.last())
	}
}

func (w *waiting) fails(t *testing.T, want string) error {
	t.Helper()
	select {
	case err := <-w.done:
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: returned %v, want an error containing %q", w.dep, err, want)
		}
		return err
	case <-time.After(settle):
		t.Fatalf("%s: still waiting (last status %+v), want failure %q", w.dep, w.last(), want)
	}
	return nil
}
