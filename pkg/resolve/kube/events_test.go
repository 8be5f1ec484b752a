package kube_test

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"
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
	rec.StartedWithout([]string{"service " + ns + "/mariadb: no endpoints"}, 5*time.Minute)

	events := listEvents(t, ns)
	want := []struct{ reason, typ, message string }{
		{"DependenciesReady", corev1.EventTypeNormal, "All dependencies ready after 1.235s"},
		{"DependencyFailed", corev1.EventTypeWarning, "job " + ns + "/db-sync failed: BackoffLimitExceeded"},
		{"StartedWithoutDependencies", corev1.EventTypeWarning, "Starting without 1 dependencies, optional after 5m0s: service " + ns + "/mariadb: no endpoints"},
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
		t.Errorf("unexpected log lines about events: %v", logs.snapshot())
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
	if !rec.Flush(30 * time.Second) {
		t.Fatal("the event was not written")
	}
	events := listEvents(t, ns)
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	if msg := events[0].Message; len(msg) > 1024 || !strings.HasPrefix(msg, "Waiting for service ") || !strings.HasSuffix(msg, "...") {
		t.Errorf("message of %d bytes: %q", len(msg), msg)
	}
}

// The DependenciesReady event holds the application up at most its budget: with the
// API server's answers to event writes held back, Ready returns before the events
// reach it, and the writer still delivers them, in order, afterwards.
func TestEventsReadyDoesNotWaitForASlowAPIServer(t *testing.T) {
	ns := env.Namespace(t)
	createPod(t, ns, "me", podSpec{})
	release := make(chan struct{})
	cfg := proxyAPIServer(t, func(proxy http.Handler, w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/events") {
			<-release
		}
		proxy.ServeHTTP(w, r)
	})
	c, err := kube.NewClient(cfg, kube.Options{Namespace: ns, PodName: "me", PollInterval: time.Hour, ReadyEventBudget: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec := c.Events()
	rec.Waiting([]string{"service " + ns + "/mariadb: no endpoints"})
	began := time.Now()
	rec.Ready(time.Second)
	// Not a performance bound: a budget of 50 ms against writes held without end (a
	// single write gives up after 5 s).
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("Ready held the application up %s while the API server did not answer", d)
	}
	// Ready returned while the first write is held: nothing has reached the API server.
	if events := listEvents(t, ns); len(events) != 0 {
		t.Fatalf("events written while the API server held them back: %+v", events)
	}
	close(release)
	if !rec.Flush(30 * time.Second) {
		t.Fatal("the events were not written once the API server answered")
	}
	events := listEvents(t, ns)
	if len(events) != 2 || events[0].Reason != "DependenciesReady" || events[1].Reason != "Waiting" {
		t.Fatalf("want the Waiting and DependenciesReady events, got %+v", events)
	}
	// One writer, in order: Waiting got the earlier revision.
	waitingRV, _ := strconv.ParseInt(events[1].ResourceVersion, 10, 64)
	readyRV, _ := strconv.ParseInt(events[0].ResourceVersion, 10, 64)
	if waitingRV == 0 || readyRV == 0 || waitingRV >= readyRV {
		t.Errorf("Waiting written at revision %s, DependenciesReady at %s: want Waiting first", events[1].ResourceVersion, events[0].ResourceVersion)
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
		t.Errorf("logged %d times that events are off, want once: %v", n, logs.snapshot())
	}
	if len(logs.snapshot()) != 1 {
		t.Errorf("want exactly one log line: %v", logs.snapshot())
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
