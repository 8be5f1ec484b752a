package benchgate

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/controller"
)

// ceilingResult is the raw rate of the controller's own writes on the same API
// server: the same gated pods released by a trivial client that sends exactly
// the controller's patch (controller.GateRemovalPatch), with the controller's
// client limits and as many workers as it has, and does nothing else (no
// informers, no evaluation, no condition).
type ceilingResult struct {
	pods     int
	workers  int
	answered time.Duration // first patch sent → last patch answered
	released time.Duration // first patch sent → last pod seen released by the harness's watch
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
	for _, at := range w.released(pods) {
		last = maxTime(last, at)
	}
	res.released = last.Sub(t0)
	return res, profiled()
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
