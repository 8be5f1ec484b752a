// Package local holds dependencies that are checked from inside the pod itself,
// without the Kubernetes API: a socket file, a TCP port, an HTTP endpoint, and a
// configuration file rendered from a template.
package local

import (
	"context"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
)

// probe looks at a dependency once. It returns the observation, or an error
// wrapping resolve.ErrTerminal when the dependency can never become ready.
// Transient failures belong in the Status, not in the error.
type probe func(ctx context.Context) (resolve.Status, error)

// pollUntilReady runs check at once and then every interval until it sees the
// dependency ready, check fails terminally, or ctx ends. It reports a Status only
// when it differs from the previous one, so a dependency that stays down for an
// hour produces one report, not thousands.
func pollUntilReady(ctx context.Context, interval time.Duration, report func(resolve.Status), check probe) error {
	if report == nil {
		report = func(resolve.Status) {}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	ticker := time.NewTicker(interval)
	defer ticker.Stop()

	var last resolve.Status
	first := true
	for {
		status, err := check(ctx)
		// A check cut short by cancellation says nothing about the dependency;
		// the caller asked us to stop, so that is the answer.
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if err != nil {
			return err
		}
		if first || status != last {
			report(status)
			last, first = status, false
		}
		if status.Ready {
			return nil
		}

		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// orDefault returns d when it is positive, else def, so zero-valued fields mean
// "use the documented default".
func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
