package kube_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
)

func listEvents(t *testing.T, ns string) []corev1.Event {
	t.Helper()
	list, err := env.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Reason < list.Items[j].Reason })
	return list.Items
}

func TestEventsOnTheOwnPod(t *testing.T) {
	ns := env.Namespace(t)
	pod := createPod(t, ns, "me", podSpec{node: "node-a"})
	var logs logSink
	rec := newClient(t, kube.Options{Namespace: ns, PodName: "me", Log: logs.logger()}).Events()
	rec.Waiting([]string{"service " + ns + "/mariadb: no endpoints", "job " + ns + "/db-init: 1 active"})
	rec.Ready(1234567 * time.Microsecond)
	rec.Failed(errors.New("job " + ns + "/db-sync failed: BackoffLimitExceeded"))

	events := listEvents(t, ns)
	want := []struct{ reason, typ, message string }{
		{"DependenciesReady", corev1.EventTypeNormal, "All dependencies ready after 1.235s"},
		{"DependencyFailed", corev1.EventTypeWarning, "job " + ns + "/db-sync failed: BackoffLimitExceeded"},
		{"Waiting", corev1.EventTypeNormal, "Waiting for service " + ns + "/mariadb: no endpoints; job " + ns + "/db-init: 1 active"},
	}
	if len(events) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(events), len(want), events)
	}
	for i, w := range want {
		ev := events[i]
		if ev.Reason != w.reason || ev.Type != w.typ || ev.Message != w.message {
			t.Errorf("event %d: reason %q type %q message %q, want %q %q %q", i, ev.Reason, ev.Type, ev.Message, w.reason, w.typ, w.message)
		}
		io := ev.InvolvedObject
		if io.Kind != "Pod" || io.APIVersion != "v1" || io.Namespace != ns || io.Name != "me" || io.UID != pod.UID {
			t.Errorf("event %s involves %+v, want the pod %s/me with uid %s", ev.Reason, io, ns, pod.UID)
		}
		if ev.Source.Component != "kubernetes-entrypoint" || ev.Count != 1 || ev.LastTimestamp.IsZero() {
			t.Errorf("event %s: source %q, count %d, lastTimestamp %v", ev.Reason, ev.Source.Component, ev.Count, ev.LastTimestamp)
		}
	}
	if n := logs.count("events"); n != 0 {
		t.Errorf("unexpected log lines about events: %v", logs.lines)
	}
}

// A long list of what blocks is shortened rather than refused by the API server.
func TestEventsLongMessage(t *testing.T) {
	ns := env.Namespace(t)
	createPod(t, ns, "me", podSpec{})
	rec := newClient(t, kube.Options{Namespace: ns, PodName: "me"}).Events()
	var blocking []string
	for range 100 {
		blocking = append(blocking, "service "+ns+"/a-service-with-a-long-name: no endpoints")
	}
	rec.Waiting(blocking)
	events := listEvents(t, ns)
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	if msg := events[0].Message; len(msg) > 1024 || !strings.HasPrefix(msg, "Waiting for service ") || !strings.HasSuffix(msg, "...") {
		t.Errorf("message of %d bytes: %q", len(msg), msg)
	}
}

// Where RBAC forbids creating events, recording neither blocks nor fails, and it is
// said once that events are off.
func TestEventsForbidden(t *testing.T) {
	ns := env.Namespace(t)
	createPod(t, ns, "me", podSpec{node: "node-a"})
	cfg := env.ServiceAccountConfig(t, ns, "no-events", []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
	})
	var logs logSink
	c, err := kube.NewClient(cfg, kube.Options{Namespace: ns, PodName: "me", Log: logs.logger(), PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rec := c.Events()
	began := time.Now()
	for range 2 {
		rec.Waiting([]string{"service " + ns + "/mariadb: no endpoints"})
		rec.Ready(time.Second)
		rec.Failed(errors.New("job failed"))
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("recording events took %s", d)
	}
	if n := logs.count("not allowed to create events"); n != 1 {
		t.Errorf("logged %d times that events are off, want once: %v", n, logs.lines)
	}
	if len(logs.lines) != 1 {
		t.Errorf("want exactly one log line: %v", logs.lines)
	}
	if events := listEvents(t, ns); len(events) != 0 {
		t.Errorf("events were created: %+v", events)
	}
}

// Without the own pod's name there is nothing to record events on; a nil recorder
// is safe to use.
func TestEventsWithoutPodName(t *testing.T) {
	rec := newClient(t, kube.Options{Namespace: "default"}).Events()
	if rec != nil {
		t.Fatalf("Events() = %v, want nil without a pod name", rec)
	}
	rec.Waiting([]string{"x"})
	rec.Ready(time.Second)
	rec.Failed(errors.New("x"))
}
