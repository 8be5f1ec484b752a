package benchkwok

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// createWorkers is how many create calls the harness has in flight at once.
const createWorkers = 16

// gatedPod is a pod as the webhook leaves it in gate mode (managed label,
// scheduling gate, the gated dependencies in the status annotation): the
// webhook's own mutation (inject.Mutate) of a pod annotated with deps, applied
// here so that the pods are created directly, with no webhook in the path.
func gatedPod(ns, name string, deps map[string]string, affinity *corev1.Affinity) (*corev1.Pod, error) {
	annotations := map[string]string{inject.AnnotationPrefix + "gate": "true"}
	for k, v := range deps {
		annotations[inject.AnnotationPrefix+k] = v
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: corev1.PodSpec{
			Affinity:   affinity,
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1", Command: []string{"/app", "serve"}}},
		},
	}
	cfg := inject.Config{Image: "registry.example/kubernetes-entrypoint:bench", Controller: true}
	mutated, out, err := inject.Mutate(context.Background(), pod, cfg)
	if err != nil || out.Result != inject.ResultInjected || !hasGate(mutated) {
		return nil, fmt.Errorf("injecting pod %s/%s as the webhook does in gate mode: %s %s: %v", ns, name, out.Result, out.Message, err) //nolint:errorlint // err is nil when the pod was mutated wrong: %v says <nil>
	}
	return mutated, nil
}

// ungated is pod without the project's scheduling gate: the same pod stored,
// for the scheduler alone to bind.
func ungated(pod *corev1.Pod) *corev1.Pod {
	out := pod.DeepCopy()
	out.Spec.SchedulingGates = nil
	for _, g := range pod.Spec.SchedulingGates {
		if g.Name != inject.SchedulingGate {
			out.Spec.SchedulingGates = append(out.Spec.SchedulingGates, g)
		}
	}
	return out
}

// onNode is the required node affinity the DaemonSet controller gives its pods:
// that one node, by name.
func onNode(node string) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}}},
	}}
}

func hasGate(pod *corev1.Pod) bool {
	for _, g := range pod.Spec.SchedulingGates {
		if g.Name == inject.SchedulingGate {
			return true
		}
	}
	return false
}

// agentDaemonSet is the DaemonSet the same-node scenario's pods wait for. No
// DaemonSet controller runs: the harness creates its pods (agentPod).
func agentDaemonSet(ns string) *appsv1.DaemonSet {
	labels := map[string]string{"app": "agent"}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "registry.example/agent:1"}}},
			},
		},
	}
}

// agentPod is ds's pod on node as the DaemonSet controller would make it (owned
// by ds, pinned to node), bound at once: kwok makes it Ready.
func agentPod(ds *appsv1.DaemonSet, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: ds.Name + "-" + node, Namespace: ds.Namespace, Labels: ds.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Affinity:   onNode(node),
			Containers: ds.Spec.Template.Spec.Containers,
		},
	}
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

// makeReady gives each Service an EndpointSlice with one ready endpoint, all at
// once, and returns when each create call was sent: the Service became ready
// within the call, so timing from its start never flatters.
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

// createPods creates the pods podOf(0..n-1).
func createPods(ctx context.Context, client kubernetes.Interface, n int, podOf func(int) (*corev1.Pod, error)) error {
	return parallel(n, func(i int) error {
		pod, err := podOf(i)
		if err != nil {
			return err
		}
		if _, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		return nil
	})
}

// parallel calls do(0..n-1) on createWorkers goroutines and returns the first error.
func parallel(n int, do func(int) error) error {
	next := make(chan int)
	errs := make(chan error, 1)
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

// deletePods removes a namespace's pods (grace period 0: kwok is no kubelet to
// wait for) and waits until they are gone, so that the next scenario is
// measured on an API server that holds none of them. The API server ends a
// DeleteCollection of thousands of pods at its request timeout, part done:
// the call is repeated until none is left.
func deletePods(ctx context.Context, client kubernetes.Interface, ns string) error {
	deadline := time.Now().Add(stepTimeout)
	for {
		err := client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{})
		list, lerr := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1})
		switch {
		case lerr != nil:
			return fmt.Errorf("listing the pods of %s after deleting them: %w", ns, lerr)
		case len(list.Items) == 0:
			return nil
		case time.Now().After(deadline):
			last := "succeeded"
			if err != nil {
				last = err.Error()
			}
			return fmt.Errorf("the pods of %s are still there %s after their deletion began, e.g. %s (the last delete call: %s)", ns, stepTimeout, list.Items[0].Name, last)
		case err == nil:
			time.Sleep(time.Second) // the last ones are still going
		}
	}
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
		out[i] = prefix + "-" + strconv.Itoa(i)
	}
	return out
}
