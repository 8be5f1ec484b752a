package server

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// drainQuiet is how long without a request ends the drain early.
const drainQuiet = time.Second

// drainer wraps the webhook server for a graceful shutdown. controller-runtime
// derives every request's context from the server's own and cancels it as soon as
// shutdown begins, which would abort a registry lookup in flight and deny its
// pod. Here, once shutdown begins, readiness fails, every response asks its
// client to close the connection (so that the API server's next call opens one to
// a replica that is not stopping), and the server keeps serving until no request
// has been in flight for drainQuiet, at most timeout; only then is it stopped.
type drainer struct {
	webhook.Server
	timeout time.Duration
	log     logr.Logger

	inflight atomic.Int64
	last     atomic.Int64 // UnixNano of the last request's start or end
	draining atomic.Bool
}

func newDrainer(s webhook.Server, timeout time.Duration, log logr.Logger) *drainer {
	return &drainer{Server: s, timeout: timeout, log: log}
}

// Register tracks the requests of every handler.
func (d *drainer) Register(path string, h http.Handler) {
	d.Server.Register(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.inflight.Add(1)
		d.last.Store(time.Now().UnixNano())
		defer func() {
			d.last.Store(time.Now().UnixNano())
			d.inflight.Add(-1)
		}()
		if d.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	}))
}

// Start serves until ctx ends, then drains.
func (d *drainer) Start(ctx context.Context) error {
	inner, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	done := make(chan error, 1)
	go func() { done <- d.Server.Start(inner) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	d.draining.Store(true)
	began := time.Now()
	d.log.Info("shutting down: not ready, serving until no request is in flight", "timeout", d.timeout.String())
	for time.Since(began) < d.timeout {
		idle := time.Since(time.Unix(0, d.last.Load()))
		if d.inflight.Load() == 0 && idle >= drainQuiet {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.log.Info("drained; stopping the webhook server", "after", time.Since(began).Round(time.Millisecond).String(), "inFlight", d.inflight.Load())
	stop()
	return <-done
}

// Ready fails once shutdown began (a healthz.Checker for /readyz).
func (d *drainer) Ready(*http.Request) error {
	if d.draining.Load() {
		return errors.New("shutting down")
	}
	return nil
}
