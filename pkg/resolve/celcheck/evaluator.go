package celcheck

import (
	"context"
	"sync"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/lru"
)

// Evaluator evaluates programs for the dependency controller, which may have
// many pods waiting on expressions over the same objects: it runs at most so
// many evaluations at once, and remembers the results, by expression and
// version of the object, of the last so many. It is safe for concurrent use. A
// nil *Evaluator evaluates every time, at once.
type Evaluator struct {
	slots chan struct{} // one token per evaluation under way

	mu      sync.Mutex
	results *lru.Cache[resultKey, result] // nil when nothing is kept

	// eval is (*Program).Eval; tests count the evaluations through it.
	eval func(*Program, context.Context, map[string]any) (bool, error)
}

type resultKey struct{ expression, version string }

type result struct {
	ready bool
	err   error
}

// NewEvaluator returns an Evaluator of at most maxInFlight evaluations at once
// (at least one) that keeps the results of the last maxCached (none when it is
// 0 or less).
func NewEvaluator(maxInFlight, maxCached int) *Evaluator {
	e := &Evaluator{slots: make(chan struct{}, max(maxInFlight, 1)), eval: (*Program).Eval}
	if maxCached > 0 {
		e.results = lru.New[resultKey, result](maxCached)
	}
	return e
}

// Eval evaluates p over object, as p.Eval does, or returns the result of p over
// the same version before: version identifies the object's content (the
// controller passes its uid and resourceVersion, as "uid/resourceVersion"), and
// "" keeps nothing. An evaluation error is kept too: an expression that fails
// over an object fails again until the object changes. Waiting for a turn, Eval
// returns ctx's error when ctx ends; that error, like any evaluation's while ctx
// ended, is not kept.
func (e *Evaluator) Eval(ctx context.Context, p *Program, version string, object map[string]any) (bool, error) {
	if e == nil {
		return p.Eval(ctx, object)
	}
	key := resultKey{expression: p.Expression(), version: version}
	if r, ok := e.cached(key); ok {
		return r.ready, r.err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-e.slots }()
	// Another call may have evaluated it while this one waited.
	if r, ok := e.cached(key); ok {
		return r.ready, r.err
	}
	ready, err := e.eval(p, ctx, object)
	if ctx.Err() == nil {
		e.keep(key, result{ready: ready, err: err})
	}
	return ready, err
}

func (e *Evaluator) cached(key resultKey) (result, bool) {
	if key.version == "" || e.results == nil {
		return result{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.results.Get(key)
}

func (e *Evaluator) keep(key resultKey, r result) {
	if key.version == "" || e.results == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.results.Add(key, r)
}
