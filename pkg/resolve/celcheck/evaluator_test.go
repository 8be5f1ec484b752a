package celcheck

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingEvaluator is an Evaluator whose evaluations are counted.
func countingEvaluator(maxInFlight, maxCached int, count *atomic.Int64) *Evaluator {
	e := NewEvaluator(maxInFlight, maxCached)
	e.eval = func(p *Program, ctx context.Context, object map[string]any) (bool, error) {
		count.Add(1)
		return p.Eval(ctx, object)
	}
	return e
}

func mustPrepare(t *testing.T, expression string) *Program {
	t.Helper()
	p, err := Prepare(expression)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The results are kept by expression and version, errors too, the last ones
// used; version "" keeps nothing.
func TestEvaluatorCaches(t *testing.T) {
	ready := mustPrepare(t, "object.status.ready == true")
	other := mustPrepare(t, "has(object.status)")
	missing := mustPrepare(t, "object.spec.paused == false")
	yes := map[string]any{"status": map[string]any{"ready": true}}
	no := map[string]any{"status": map[string]any{"ready": false}}
	type step struct {
		program   *Program
		version   string
		object    map[string]any
		want      bool
		wantErr   bool
		wantEvals int64 // evaluations so far
	}
	tests := []struct {
		name      string
		maxCached int
		steps     []step
	}{
		{"same version, evaluated once", 10, []step{
			{ready, "u/1", yes, true, false, 1},
			{ready, "u/1", no, true, false, 1}, // the same version is the same content
		}},
		{"a new version is evaluated", 10, []step{
			{ready, "u/1", yes, true, false, 1},
			{ready, "u/2", no, false, false, 2},
			{ready, "u/1", no, true, false, 2},
		}},
		{"another expression is evaluated", 10, []step{
			{ready, "u/1", yes, true, false, 1},
			{other, "u/1", yes, true, false, 2},
		}},
		{"no version, no cache", 10, []step{
			{ready, "", yes, true, false, 1},
			{ready, "", no, false, false, 2},
		}},
		{"errors are kept", 10, []step{
			{missing, "u/1", yes, false, true, 1},
			{missing, "u/1", yes, false, true, 1},
		}},
		{"the least recently used is forgotten", 2, []step{
			{ready, "u/1", yes, true, false, 1},
			{ready, "u/2", yes, true, false, 2},
			{ready, "u/1", no, true, false, 2}, // u/1 is now the most recent
			{ready, "u/3", yes, true, false, 3},
			{ready, "u/1", no, true, false, 3},
			{ready, "u/2", no, false, false, 4},
		}},
		{"no cache", 0, []step{
			{ready, "u/1", yes, true, false, 1},
			{ready, "u/1", yes, true, false, 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var evals atomic.Int64
			e := countingEvaluator(4, tt.maxCached, &evals)
			for i, s := range tt.steps {
				got, err := e.Eval(context.Background(), s.program, s.version, s.object)
				if got != s.want || (err != nil) != s.wantErr {
					t.Fatalf("step %d: Eval = %v, %v; want %v, error %v", i, got, err, s.want, s.wantErr)
				}
				if n := evals.Load(); n != s.wantEvals {
					t.Fatalf("step %d: %d evaluations, want %d", i, n, s.wantEvals)
				}
			}
		})
	}
}

// No more than maxInFlight evaluations run at once, however many callers.
func TestEvaluatorBoundsConcurrency(t *testing.T) {
	tests := []struct {
		name                 string
		maxInFlight, callers int
	}{
		{"one", 1, 8},
		{"three", 3, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inFlight, most, evals atomic.Int64
			release := make(chan struct{})
			e := NewEvaluator(tt.maxInFlight, 100)
			e.eval = func(p *Program, ctx context.Context, object map[string]any) (bool, error) {
				evals.Add(1)
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for m := most.Load(); n > m; m = most.Load() {
					if most.CompareAndSwap(m, n) {
						break
					}
				}
				<-release
				return p.Eval(ctx, object)
			}
			p := mustPrepare(t, "true")
			var wg sync.WaitGroup
			for i := range tt.callers {
				wg.Go(func() {
					// Distinct versions: none is a cached result of another.
					if ok, err := e.Eval(context.Background(), p, fmt.Sprintf("u/%d", i), nil); !ok || err != nil {
						t.Errorf("Eval = %v, %v", ok, err)
					}
				})
			}
			deadline := time.Now().Add(10 * time.Second)
			for inFlight.Load() < int64(tt.maxInFlight) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond) // time for a call past the bound to start, if it could
			close(release)
			wg.Wait()
			if m := most.Load(); m != int64(tt.maxInFlight) {
				t.Fatalf("at most %d evaluations at once, want %d", m, tt.maxInFlight)
			}
			if n := evals.Load(); n != int64(tt.callers) {
				t.Fatalf("%d evaluations, want %d", n, tt.callers)
			}
		})
	}
}

// A caller waiting for a turn stops with its context; its error is not kept.
func TestEvaluatorHonoursContext(t *testing.T) {
	var evals atomic.Int64
	e := countingEvaluator(1, 10, &evals)
	p := mustPrepare(t, "true")
	e.slots <- struct{}{} // the one turn is taken
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := e.Eval(ctx, p, "u/1", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Eval waiting for a turn = %v, want the context's deadline", err)
	}
	<-e.slots
	if ok, err := e.Eval(context.Background(), p, "u/1", nil); !ok || err != nil || evals.Load() != 1 {
		t.Fatalf("Eval after = %v, %v with %d evaluations; want true, evaluated once", ok, err, evals.Load())
	}
}

// A nil Evaluator evaluates.
func TestNilEvaluator(t *testing.T) {
	var e *Evaluator
	got, err := e.Eval(context.Background(), mustPrepare(t, "object.a == 1"), "u/1", map[string]any{"a": int64(1)})
	if !got || err != nil {
		t.Fatalf("Eval = %v, %v; want true", got, err)
	}
	if _, err := e.Eval(context.Background(), mustPrepare(t, "object.b == 1"), "u/1", map[string]any{}); err == nil || !strings.Contains(err.Error(), "no such key") {
		t.Fatalf("Eval = %v, want no such key", err)
	}
}
