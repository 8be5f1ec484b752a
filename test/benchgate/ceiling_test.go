package benchgate

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	keapi "github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/controller"
)

// ceilingResult is the raw rate of the controller's own writes on the same API
// server: the same gated pods, in the same state (the Waiting condition the
// controller writes to a pod that waits), released by a trivial client that
// sends exactly the controller's patch (controller.GateRemovalPatch), with the
// controller's client limits and as many workers as it has, and does nothing
// else while it releases (no informer, no evaluation, no condition).
type ceilingResult struct {
	pods     int
	workers  int
	answered time.Duration // first patch sent → last patch answered
	released time.Duration // first patch sent → last pod seen released by the harness's watch
	// perSecond are the pods seen released in each second from the first patch.
	perSecond []int
}

// rate is the raw client's releases per second, timed as the controller's are:
// to the last pod the harness's watch saw released.
func (c ceilingResult) rate() float64 { return float64(c.pods) / c.released.Seconds() }

// ceiling creates the scenario's pods again (one round) in a fresh namespace, no
// controller running, and releases them with the raw client.
// phase names its profiles (profile_test.go).
func (r *rig) ceiling(ctx context.Context, sc gatedScenario, phase string) (ceilingResult, error) {
	res := ceilingResult{pods: sc.podsPerRound(), workers: controller.DefaultWorkers}
	ns, err := newNamespace(ctx, r.client, "ceiling-"+sc.name)
	if err != nil {
		return res, err
	}
	w, err := watchPods(ctx, r.client, ns)
	if err != nil {
		return res, err
	}
	defer w.close()
	services := names("svc", sc.services)
	pods := names("pod", res.pods)
	serviceOf := make(map[string]string, len(pods))
	for i, p := range pods {
		serviceOf[p] = services[i/sc.perService]
	}
	if err := createGatedPods(ctx, r.client, ns, pods, func(i int) string { return services[i/sc.perService] }); err != nil {
		return res, err
	}
	defer func() { _ = deletePods(context.Background(), r.client, ns) }()
	if err := w.waitFor(pods, 2*time.Minute, "seen gated by the harness's watch", nil, seenGated); err != nil {
		return res, err
	}
	// What the controller reads from its informer; reading is not timed.
	list, err := r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return res, fmt.Errorf("listing the gated pods of %s: %w", ns, err)
	}
	if len(list.Items) != res.pods {
		return res, fmt.Errorf("%d pods in %s, created %d", len(list.Items), ns, res.pods)
	}
	raw, err := r.rawClient()
	if err != nil {
		return res, err
	}
	// The pods as the controller's are when it releases them: carrying the
	// Waiting condition it wrote while they waited (the API server's cost of a
	// patch grows with the object; the condition and its managed fields make
	// it about a quarter larger). Written untimed, under the controller's name.
	if err := r.markWaiting(ctx, ns, list.Items, func(name string) string { return serviceOf[name] }); err != nil {
		return res, err
	}
	if list, err = r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil {
		return res, fmt.Errorf("listing the gated pods of %s: %w", ns, err)
	}

	profiled := r.profiler.start(ctx, r, "ceiling-"+phase+"-"+sc.name, "")
	t0 := time.Now()
	err = parallelOn(res.workers, len(list.Items), func(i int) error {
		pod := &list.Items[i]
		patch, err := controller.GateRemovalPatch(pod)
		if err != nil {
			return err
		}
		if _, err := raw.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("the raw client's gate removal from pod %s/%s: %w", ns, pod.Name, err)
		}
		return nil
	})
	res.answered = time.Since(t0)
	if err != nil {
		return res, err
	}
	if err := w.waitFor(pods, releaseTimeout, "seen released by the harness's watch", nil, isReleased); err != nil {
		return res, err
	}
	last := t0
	released := w.released(pods)
	for _, at := range released {
		last = maxTime(last, at)
	}
	res.released = last.Sub(t0)
	res.perSecond = perSecond(t0, released)
	return res, profiled()
}

// markWaiting writes to each pod the condition the controller writes to a pod
// that waits for its Service (reason Waiting, the same message), as the
// controller does: a status patch under the controller's name (its user agent
// is its field manager).
func (r *rig) markWaiting(ctx context.Context, ns string, pods []corev1.Pod, serviceOf func(string) string) error {
	cfg := rest.CopyConfig(r.env.Config)
	cfg.UserAgent = "entrypoint-webhook"
	cfg.QPS, cfg.Burst = 1e6, 1e6
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	now := metav1.Now()
	return parallel(len(pods), func(i int) error {
		p := pods[i].DeepCopy()
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
			Type: keapi.ConditionType, Status: corev1.ConditionFalse, Reason: keapi.ReasonWaiting, LastTransitionTime: now,
			Message: fmt.Sprintf("waiting for service %s/%s: no endpoints", ns, serviceOf(p.Name)),
		})
		if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("writing the Waiting condition to pod %s/%s: %w", ns, p.Name, err)
		}
		return nil
	})
}

// rawClient is a plain client-go clientset as the controller's client is
// configured: the same credentials and client-side limits, protobuf (as
// controller-runtime's client uses for built-in types).
func (r *rig) rawClient() (kubernetes.Interface, error) {
	cfg := rest.CopyConfig(r.env.Config)
	cfg.QPS, cfg.Burst = float32(r.qps), r.burst
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("the raw client: %w", err)
	}
	return cs, nil
}
