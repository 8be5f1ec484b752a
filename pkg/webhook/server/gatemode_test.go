package server_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// warningRecorder keeps the warnings the API server sends a client.
type warningRecorder struct {
	mu       sync.Mutex
	warnings []string
}

func (r *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warnings = append(r.warnings, text)
}

func (r *warningRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.warnings
	r.warnings = nil
	return w
}

// Gate mode through a real API server: a pod of a namespace labelled
// entrypoint.io/gate=true, and a pod annotated so, are created held by the
// scheduling gate, labelled managed, with their node-free dependencies in the
// status annotation only, where inject.Dependencies finds them; the annotation
// "false" opts out; a pod whose every dependency is gated gets nothing but the
// gate (gate-only); and a warning of the webhook reaches the client.
func TestGateModeThroughTheAPIServer(t *testing.T) {
	env := testenv.StartT(t, envtest.Environment{
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{"../../../config/webhook"}},
	})
	wio := env.WebhookInstallOptions()
	o := options()
	o.Host, o.Port, o.CertDir = wio.LocalServingHost, wio.LocalServingPort, wio.LocalServingCertDir
	start(t, env, o)

	ctx := context.Background()
	gatedNS, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "gated-", Labels: map[string]string{inject.NamespaceLabelGate: "true"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.CoreV1().Namespaces().Delete(ctx, gatedNS.Name, metav1.DeleteOptions{}) })
	plainNS := env.Namespace(t)

	recorder := &warningRecorder{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = recorder
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	service := map[string]string{"entrypoint.io/dependency-service": "mariadb", "entrypoint.io/dependency-tcp": "cache:11211"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for k, v := range service {
			m[k] = v
		}
		return m
	}
	create := func(t *testing.T, ns string, pod *corev1.Pod) *corev1.Pod {
		t.Helper()
		var created *corev1.Pod
		// The API server may need a moment to use the freshly installed webhook.
		testenv.Eventually(t, 20*time.Second, "an injected pod in "+ns, func() bool {
			created, err = client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("creating a pod in %s: %v", ns, err)
			}
			return len(created.Spec.InitContainers) > 0
		})
		return created
	}
	isGated := func(pod *corev1.Pod) bool {
		return slices.ContainsFunc(pod.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == inject.SchedulingGate })
	}

	for _, tc := range []struct {
		name        string
		ns          string
		annotations map[string]string
		gated       bool
	}{
		{name: "gated namespace", ns: gatedNS.Name, annotations: service, gated: true},
		{name: "opted out in a gated namespace", ns: gatedNS.Name, annotations: with(inject.AnnotationGate, "false")},
		{name: "annotated pod", ns: plainNS, annotations: with(inject.AnnotationGate, "true"), gated: true},
		{name: "plain pod", ns: plainNS, annotations: service},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := create(t, tc.ns, annotatedPod(tc.annotations))
			assertInjected(t, pod)
			if pod.Labels[inject.LabelManaged] != "true" {
				t.Errorf("labels %v lack %s=true", pod.Labels, inject.LabelManaged)
			}
			if isGated(pod) != tc.gated {
				t.Errorf("scheduling gates %v, want gated %v", pod.Spec.SchedulingGates, tc.gated)
			}
			inContainer := slices.ContainsFunc(pod.Spec.Containers[0].Env, func(e corev1.EnvVar) bool { return e.Name == "DEPENDENCY_SERVICE" })
			if inContainer == tc.gated {
				t.Errorf("DEPENDENCY_SERVICE in the container: %v, want %v (env %v)", inContainer, !tc.gated, pod.Spec.Containers[0].Env)
			}
			deps, gated, err := inject.Dependencies(pod)
			if err != nil {
				t.Fatal(err)
			}
			if gated != tc.gated || len(deps.Services) != 1 || deps.Services[0].String() != tc.ns+"/mariadb" || !slices.Equal(deps.TCP, []string{"cache:11211"}) {
				t.Errorf("Dependencies: gated %v, %+v; want gated %v, service %s/mariadb and tcp cache:11211", gated, deps, tc.gated, tc.ns)
			}
			if w := recorder.take(); len(w) > 0 {
				t.Errorf("warnings %q, want none", w)
			}
		})
	}

	t.Run("gate-only pod", func(t *testing.T) {
		pod := annotatedPod(map[string]string{"entrypoint.io/dependency-service": "mariadb", inject.AnnotationGate: "true"})
		var created *corev1.Pod
		testenv.Eventually(t, 20*time.Second, "a gate-only pod in "+plainNS, func() bool {
			created, err = client.CoreV1().Pods(plainNS).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("creating a pod in %s: %v", plainNS, err)
			}
			return created.Annotations[inject.AnnotationStatus] != ""
		})
		if !inject.GateOnly(created) || !isGated(created) || created.Labels[inject.LabelManaged] != "true" {
			t.Errorf("status %s, gates %v, labels %v; want gate-only, gated and managed",
				created.Annotations[inject.AnnotationStatus], created.Spec.SchedulingGates, created.Labels)
		}
		if len(created.Spec.InitContainers) > 0 || len(created.Spec.Volumes) > 0 ||
			!slices.Equal(created.Spec.Containers[0].Command, pod.Spec.Containers[0].Command) ||
			!slices.Equal(created.Spec.Containers[0].Args, pod.Spec.Containers[0].Args) || len(created.Spec.Containers[0].Env) > 0 {
			t.Errorf("a gate-only pod got more than the gate: %v", created.Spec)
		}
		deps, gated, err := inject.Dependencies(created)
		if err != nil || !gated || len(deps.Services) != 1 || deps.Services[0].String() != plainNS+"/mariadb" {
			t.Errorf("Dependencies: gated %v, %+v, err %v; want gated, service %s/mariadb", gated, deps, err, plainNS)
		}
		if w := recorder.take(); len(w) > 0 {
			t.Errorf("warnings %q, want none", w)
		}
	})

	t.Run("a warning reaches the client", func(t *testing.T) {
		pod := annotatedPod(service)
		pod.Spec.NodeName = "node-that-does-not-exist"
		create(t, gatedNS.Name, pod)
		w := recorder.take()
		if len(w) != 1 || !strings.Contains(w[0], "spec.nodeName is set") {
			t.Errorf("warnings %q, want one saying spec.nodeName keeps the pod from being gated", w)
		}
	})
}
