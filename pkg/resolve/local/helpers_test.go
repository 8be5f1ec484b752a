package local

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
)

// eventually is a generous bound for things that should happen within
// milliseconds; it only matters when the code under test is broken.
const eventually = 10 * time.Second

// fastPoll keeps tests quick without changing what they observe.
const fastPoll = 10 * time.Millisecond

// statusRecorder collects what a dependency reports.
type statusRecorder struct {
	mu       sync.Mutex
	statuses []resolve.Status
}

func (r *statusRecorder) report(s resolve.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses = append(r.statuses, s)
}

func (r *statusRecorder) all() []resolve.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]resolve.Status(nil), r.statuses...)
}

// waitForReason blocks until some reported reason contains want.
func (r *statusRecorder) waitForReason(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for time.Now().Before(deadline) {
		for _, s := range r.all() {
			if !s.Ready && strings.Contains(s.Reason, want) {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no reported reason contains %q; reported %+v", want, r.all())
}

// requireNoRepeats fails when two consecutive reports are equal: Wait must
// report changes, not every poll.
func (r *statusRecorder) requireNoRepeats(t *testing.T) {
	t.Helper()
	all := r.all()
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			t.Errorf("status %+v reported twice in a row; all: %+v", all[i], all)
		}
	}
}

// requireEndsReady fails unless the last report says ready.
func (r *statusRecorder) requireEndsReady(t *testing.T) {
	t.Helper()
	all := r.all()
	if len(all) == 0 || !all[len(all)-1].Ready {
		t.Errorf("last report is not ready; all: %+v", all)
	}
}

// startWait runs dep.Wait in the background.
func startWait(ctx context.Context, dep resolve.Dependency, rec *statusRecorder) <-chan error {
	done := make(chan error, 1)
	go func() { done <- dep.Wait(ctx, rec.report) }()
	return done
}

// waitResult returns what Wait returned, failing if it does not return.
func waitResult(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(eventually):
		t.Fatalf("Wait did not return within %s", eventually)
		return nil
	}
}

// requireCancelReturns cancels ctx and checks that Wait returns ctx's error.
func requireCancelReturns(t *testing.T, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	cancel()
	if err := waitResult(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel, Wait returned %v, want context.Canceled", err)
	}
}

// requireTerminal checks that err wraps resolve.ErrTerminal and mentions each
// of wants.
func requireTerminal(t *testing.T, err error, wants ...string) {
	t.Helper()
	if !errors.Is(err, resolve.ErrTerminal) {
		t.Fatalf("error %v does not wrap resolve.ErrTerminal", err)
	}
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
