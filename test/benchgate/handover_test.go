package benchgate

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchproc"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/controller"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook/server"
)

// Leader hand-over under load: two controller processes campaign for the same
// Lease; the leader is SIGKILLed (no release of the Lease, no goodbye) once half
// of the pods are released, and the other must release the rest, each pod once.

// handoverResult is what one hand-over saw.
type handoverResult struct {
	pods            int
	releasedAtKill  int           // seen released by the harness when the leader was killed
	readyToKill     time.Duration // first EndpointSlice create call → SIGKILL
	killToAcquired  time.Duration // SIGKILL → the new leader's acquireTime in the Lease
	killToLast      time.Duration // SIGKILL → the last pod seen released
	acquiredToFirst time.Duration // the new leader's acquireTime → the first pod seen released after it
	allReleased     time.Duration // first EndpointSlice create call → last release
	leaseDuration   time.Duration // the Lease's leaseDurationSeconds, as its holder wrote it
	oldLeader       string        // the Lease's holderIdentity while the first process led
	newLeader       string        // and after the hand-over
	transitions     int32         // the Lease's leaseTransitions after the hand-over
	podWrites       float64       // writes to the pods (not their status) the API server accepted, from the readiness on
	podWriteCodes   string        // the writes to the pods by response code: 200, and 422 for a patch whose test failed
	notEvaluated    string        // why the first leader's conditions were not waited for, if they were not
}

// handover runs the scenario on n pods spread over services Services in a fresh
// namespace, which also holds the Lease; leaseFlags are more flags of both
// processes (the Lease's timings; none: entrypoint-webhook's defaults). An
// error is a functional failure: a pod not released, released twice, a gate
// left, or no new leader.
func (r *rig) handover(ctx context.Context, n, services int, leaseFlags ...string) (handoverResult, error) {
	res := handoverResult{pods: n}
	ns, err := newNamespace(ctx, r.client, "handover")
	if err != nil {
		return res, err
	}
	w, err := watchPods(ctx, r.client, ns)
	if err != nil {
		return res, err
	}
	defer w.close()

	elect := append([]string{"--leader-elect=true", "--namespace", ns}, leaseFlags...)
	// The first process alone: it takes the fresh Lease and releases the canary.
	first, err := r.startControllerAs(ctx, "the first controller", elect...)
	if err != nil {
		return res, err
	}
	defer first.Stop()
	lease, err := r.lease(ctx, ns)
	if err != nil {
		return res, err
	}
	res.oldLeader = holder(lease)
	if res.oldLeader == "" {
		return res, fmt.Errorf("the first controller released the canary but the Lease %s/%s names no holder", ns, controller.LeaseName)
	}
	second, err := r.launchController("the second controller", elect...)
	if err != nil {
		return res, err
	}
	defer second.Stop()
	if err := waitLog(second, "Attempting to acquire leader lease", startupTimeout); err != nil {
		return res, err
	}

	svcs := names("svc", services)
	if err := createServices(ctx, r.client, ns, svcs); err != nil {
		return res, err
	}
	pods := names("pod", n)
	perService := (n + services - 1) / services
	serviceOf := func(i int) string { return svcs[i/perService] }
	if err := createGatedPods(ctx, r.client, ns, pods, serviceOf); err != nil {
		return res, err
	}
	defer func() { _ = deletePods(context.Background(), r.client, ns) }()
	if err := w.waitFor(pods, 2*time.Minute, "seen gated by the harness's watch", nil, seenGated); err != nil {
		return res, err
	}
	limit := 30*time.Second + time.Duration(n)*20*time.Millisecond
	if err := w.waitFor(pods, limit, "evaluated by the first controller", first.Running, evaluated); err != nil {
		if first.Exited() {
			return res, err
		}
		res.notEvaluated = err.Error()
	}
	if lease, err = r.lease(ctx, ns); err != nil {
		return res, err
	}
	if holder(lease) != res.oldLeader {
		return res, fmt.Errorf("the Lease changed hands before the kill: %q, then %q; %s; %s", res.oldLeader, holder(lease), first.Diagnosis(), second.Diagnosis())
	}
	before, err := r.scrape()
	if err != nil {
		return res, err
	}

	t1 := time.Now()
	if _, err := makeReady(ctx, r.client, ns, svcs); err != nil {
		return res, err
	}
	for {
		released, _ := w.count(pods, isReleased)
		if released >= n/2 {
			break
		}
		if err := first.Running(); err != nil {
			return res, fmt.Errorf("the leader ended before half the pods were released (%d of %d): %w", released, n, err)
		}
		if time.Since(t1) > releaseTimeout {
			return res, fmt.Errorf("%d of %d pods released %s after their Services became ready; %s", released, n, releaseTimeout, first.Diagnosis())
		}
		time.Sleep(2 * time.Millisecond)
	}
	killed := time.Now()
	first.Kill()
	res.readyToKill = killed.Sub(t1)
	res.releasedAtKill, _ = w.count(pods, isReleased)

	// The Lease outlives its dead holder by its duration; then the second
	// process takes it, starts its informers and releases the rest.
	if err := w.waitFor(pods, releaseTimeout+time.Minute, "released", second.Running, isReleased); err != nil {
		_, missing := w.count(pods, isReleased)
		s, _ := w.state(missing)
		return res, fmt.Errorf("after the leader's SIGKILL at %d of %d released: %w; pod %s: %s; %s",
			res.releasedAtKill, n, err, missing, describe(s), second.Diagnosis())
	}
	last := t1
	for _, at := range w.released(pods) {
		last = maxTime(last, at)
	}
	res.allReleased, res.killToLast = last.Sub(t1), last.Sub(killed)

	if lease, err = r.lease(ctx, ns); err != nil {
		return res, err
	}
	res.newLeader, res.transitions = holder(lease), ptrValue(lease.Spec.LeaseTransitions)
	if res.newLeader == "" || res.newLeader == res.oldLeader {
		return res, fmt.Errorf("every pod was released, but the Lease's holder is %q after the hand-over (%q before): the second controller did not lead; %s",
			res.newLeader, res.oldLeader, second.Diagnosis())
	}
	if !strings.Contains(second.Output(), "Successfully acquired lease") {
		return res, fmt.Errorf("the Lease passed to %q, but the second controller did not log that it acquired it; %s", res.newLeader, second.Diagnosis())
	}
	if lease.Spec.AcquireTime != nil {
		acquired := lease.Spec.AcquireTime.Time
		res.killToAcquired = acquired.Sub(killed)
		first := last
		for _, at := range w.released(pods) {
			if at.After(acquired) && at.Before(first) {
				first = at
			}
		}
		res.acquiredToFirst = first.Sub(acquired)
	}
	if lease.Spec.LeaseDurationSeconds != nil {
		res.leaseDuration = time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second
	}
	if err := r.checkReleasedOnce(ctx, ns, pods, w, before, &res); err != nil {
		return res, fmt.Errorf("after the hand-over (the leader SIGKILLed at %d of %d released): %w", res.releasedAtKill, n, err)
	}
	return res, second.Running()
}

// checkReleasedOnce: no pod lost, none gated in the API server, none seen gated
// again after its release, and at most one accepted write per pod (the gate
// removal: the controller writes nothing else of a pod but its status). A
// removal in flight when the leader died may be stored yet answered with
// another code than 200, to a client that is gone: fewer is no failure.
func (r *rig) checkReleasedOnce(ctx context.Context, ns string, pods []string, w *podWatch, before metrics, res *handoverResult) error {
	if n, regated := w.count(pods, func(s *podState) bool { return s.regated == 0 }); n < len(pods) {
		s, _ := w.state(regated)
		return fmt.Errorf("%d pods were seen gated again after their release, e.g. %s (%d times)", len(pods)-n, regated, s.regated)
	}
	list, err := r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing the released pods: %w", err)
	}
	have := map[string]bool{}
	for i := range list.Items {
		have[list.Items[i].Name] = true
		if hasGate(&list.Items[i]) {
			return fmt.Errorf("pod %s/%s still holds the gate in the API server, though the watch saw it released", ns, list.Items[i].Name)
		}
	}
	for _, name := range pods {
		if !have[name] {
			return fmt.Errorf("pod %s/%s is gone (%d of %d pods left)", ns, name, len(list.Items), len(pods))
		}
	}
	// A request is counted once it has completed, which may be after its watch
	// event was sent: wait a little for the count to reach the pods.
	want := float64(len(pods))
	deadline := time.Now().Add(10 * time.Second)
	var after metrics
	for {
		if after, err = r.scrape(); err != nil {
			return err
		}
		res.podWrites = podWrites(after) - podWrites(before)
		if res.podWrites >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	res.podWriteCodes = largest(podWriteCodes(before, after), 10)
	if res.podWrites > want {
		return fmt.Errorf("the API server accepted %.0f writes to the %d pods (not their status) after their Services became ready; want at most one gate removal each; writes by response code: %s",
			res.podWrites, len(pods), res.podWriteCodes)
	}
	return nil
}

func (r *rig) lease(ctx context.Context, ns string) (*coordinationv1.Lease, error) {
	lease, err := r.client.CoordinationV1().Leases(ns).Get(ctx, controller.LeaseName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading the controller's Lease %s/%s: %w", ns, controller.LeaseName, err)
	}
	return lease, nil
}

func holder(l *coordinationv1.Lease) string { return ptrValue(l.Spec.HolderIdentity) }

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// waitLog waits until the process has logged line, or gives up with its diagnosis.
func waitLog(p *benchproc.Process, line string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Output(), line) {
		if p.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("%s did not log %q within %s: %s", p.Name, line, timeout, p.Diagnosis())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (res handoverResult) print() {
	fmt.Printf("\n== gate: leader hand-over under load: %d pods, the leader SIGKILLed once half are released ==\n", res.pods)
	row := func(k, format string, args ...any) { fmt.Printf("  %-34s %s\n", k, fmt.Sprintf(format, args...)) }
	row("leader election", "lease duration %s (the Lease's; --leader-elect-lease-duration)", res.leaseDuration)
	row("released when the leader died", "%d of %d, %.2f s after the first EndpointSlice create call", res.releasedAtKill, res.pods, res.readyToKill.Seconds())
	row("SIGKILL → new leader", "%.2f s (its acquireTime in the Lease; %d transitions)", res.killToAcquired.Seconds(), res.transitions)
	row("new leader → its first release", "%.2f s (its informers start once it leads)", res.acquiredToFirst.Seconds())
	row("SIGKILL → last release", "%.2f s: the rest, %d pods (the dead leader's last writes among them), at %.0f pods/s from the new leader's first release",
		res.killToLast.Seconds(), res.pods-res.releasedAtKill, float64(res.pods-res.releasedAtKill)/(res.killToLast-res.killToAcquired-res.acquiredToFirst).Seconds())
	row("all released after", "%.2f s (from the first EndpointSlice create call)", res.allReleased.Seconds())
	row("gate removals accepted", "%.0f for %d pods; none seen gated after its release, no gate left", res.podWrites, res.pods)
	row("writes to the pods by code", "%s", res.podWriteCodes)
	if res.notEvaluated != "" {
		row("condition not waited for", "%s", res.notEvaluated)
	}
}

func (res handoverResult) report(b *testing.B) {
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(res.killToLast.Seconds(), "kill-to-last-s")
	b.ReportMetric(res.killToAcquired.Seconds(), "kill-to-leader-s")
	b.ReportMetric(res.acquiredToFirst.Seconds(), "leader-to-first-s")
	b.ReportMetric(float64(res.releasedAtKill), "released-at-kill")
	b.ReportMetric(res.leaseDuration.Seconds(), "lease-s")
}

func (res handoverResult) summary() string {
	return fmt.Sprintf("handover: leader SIGKILLed at %d of %d released, new leader after %.1f s (lease %s), last release %.1f s after the kill, each pod released once",
		res.releasedAtKill, res.pods, res.killToAcquired.Seconds(), res.leaseDuration, res.killToLast.Seconds())
}

// The hand-over's correctness, smaller and untimed: two controller processes on
// one Lease, the leader SIGKILLed at half, and the other releases the rest,
// each pod once, no gate left. The Lease is short (4 s, renewed within 3 s,
// tried every 0.5 s) so that the test does not wait out the default 15 s; the
// benchmark (BenchmarkGate/handover) keeps the defaults.
func TestLeaderHandover(t *testing.T) {
	r := the
	if r == nil {
		t0 := time.Now()
		r = testRig(t)
		t.Logf("control plane up and entrypoint-webhook built in %.1f s", time.Since(t0).Seconds())
	}
	res, err := r.handover(context.Background(), 1000, 10,
		"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms")
	res.print()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the leader SIGKILLed at %d of %d released; the Lease passed from %s to %s, %.1f s after the kill; %.0f gate removals accepted",
		res.releasedAtKill, res.pods, res.oldLeader, res.newLeader, res.killToAcquired.Seconds(), res.podWrites)
}

// testRig is a rig of the test's own: a fresh control plane, entrypoint-webhook
// built (or ENTRYPOINT_WEBHOOK_BINARY), its default client limits.
func testRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{env: testenv.StartT(t, envtest.Environment{})}
	dir := t.TempDir()
	var err error
	if r.controller, err = testBinary(dir, "ENTRYPOINT_WEBHOOK_BINARY", "entrypoint-webhook", "/cmd/webhook"); err != nil {
		t.Fatal(err)
	}
	defaults := server.DefaultOptions()
	r.qps, r.burst = int(defaults.KubeAPIQPS), defaults.KubeAPIBurst
	if err := r.finish(dir); err != nil {
		t.Fatal(err)
	}
	return r
}
