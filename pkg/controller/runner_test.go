package controller

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// runRunner runs a leader-electing Runner until stop is called.
func runRunner(t *testing.T, ns string, m *Metrics) (stop func()) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Config: env.Config, LeaderElect: true, Namespace: ns, Retry: 200 * time.Millisecond,
		Options: Options{Dependencies: testDependencies, Dynamic: dyn, Log: testLogger(t), Metrics: m}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runner: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// Two replicas: one leads; gated pods wait while none runs the controller and no
// pod is released early; when the leader stops, the other takes over (the Lease is
// released on the way out) and releases what became ready meanwhile. The
// metrics count the waiting pod and histogram its release.
func TestLeaderHandOver(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	stopFirst := runRunner(t, ns, m)
	createPod(t, managedPod(t, ns, "app", map[string]string{"DEPENDENCY_SERVICE": "db"}, inject.SchedulingGate))
	waitPod(t, ns, "app", "condition Waiting", hasCondition(corev1.ConditionFalse, ReasonWaiting, "db"))
	// Pods of other tests' namespaces are followed too: at least this one.
	waitMetric(t, reg, `entrypoint_controller_pods{gated="true",reason="Waiting"}`, 1)
	waitMetric(t, reg, `entrypoint_controller_gated_pod_oldest_seconds`, 0.001)

	stopFirst()
	// No controller runs now: the service becomes ready, and the pod stays gated.
	readySlice(t, ns, "db")
	time.Sleep(2 * time.Second)
	p, err := env.Client.CoreV1().Pods(ns).Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if gateIndex(p) < 0 {
		t.Fatal("the gate was removed while no controller ran")
	}

	runRunner(t, ns, m)
	waitPod(t, ns, "app", "released by the second replica", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
	waitMetric(t, reg, "entrypoint_controller_gated_duration_seconds_count", 1)
	lease, err := env.Client.CoordinationV1().Leases(ns).Get(ctx, LeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Lease %s/%s: %v", ns, LeaseName, err)
	}
	if lease.Spec.LeaseTransitions == nil || *lease.Spec.LeaseTransitions < 1 {
		t.Errorf("lease transitions %v; want the second replica to have taken over", lease.Spec.LeaseTransitions)
	}
}

// waitMetric waits until the registry's text exposition has the sample named
// series with a value of at least floor.
func waitMetric(t *testing.T, reg *prometheus.Registry, series string, floor float64) {
	t.Helper()
	deadline := time.Now().Add(settle)
	var text string
	for time.Now().Before(deadline) {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, f := range families {
			if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
				t.Fatal(err)
			}
		}
		text = b.String()
		for _, l := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(l, series+" "); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil && f >= floor {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("metrics lack %s >= %g:\n%s", series, floor, text)
}
