package server_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	keapi "github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook/server"
)

// The whole of gate mode on a real API server, with the controller in the
// webhook's process, and with the two apart as the chart runs them (the webhook
// --controller=false --controller-separate, the controller --webhook=false): the
// webhook gates a pod; the controller names what it waits for in the pod's
// condition, removes the gate once the Service has a ready endpoint, and says
// Ready; and a pod that closes a dependency cycle draws a warning at admission
// (from the webhook's own cycle detector) and the condition Cycle.
func TestControllerReleasesAndExplains(t *testing.T) {
	for _, separate := range []bool{false, true} {
		name := "one process"
		if separate {
			name = "separate controller"
		}
		t.Run(name, func(t *testing.T) { testControllerReleasesAndExplains(t, separate) })
	}
}

func testControllerReleasesAndExplains(t *testing.T, separate bool) {
	env := testenv.StartT(t, envtest.Environment{
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{"../../../config/webhook"}},
	})
	wio := env.WebhookInstallOptions()
	o := options()
	o.Host, o.Port, o.CertDir = wio.LocalServingHost, wio.LocalServingPort, wio.LocalServingCertDir
	if separate {
		o.Controller, o.ControllerSeparate = false, true
		c := options()
		c.Webhook = false
		startController(t, env, c)
	}
	start(t, env, o)
	ctx := context.Background()
	ns := env.Namespace(t)
	recorder := &warningRecorder{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = recorder
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	create := func(pod *corev1.Pod) *corev1.Pod {
		t.Helper()
		var created *corev1.Pod
		testenv.Eventually(t, 20*time.Second, "an injected pod", func() bool {
			created, err = client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("creating a pod: %v", err)
			}
			// Injected in any way: a gate-only pod gets no init container.
			return created.Annotations[inject.AnnotationStatus] != ""
		})
		return created
	}
	condition := func(name string) *corev1.PodCondition {
		p, err := env.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == keapi.ConditionType {
				return &p.Status.Conditions[i]
			}
		}
		return nil
	}
	gated := func(name string) bool {
		p, err := env.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range p.Spec.SchedulingGates {
			if g.Name == inject.SchedulingGate {
				return true
			}
		}
		return false
	}

	app := create(annotatedPod(map[string]string{
		"entrypoint.io/dependency-service": "mariadb", inject.AnnotationGate: "true",
	}))
	// The gate holds it for its one dependency: no resolver in it, and the
	// controller releases it from the status annotation alone.
	if !inject.GateOnly(app) || len(app.Spec.InitContainers) > 0 || len(app.Spec.Volumes) > 0 {
		t.Fatalf("pod %s is not gate-only: status %s, spec %v", app.Name, app.Annotations[inject.AnnotationStatus], app.Spec)
	}
	testenv.Eventually(t, 30*time.Second, "condition Waiting naming the service", func() bool {
		c := condition(app.Name)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == keapi.ReasonWaiting &&
			c.Message == "waiting for service "+ns+"/mariadb: no endpoints"
	})
	if !gated(app.Name) {
		t.Fatal("the pod lost its gate while the service has no endpoints")
	}
	_, err = env.Client.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "mariadb-1", Labels: map[string]string{"kubernetes.io/service-name": "mariadb"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.9"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the gate removed and the condition Ready", func() bool {
		c := condition(app.Name)
		return !gated(app.Name) && c != nil && c.Status == corev1.ConditionTrue && c.Reason == keapi.ReasonReady
	})

	// api waits for service db, which selects the db pods, which wait for
	// service api, which selects the api pods.
	for name, selector := range map[string]string{"api": "api", "db": "db"} {
		_, err := env.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": selector}, Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	api := annotatedPod(map[string]string{"entrypoint.io/dependency-service": "db"})
	api.Labels = map[string]string{"app": "api"}
	api = create(api)
	testenv.Eventually(t, 30*time.Second, "the api pod waiting", func() bool {
		c := condition(api.Name)
		return c != nil && c.Reason == keapi.ReasonWaiting
	})
	recorder.take()
	var warnings []string
	var db *corev1.Pod
	// The detector rebuilds its graph within a second of a change; until it has
	// seen the api pod, a db pod closes nothing.
	testenv.Eventually(t, 30*time.Second, "a warning that the db pod closes a cycle", func() bool {
		pod := annotatedPod(map[string]string{"entrypoint.io/dependency-service": "api"})
		pod.Labels = map[string]string{"app": "db"}
		db = create(pod)
		warnings = recorder.take()
		return len(warnings) > 0
	})
	if len(warnings) != 1 || !strings.Contains(warnings[0], "closes a dependency cycle") ||
		!strings.Contains(warnings[0], "service "+ns+"/db") || !strings.Contains(warnings[0], "service "+ns+"/api") {
		t.Errorf("warnings %q; want one naming the cycle through services %s/db and %s/api", warnings, ns, ns)
	}
	testenv.Eventually(t, 30*time.Second, "condition Cycle on the db pod", func() bool {
		c := condition(db.Name)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == keapi.ReasonCycle &&
			strings.Contains(c.Message, "service "+ns+"/api")
	})
}

// startController runs a controller-only entrypoint-webhook (--webhook=false)
// until the test ends, and waits until it reports ready on /readyz (its
// Deployment's readiness probe).
func startController(t *testing.T, env *testenv.Env, o server.Options) {
	t.Helper()
	o.HealthProbeBindAddress = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	w, err := server.New(env.Config, o, testLogger(t).WithName("controller"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Manager.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller stopped with %v", err)
		}
	})
	readyz := "http://" + o.HealthProbeBindAddress + "/readyz"
	testenv.Eventually(t, 30*time.Second, "the controller to be ready at "+readyz, func() bool {
		resp, err := http.Get(readyz) //nolint:noctx // a probe
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
