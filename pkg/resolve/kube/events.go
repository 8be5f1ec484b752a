package kube

import (
	"context"
	"fmt"
	"strings"
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
type EventRecorder struct {
	client   *Client
	disabled atomic.Bool
	podUID   atomic.Value // string, once read
}

// Events returns a recorder for the own pod, or nil when the pod is unknown.
func (c *Client) Events() *EventRecorder {
	if c.opts.PodName == "" {
		return nil
	}
	return &EventRecorder{client: c}
}

// eventTimeout bounds an event write: events are best effort and must never hold
// up the application.
const eventTimeout = 5 * time.Second

func (e *EventRecorder) Waiting(blocking []string) {
	e.record("Waiting", "Normal", "Waiting for "+strings.Join(blocking, "; "))
}

func (e *EventRecorder) Ready(elapsed time.Duration) {
	e.record("DependenciesReady", "Normal", fmt.Sprintf("All dependencies ready after %s", elapsed.Round(time.Millisecond)))
}

func (e *EventRecorder) Failed(err error) {
	e.record("DependencyFailed", "Warning", err.Error())
}

func (e *EventRecorder) record(reason, typ, message string) {
	if e == nil || e.disabled.Load() {
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
