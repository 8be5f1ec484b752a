package resolve

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// DefaultReportInterval is how often the engine says which dependencies still block.
const DefaultReportInterval = 10 * time.Second

// Recorder is told about the wait as a whole, e.g. to emit Kubernetes Events on the
// own pod. Implementations must not block for long.
type Recorder interface {
	// Waiting is called once, at the first periodic report, with what still blocks.
	Waiting(blocking []string)
	// Ready is called when every dependency resolved after Waiting was called.
	Ready(elapsed time.Duration)
	// Failed is called when the wait ends in error.
	Failed(err error)
	// StartedWithout is called when the wait ends at Options.OptionalAfter with
	// these dependencies still blocking: the application starts without them.
	StartedWithout(blocking []string, after time.Duration)
}

// Options tune Wait. The zero value is usable.
type Options struct {
	Log logr.Logger
	// ReportInterval is how often still-blocking dependencies are logged;
	// DefaultReportInterval when zero.
	ReportInterval time.Duration
	// Recorder, when set, is told about the wait (Kubernetes Events).
	Recorder Recorder
	// OptionalAfter, when positive, makes every dependency optional after this
	// long: the wait then ends with nil, and the ones still blocking are logged
	// and told to the Recorder (StartedWithout). A terminal failure before then
	// still ends the wait in error.
	OptionalAfter time.Duration
}

// BlockedError is returned when the context ends before every dependency resolved.
type BlockedError struct {
	Cause    error    // context.DeadlineExceeded or context.Canceled
	Blocking []string // "service openstack/mariadb: 0 of 2 endpoints ready"
}

func (e *BlockedError) Error() string {
	what := "stopped"
	if errors.Is(e.Cause, context.DeadlineExceeded) {
		what = "timed out"
	}
	return fmt.Sprintf("%s waiting for %d dependencies: %s", what, len(e.Blocking), strings.Join(e.Blocking, "; "))
}

func (e *BlockedError) Unwrap() error { return e.Cause }

// Wait waits for all deps in parallel. It returns nil once every one is ready, the
// first terminal error (wrapping ErrTerminal) after stopping the others, or a
// *BlockedError when ctx ends first.
func Wait(ctx context.Context, deps []Dependency, opts Options) error {
	if len(deps) == 0 {
		return nil
	}
	log := opts.Log
	interval := opts.ReportInterval
	if interval <= 0 {
		interval = DefaultReportInterval
	}
	names := make([]string, len(deps))
	for i, d := range deps {
		names[i] = d.String()
	}
	log.Info("waiting for dependencies", "dependencies", names)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	board := newStatusBoard(names)
	type result struct {
		index int
		err   error
	}
	results := make(chan result, len(deps))
	for i, d := range deps {
		go func() {
			err := d.Wait(ctx, func(s Status) { board.set(i, s) })
			results <- result{i, err}
		}()
	}

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var optional <-chan time.Time
	if opts.OptionalAfter > 0 {
		t := time.NewTimer(opts.OptionalAfter)
		defer t.Stop()
		optional = t.C
	}
	waitingReported := false
	for pending := len(deps); pending > 0; {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				board.set(r.index, Status{Ready: true})
				log.Info("dependency ready", "dependency", names[r.index], "elapsed", time.Since(start).Round(time.Millisecond).String())
				continue
			}
			if ctx.Err() != nil && errors.Is(r.err, ctx.Err()) {
				err := &BlockedError{Cause: ctx.Err(), Blocking: board.blocking()}
				if opts.Recorder != nil {
					opts.Recorder.Failed(err)
				}
				return err
			}
			err := fmt.Errorf("%s: %w", names[r.index], r.err)
			if !errors.Is(err, ErrTerminal) {
				// A Dependency must retry transient errors itself; anything else it
				// returns is treated as final rather than silently ignored.
				err = fmt.Errorf("%w: %w", ErrTerminal, err)
			}
			if opts.Recorder != nil {
				opts.Recorder.Failed(err)
			}
			return err
		case <-ticker.C:
			blocking := board.blocking()
			log.Info("still waiting", "blocking", blocking, "elapsed", time.Since(start).Round(time.Second).String())
			if opts.Recorder != nil && !waitingReported {
				opts.Recorder.Waiting(blocking)
				waitingReported = true
			}
		case <-optional:
			blocking := board.blocking()
			log.Info("starting without the dependencies still blocking: they are optional after this long",
				"optionalAfter", opts.OptionalAfter.String(), "blocking", blocking)
			if opts.Recorder != nil {
				opts.Recorder.StartedWithout(blocking, opts.OptionalAfter)
			}
			return nil
		case <-ctx.Done():
			err := &BlockedError{Cause: ctx.Err(), Blocking: board.blocking()}
			if opts.Recorder != nil {
				opts.Recorder.Failed(err)
			}
			return err
		}
	}
	elapsed := time.Since(start)
	log.Info("all dependencies ready", "elapsed", elapsed.Round(time.Millisecond).String())
	if opts.Recorder != nil && waitingReported {
		opts.Recorder.Ready(elapsed)
	}
	return nil
}

// statusBoard holds the latest status of every dependency for the periodic report.
type statusBoard struct {
	mu       sync.Mutex
	names    []string
	statuses []Status
}

func newStatusBoard(names []string) *statusBoard {
	return &statusBoard{names: names, statuses: make([]Status, len(names))}
}

func (b *statusBoard) set(i int, s Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.statuses[i] = s
}

// blocking lists the dependencies not ready yet with their reasons, sorted.
func (b *statusBoard) blocking() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for i, s := range b.statuses {
		if s.Ready {
			continue
		}
		reason := s.Reason
		if reason == "" {
			reason = "not checked yet"
		}
		out = append(out, b.names[i]+": "+reason)
	}
	sort.Strings(out)
	return out
}
