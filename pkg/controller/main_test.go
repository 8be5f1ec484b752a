package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(envtest.Environment{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// settle bounds waits for what should take milliseconds; generous for shared machines.
const settle = 30 * time.Second

// envAnnotation carries, in these tests, the resolver environment of a pod; the
// webhook's format is tested with the webhook (inject.Dependencies).
const envAnnotation = "test.entrypoint.io/env"

// gatedAnnotation marks, in these tests, a pod created with the scheduling gate,
// as the webhook's status annotation does: released, it is still a gate-mode pod.
const gatedAnnotation = "test.entrypoint.io/gated"

// testDependencies parses the pod's test environment with the resolver's parser.
func testDependencies(pod *corev1.Pod) (*spec.Spec, bool, error) {
	raw, ok := pod.Annotations[envAnnotation]
	if !ok {
		return nil, false, fmt.Errorf("pod %s/%s was not injected", pod.Namespace, pod.Name)
	}
	vars := map[string]string{}
	if err := json.Unmarshal([]byte(raw), &vars); err != nil {
		return nil, false, err
	}
	vars[spec.EnvNamespace] = pod.Namespace
	vars[spec.EnvPodName] = pod.Name
	deps, err := spec.FromEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	_, gated := pod.Annotations[gatedAnnotation]
	return deps, gated || gateIndex(pod) >= 0, err
}

type fixedCycles map[string]string

func (f fixedCycles) CycleOf(namespace, name string) (string, bool) {
	c, ok := f[namespace+"/"+name]
	return c, ok
}

// startController runs a manager with the controller until the test ends.
func startController(t *testing.T, cycles CycleFinder) *Reconciler {
	t.Helper()
	return startControllerAs(t, env.Config, cycles)
}

// startControllerAs runs the controller with cfg's credentials.
func startControllerAs(t *testing.T, cfg *rest.Config, cycles CycleFinder) *Reconciler {
	t.Helper()
	return startControllerWith(t, cfg, cycles, nil)
}

// startControllerWith runs the controller with cfg's credentials and the options
// set changes.
func startControllerWith(t *testing.T, cfg *rest.Config, cycles CycleFinder, set func(*Options)) *Reconciler {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{ByObject: CacheByObject()},
		Controller:             ctrlConfigSkipNameValidation(),
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Dependencies: testDependencies, Dynamic: dyn, Log: testLogger(t)}
	if cycles != nil {
		opts.Cycles = cycles
	}
	if set != nil {
		set(&opts)
	}
	r, err := SetupWithManager(mgr, opts)
	if err != nil {
		t.Fatal(err)
	}
	startManager(t, mgr)
	return r
}

// startManager starts mgr until the test ends, and fails the test if it stops
// with an error.
func startManager(t *testing.T, mgr ctrl.Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

// managedPod is an injected pod as the controller sees it: the label, the
// environment, and, when gated, the scheduling gates.
func managedPod(t *testing.T, ns, name string, env map[string]string, gates ...string) *corev1.Pod {
	t.Helper()
	raw, _ := json.Marshal(env)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels:      map[string]string{inject.LabelManaged: "true"},
			Annotations: map[string]string{envAnnotation: string(raw)}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	for _, g := range gates {
		pod.Spec.SchedulingGates = append(pod.Spec.SchedulingGates, corev1.PodSchedulingGate{Name: g})
		if g == inject.SchedulingGate {
			pod.Annotations[gatedAnnotation] = "true"
		}
	}
	return pod
}

func createPod(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	out, err := env.Client.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s: %v", pod.Name, err)
	}
	return out
}

// waitPod polls the pod until ok holds, and fails with the pod's state if it does not.
func waitPod(t *testing.T, ns, name, what string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(settle)
	var last *corev1.Pod
	for time.Now().Before(deadline) {
		p, err := env.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			last = p
			if ok(p) {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s: %s did not happen within %s; gates %v, conditions %s", ns, name, what, settle,
		gateNames(last), conditionsOf(last))
	return nil
}

func gateNames(p *corev1.Pod) []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, g := range p.Spec.SchedulingGates {
		out = append(out, g.Name)
	}
	return out
}

func conditionsOf(p *corev1.Pod) string {
	if p == nil {
		return "(no pod)"
	}
	b, _ := json.Marshal(p.Status.Conditions)
	return string(b)
}

// hasCondition is a predicate on the controller's condition.
func hasCondition(status corev1.ConditionStatus, reason, messagePart string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		c := findCondition(p)
		return c != nil && c.Status == status && c.Reason == reason && strings.Contains(c.Message, messagePart)
	}
}

// readySlice makes the Service ready: one EndpointSlice with one ready endpoint.
func readySlice(t *testing.T, ns, service string) {
	t.Helper()
	_, err := env.Client.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{GenerateName: service + "-", Labels: map[string]string{serviceNameLabel: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating EndpointSlice of %s: %v", service, err)
	}
}

// eventReasons lists the reasons of the events about the pod.
func eventReasons(t *testing.T, ns, pod string) []string {
	t.Helper()
	list, err := env.Client.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "regarding.name=" + pod,
	})
	if err != nil {
		t.Fatalf("listing events: %v", err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason)
	}
	return out
}

func ctrlConfigSkipNameValidation() config.Controller {
	// Each test runs its own manager with the same controller name.
	return config.Controller{SkipNameValidation: ptr.To(true)}
}

func testLogger(t *testing.T) logr.Logger {
	return funcr.New(func(prefix, args string) { t.Log(prefix, args) }, funcr.Options{Verbosity: 1})
}
