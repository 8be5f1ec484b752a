package benchgate

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// createWorkers is how many create calls the harness has in flight at once.
const createWorkers = 16

// gatedPod is a pod as the webhook leaves it in gate mode, waiting for service
// (in ns): gate-only, since the gate holds it for all it waits for.
func gatedPod(ns, name, service string) (*corev1.Pod, error) {
	return injectedPod(ns, name, service, true)
}

// injectedPod is the webhook's own mutation (inject.Mutate) of a pod annotated to
// wait for service, in gate mode or not, applied here so that the pods are
// created directly, with no webhook in the path.
func injectedPod(ns, name, service string, gate bool) (*corev1.Pod, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Annotations: map[string]string{
				inject.AnnotationPrefix + "dependency-service": service,
				inject.AnnotationPrefix + "gate":               strconv.FormatBool(gate),
			},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1", Command: []string{"/app", "serve"}}},
		},
	}
	cfg := inject.Config{Image: "registry.example/kubernetes-entrypoint:bench", Controller: true}
	mutated, out, err := inject.Mutate(context.Background(), pod, cfg)
	if err != nil || out.Result != inject.ResultInjected || (len(mutated.Spec.SchedulingGates) == 1) != gate {
		return nil, fmt.Errorf("injecting pod %s/%s as the webhook does (gate %v): %s %s: %v", ns, name, gate, out.Result, out.Message, err) //nolint:errorlint // err is nil when the pod was mutated wrong: %v says <nil>
	}
	return mutated, nil
}

// createServices creates headless Services (envtest's service range is a /24)
// without endpoints.
func createServices(ctx context.Context, client kubernetes.Interface, ns string, names []string) error {
	return parallel(len(names), func(i int) error {
		_, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: names[i]},
			Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 3306}}},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating Service %s/%s: %w", ns, names[i], err)
		}
		return nil
	})
}

// createGatedPods creates a gated pod for each name, waiting for the Service
// serviceOf(i).
func createGatedPods(ctx context.Context, client kubernetes.Interface, ns string, names []string, serviceOf func(int) string) error {
	return parallel(len(names), func(i int) error {
		pod, err := gatedPod(ns, names[i], serviceOf(i))
		if err != nil {
			return err
		}
		if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating gated pod %s/%s: %w", ns, names[i], err)
		}
		return nil
	})
}

// createPlainPods creates the pods the resolvers of the comparison would run
// in: injected as the webhook does in resolver mode (waiting for the Service
// db, not gated), so that the API server stores the same pods in both modes.
func createPlainPods(ctx context.Context, client kubernetes.Interface, ns string, names []string) error {
	return parallel(len(names), func(i int) error {
		pod, err := injectedPod(ns, names[i], "db", false)
		if err != nil {
			return err
		}
		_, err = client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating pod %s/%s: %w", ns, names[i], err)
		}
		return nil
	})
}

// makeReady gives each Service an EndpointSlice with one ready endpoint, all at
// once, and returns when each create call was sent. The Service is ready once
// the API server has stored the slice, somewhere within the call; timing from
// its start never flatters (a resolver woken by the watch may exit before the
// call has returned to the harness) and counts the write, a few milliseconds.
func makeReady(ctx context.Context, client kubernetes.Interface, ns string, services []string) (map[string]time.Time, error) {
	ready := make([]time.Time, len(services))
	err := parallel(len(services), func(i int) error {
		ready[i] = time.Now()
		_, err := client.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				GenerateName: services[i] + "-",
				Labels:       map[string]string{discoveryv1.LabelServiceName: services[i]},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.2.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating an EndpointSlice for Service %s/%s: %w", ns, services[i], err)
		}
		return nil
	})
	out := make(map[string]time.Time, len(services))
	for i, s := range services {
		out[s] = ready[i]
	}
	return out, err
}

// parallel calls do(0..n-1) on createWorkers goroutines and returns the first error.
func parallel(n int, do func(int) error) error {
	next := make(chan int)
	errs := make(chan error, createWorkers)
	var wg sync.WaitGroup
	for range min(createWorkers, n) {
		wg.Go(func() {
			for i := range next {
				if err := do(i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// deletePods removes a scenario's pods so that later scenarios' controllers do
// not list them. Pods without a node go at once; the namespace itself stays, as
// envtest runs no namespace controller.
func deletePods(ctx context.Context, client kubernetes.Interface, ns string) error {
	if err := client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("deleting the pods of %s: %w", ns, err)
	}
	return nil
}

// newNamespace creates a namespace named after prefix.
func newNamespace(ctx context.Context, client kubernetes.Interface, prefix string) (string, error) {
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("creating a namespace: %w", err)
	}
	return ns.Name, nil
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}
