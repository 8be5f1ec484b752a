package kube

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var eventsResource = schema.GroupVersionResource{Version: "v1", Resource: "events"}

// EventRecorder records the wait as core/v1 Events on the own pod, so that
// `kubectl describe pod` shows what it waits for. Where RBAC forbids creating
// events it says so once and stops trying.
//
// One goroutine writes the events in order, so that the wait never stalls on a slow
// API server: Waiting returns at once; Ready waits for the writes at most
// Options.ReadyEventBudget, since the application must not wait for a record of its
// own start (hundreds of pods released by one Service write their events at once).
type EventRecorder struct {
	client   *Client
	disabled atomic.Bool
	podUID   atomic.Value // string, once read

	start   sync.Once
	queue   chan event
	pending sync.WaitGroup
}

type event struct{ reason, typ, message string }

// Events returns a recorder for the own pod, or nil when the pod is unknown.
func (c *Client) Events() *EventRecorder {
	if c.opts.PodName == "" {
		return nil
	}
	return &EventRecorder{client: c, queue: make(chan event, 8)}
}

// eventTimeout bounds one event write: events are best effort.
const eventTimeout = 5 * time.Second

// DefaultReadyEventBudget is how long the DependenciesReady event may hold up the
// application: a few round trips to an idle API server.
const DefaultReadyEventBudget = 100 * time.Millisecond

// Waiting records what blocks, without waiting for the write.
func (e *EventRecorder) Waiting(blocking []string) {
	e.enqueue(event{"Waiting", "Normal", "Waiting for " + strings.Join(blocking, "; ")})
}

// Ready records that the wait is over, waiting for the writes at most the budget.
func (e *EventRecorder) Ready(elapsed time.Duration) {
	if e.enqueue(event{"DependenciesReady", "Normal", fmt.Sprintf("All dependencies ready after %s", elapsed.Round(time.Millisecond))}) {
		e.Flush(e.client.opts.ReadyEventBudget)
	}
}

// Failed records why the wait failed, waiting for the writes at most eventTimeout:
// the process exits next.
func (e *EventRecorder) Failed(err error) {
	if e.enqueue(event{"DependencyFailed", "Warning", err.Error()}) {
		e.Flush(eventTimeout)
	}
}

// StartedWithout records, as a Warning, which dependencies the application starts
// without, waiting for the writes at most eventTimeout: the process execs next.
func (e *EventRecorder) StartedWithout(blocking []string, after time.Duration) {
	msg := fmt.Sprintf("Starting without %d dependencies, optional after %s: %s", len(blocking), after, strings.Join(blocking, "; "))
	if e.enqueue(event{"StartedWithoutDependencies", "Warning", msg}) {
		e.Flush(eventTimeout)
	}
}

// Flush waits until every event asked for is written (or given up on), at most d;
// it tells whether they were.
func (e *EventRecorder) Flush(d time.Duration) bool {
	if e == nil {
		return true
	}
	done := make(chan struct{})
	go func() {
		e.pending.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		e.client.opts.Log.V(1).Info("not waiting any longer for events to be written", "after", d.String())
		return false
	}
}

// enqueue hands ev to the writer; false when there is nothing to write.
func (e *EventRecorder) enqueue(ev event) bool {
	if e == nil || e.disabled.Load() {
		return false
	}
	e.start.Do(func() {
		go func() {
			for ev := range e.queue {
				e.record(ev.reason, ev.typ, ev.message)
				e.pending.Done()
			}
		}()
	})
	e.pending.Add(1)
	select {
	case e.queue <- ev:
		return true
	default:
		// The writer is far behind (the API server does not answer): drop it
		// rather than hold up the wait.
		e.pending.Done()
		e.client.opts.Log.V(1).Info("dropped an event: earlier ones are still being written", "reason", ev.reason)
		return false
	}
}

func (e *EventRecorder) record(reason, typ, message string) {
	if e.disabled.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	opts := e.client.opts
	const maxMessage = 1024 // the API server rejects longer event messages
	if len(message) > maxMessage {
		cut := maxMessage - 3
		for cut > 0 && !utf8.RuneStart(message[cut]) {
			cut-- // never split a character
		}
		message = message[:cut] + "..."
	}
	now := time.Now().UTC().Format(time.RFC3339)
	involved := map[string]any{"apiVersion": "v1", "kind": "Pod", "namespace": opts.Namespace, "name": opts.PodName}
	ev := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion":         "v1",
		"kind":               "Event",
		"metadata":           map[string]any{"generateName": opts.PodName + ".", "namespace": opts.Namespace},
		"involvedObject":     involved,
		"reason":             reason,
		"message":            message,
		"type":               typ,
		"source":             map[string]any{"component": "kubernetes-entrypoint"},
		"reportingComponent": "kubernetes-entrypoint",
		"reportingInstance":  opts.PodName,
		"firstTimestamp":     now,
		"lastTimestamp":      now,
		"count":              int64(1),
	}}
	if uid := e.uid(ctx); uid != "" {
		involved["uid"] = uid
	}
	_, err := e.client.dynamic.Resource(eventsResource).Namespace(opts.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	if err == nil {
		return
	}
	if apierrors.IsForbidden(err) {
		if e.disabled.Swap(true) {
			return // already said
		}
		opts.Log.Info("not allowed to create events on the own pod; continuing without them", "hint", "grant create on events")
		return
	}
	opts.Log.V(1).Info("could not record event", "reason", reason, "error", err.Error())
}

// uid is the own pod's UID, read once; "" when it cannot be read (the event is
// still recorded, matched by name).
func (e *EventRecorder) uid(ctx context.Context) string {
	if uid, ok := e.podUID.Load().(string); ok {
		return uid
	}
	opts := e.client.opts
	pod, err := e.client.dynamic.Resource(podsResource).Namespace(opts.Namespace).Get(ctx, opts.PodName, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	uid := string(pod.GetUID())
	e.podUID.Store(uid)
	return uid
}
