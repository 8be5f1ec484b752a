package server_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	keapi "github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// The API server sends each pod's every change once to the controller's
// process, whatever watches it (the controller, its owner status, the cycle
// detector): one watch per kind. Every extra watch of pods is another copy
// of each gate removal, encoded by the API server and decoded here, while
// thousands are released.
func TestOneWatchPerKind(t *testing.T) {
	for _, tc := range []struct {
		name    string
		webhook bool
	}{{"controller alone", false}, {"webhook and controller", true}} {
		t.Run(tc.name, func(t *testing.T) {
			o := options()
			var env *testenv.Env
			var before map[string]int
			if tc.webhook {
				env = testenv.StartT(t, envtest.Environment{
					WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{"../../../config/webhook"}},
				})
				before = watchesByResource(t, env)
				wio := env.WebhookInstallOptions()
				o.Host, o.Port, o.CertDir = wio.LocalServingHost, wio.LocalServingPort, wio.LocalServingCertDir
				start(t, env, o)
			} else {
				env = testenv.StartT(t, envtest.Environment{})
				before = watchesByResource(t, env)
				o.Webhook = false
				startController(t, env, o)
			}
			ctx := context.Background()
			ns := env.Namespace(t)
			pod, _, err := inject.Mutate(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns, Annotations: map[string]string{
					inject.AnnotationPrefix + "dependency-service": "db", inject.AnnotationGate: "true",
				}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1", Command: []string{"/app"}}}},
			}, inject.Config{Image: image, Controller: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			// Waiting: every informer the pod needs runs.
			testenv.Eventually(t, 30*time.Second, "the pod's Waiting condition", func() bool {
				p, err := env.Client.CoreV1().Pods(ns).Get(ctx, "app", metav1.GetOptions{})
				if err != nil {
					return false
				}
				for _, c := range p.Status.Conditions {
					// Judged, so the EndpointSlice informer has listed and watches.
					if c.Type == keapi.ConditionType && c.Reason == keapi.ReasonWaiting && c.Message == "waiting for service "+ns+"/db: no endpoints" {
						return true
					}
				}
				return false
			})
			// The API server's own informers watch some kinds too: counted
			// before the process started.
			// A watch is counted once its request is under way: wait until each
			// kind has one, then count.
			kinds := []string{"pods", "services", "endpointslices"}
			var after map[string]int
			testenv.Eventually(t, 20*time.Second, "a watch of each kind", func() bool {
				after = watchesByResource(t, env)
				for _, r := range kinds {
					if after[r]-before[r] < 1 {
						return false
					}
				}
				return true
			})
			for _, r := range kinds {
				if n := after[r] - before[r]; n != 1 {
					t.Errorf("the process opened %d watches of %s, want 1 (the API server's watches before: %v; after: %v)", n, r, before, after)
				}
			}
		})
	}
}

// watchesByResource reads the API server's open watches from its /metrics.
func watchesByResource(t *testing.T, env *testenv.Env) map[string]int {
	t.Helper()
	raw, err := env.Client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_longrunning_requests{") || !strings.Contains(line, `verb="WATCH"`) {
			continue
		}
		i := strings.Index(line, `resource="`)
		if i < 0 {
			continue
		}
		rest := line[i+len(`resource="`):]
		res := rest[:strings.IndexByte(rest, '"')]
		fields := strings.Fields(line)
		if n, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			out[res] += int(n)
		}
	}
	return out
}
