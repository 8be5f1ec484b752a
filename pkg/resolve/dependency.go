// Package resolve waits for a pod's dependencies: it runs every Dependency in
// parallel, reports which ones still block and why, and returns once all are ready,
// one has failed terminally, or the context ends.
package resolve

import (
	"context"
	"errors"
	"fmt"
)

// Dependency is one thing the resolver waits for.
type Dependency interface {
	// String names the dependency for people: "service openstack/mariadb".
	String() string
	// Wait blocks until the dependency is ready (nil), the context ends (ctx.Err()),
	// or the dependency can never become ready (an error wrapping ErrTerminal).
	// Transient errors are retried inside Wait, never returned. Wait calls report
	// whenever what it observes changes, so the engine can say why it still blocks.
	Wait(ctx context.Context, report func(Status)) error
}

// Status is a dependency's latest observation.
type Status struct {
	// Ready is true once the dependency is satisfied.
	Ready bool
	// Reason says, for a person, why it is not ready yet: "0 of 2 endpoints ready".
	Reason string
}

// ErrTerminal marks a dependency that will never become ready, such as a Job that
// failed (unless the resolver is told to wait for failed Jobs).
var ErrTerminal = errors.New("dependency failed")

// Terminal wraps err so that errors.Is(err, ErrTerminal) holds.
func Terminal(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrTerminal, fmt.Sprintf(format, args...))
}
