//go:build e2e && faults

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
)

// The API server stopped for 20 s and started again with the same flags while 20
// resolvers wait for a Service: none starts its app before the Service gets a ready
// endpoint (made after the restart), and all start within seconds of it.
func TestFault1APIServerStopped(t *testing.T) {
	defer noPanic(t)
	scenario(t)
	ensureRunning(t, "kube-apiserver")
	ns := namespace(t, "fault-apiserver")
	const n = 20
	waitingApps(t, ns, n)

	// A few seconds of SIGTERM, then SIGKILL: it would otherwise finish its watches first.
	stopped := stopFor(t, "kube-apiserver", 5*time.Second, 20*time.Second)
	down := since(stopped)
	back := time.Now()

	before, after := releaseService(t, ns)
	early, lost, delays := appsStarted(t, ns, n, before, after, 3*time.Minute)
	maxDelay := slices.Max(append(delays, 0))
	// "Within seconds": generous for a noisy 2-core machine, the figure is reported.
	if maxDelay > time.Minute {
		t.Errorf("the last app started %s after the Service became ready: the resolvers resume too slowly after an API server restart", maxDelay)
	}
	// A restarted API server may answer 403 for a moment (its RBAC cache not filled
	// yet); a resolver that saw it reads Endpoints until its EndpointSlices can be
	// read again. The Service is released with both, so the count is only reported.
	fellBack := len(logLines(t, ns, "cannot list EndpointSlices; using Endpoints"))
	measured(t, early, lost, fmt.Sprintf("API server down %s (stop to ready again) while %d resolvers waited; the Service made ready %s after the API server was; %d of %d apps started, max %s after the Service became ready; %d resolvers fell back to Endpoints",
		down, n, before.Sub(back).Round(time.Millisecond), n-lost, n, maxDelay.Round(10*time.Millisecond), fellBack))
}

// The kubelet stopped for 10 s and started again while 5 resolvers wait: their
// containers keep running, they keep waiting and start the app once the Service is
// ready, never before; a container that was restarted must not have started early either.
func TestFault2KubeletRestarted(t *testing.T) {
	defer noPanic(t)
	scenario(t)
	ensureRunning(t, "kubelet")
	ns := namespace(t, "fault-kubelet")
	const n = 5
	waitingApps(t, ns, n)

	stopped := stopFor(t, "kubelet", 30*time.Second, 10*time.Second)
	ctx := context.Background()
	waitFor(t, "node Ready after the kubelet restart", 2*time.Minute, func() (bool, string) {
		node, err := cs.CoreV1().Nodes().Get(ctx, cluster.NodeName(), metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue && c.LastHeartbeatTime.After(stopped), c.Message
			}
		}
		return false, "no Ready condition"
	})
	down := since(stopped)
	// Still waiting, a few seconds after the kubelet is back.
	time.Sleep(3 * time.Second)

	before, after := releaseService(t, ns)
	early, lost, delays := appsStarted(t, ns, n, before, after, 3*time.Minute)
	restarts := 0
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=app"})
	must(t, err)
	for _, p := range pods.Items {
		for _, s := range p.Status.ContainerStatuses {
			restarts += int(s.RestartCount)
		}
	}
	measured(t, early, lost, fmt.Sprintf("kubelet down %s (stop to node Ready) while %d resolvers waited; %d of %d apps started, max %s after the Service became ready; container restarts %d",
		down, n, n-lost, n, slices.Max(append(delays, 0)).Round(10*time.Millisecond), restarts))
}

// The webhook's process killed (SIGKILL) as a rollout of an annotated Deployment
// begins: the ReplicaSet's creates are refused with a FailedCreate event naming the
// webhook, then all pods are created, injected and started once it is back; no pod of
// the Deployment is ever seen without the injection.
func TestFault3WebhookKilledDuringRollout(t *testing.T) {
	defer noPanic(t)
	scenario(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	ns := namespace(t, "fault-webhook-kill")
	createService(t, ns)
	releaseService(t, ns)
	const n = 3
	d := appDeployment("app", map[string]string{"entrypoint.io/dependency-service": "db"}, container("app", "print", "started"))
	d.Spec.Replicas = ptr.To[int32](n)
	d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	must(t, err)
	waitDeployment(t, ns, "app", 3*time.Minute)

	seen := watchInjection(ctx, t, ns)
	// Checked however the test ends: an uninjected pod is the worst outcome here.
	t.Cleanup(func() {
		if bare := seen.uninjected(); len(bare) > 0 {
			t.Errorf("pods of the Deployment seen without the injection: %v", bare)
			lostPods(len(bare)) // never injected: lost, by the summary's definition
		}
	})
	wh := webhookPods(t)
	if len(wh) != 1 {
		t.Fatalf("want 1 webhook pod, have %d", len(wh))
	}
	restartsBefore := wh[0].Status.ContainerStatuses[0].RestartCount
	id := strings.TrimPrefix(wh[0].Status.ContainerStatuses[0].ContainerID, "containerd://")
	killed := time.Now()
	must(t, cluster.KillContainer(id))
	rolloutAt := time.Now().Format(time.RFC3339Nano)
	_, err = cs.AppsV1().Deployments(ns).Patch(ctx, "app", types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"metadata":{"annotations":{"fault/rollout":"`+rolloutAt+`"}}}}}`), metav1.PatchOptions{})
	must(t, err)

	var refused string
	waitFor(t, "a FailedCreate event of the ReplicaSet", 2*time.Minute, func() (bool, string) {
		events, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=FailedCreate"})
		if err != nil {
			return false, err.Error()
		}
		for _, e := range events.Items {
			if e.InvolvedObject.Kind == "ReplicaSet" {
				refused = e.Message
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d FailedCreate events", len(events.Items))
	})
	// What an operator reads in kubectl describe: the webhook by name, the reason.
	for _, want := range []string{`failed calling webhook "pods.entrypoint.io"`, "Internal error occurred"} {
		if !strings.Contains(refused, want) {
			t.Errorf("FailedCreate message %q does not say %q", refused, want)
		}
	}
	t.Logf("FailedCreate: %s", refused)
	waitFor(t, "the webhook restarted and Ready", 3*time.Minute, func() (bool, string) {
		pods := webhookPods(t)
		if len(pods) != 1 {
			return false, fmt.Sprintf("%d webhook pods", len(pods))
		}
		s := pods[0].Status.ContainerStatuses[0]
		return s.RestartCount > restartsBefore && s.Ready, fmt.Sprintf("restarts %d ready %v", s.RestartCount, s.Ready)
	})
	back := since(killed)
	waitDeployment(t, ns, "app", 5*time.Minute)
	done := since(killed)

	// Every pod of the new template runs its app, injected.
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=app"})
	must(t, err)
	running := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Annotations["fault/rollout"] == rolloutAt && containerRunning(&p, "app") &&
			injected(p.Annotations, containerNames(p.Spec.InitContainers)) && len(podLogLines(t, ns, p.Name, "started (pid")) > 0 {
			running++
		}
	}
	uninjected := seen.uninjected()
	measured(t, 0, n-running, fmt.Sprintf("webhook killed as a %d-replica rollout began; refused with %q; webhook Ready again %s after the kill, rollout complete %s after it; %d pods seen, %d uninjected",
		n, shorten(refused, 160), back, done, seen.count(), len(uninjected)))
}

// A forced rotation of the self-signed CA (the Secret annotated entrypoint.io/rotate)
// while pods are created one after the other: the caBundle and the served certificate
// both change, and every create succeeds and is injected.
func TestFault4ForcedCARotation(t *testing.T) {
	defer noPanic(t)
	scenario(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := namespace(t, "fault-rotation")
	oldBundle := caBundle(t)
	oldCert := servedCert(t)
	if err := verifyServed(oldCert, oldBundle); err != nil {
		t.Fatalf("before the rotation: %v", err)
	}

	creator := startCreating(ctx, t, ns, 1, 150*time.Millisecond)
	time.Sleep(2 * time.Second)
	secret := tlsSecretName(t)
	rotated := time.Now()
	_, err := cs.CoreV1().Secrets(webhookNamespace).Patch(ctx, secret, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"entrypoint.io/rotate":"`+strconv.FormatInt(rotated.UnixNano(), 10)+`"}}}`), metav1.PatchOptions{})
	must(t, err)
	var newBundle []byte
	var newCert *x509.Certificate
	waitFor(t, "a new CA in the caBundle and a certificate of it served", 2*time.Minute, func() (bool, string) {
		newBundle, newCert = caBundle(t), servedCert(t)
		if bytes.Equal(newBundle, oldBundle) {
			return false, "caBundle unchanged"
		}
		if bytes.Equal(newCert.Raw, oldCert.Raw) {
			return false, "served certificate unchanged"
		}
		if err := verifyServed(newCert, newBundle); err != nil {
			return false, err.Error()
		}
		if verifyServed(newCert, oldBundle) == nil {
			return false, "the served certificate is still of the old CA"
		}
		return true, ""
	})
	took := since(rotated)
	// Creates go on a few check intervals more: the previous CA leaves the bundle later.
	time.Sleep(6 * time.Second)
	created, failures := creator.stop()
	for _, f := range failures {
		t.Errorf("create failed or not injected: %s", f)
	}
	if created < 20 {
		t.Errorf("only %d creates during the rotation", created)
	}
	measured(t, 0, len(failures), fmt.Sprintf("forced rotation: new CA served %s after the annotation (check interval 2s); caBundle %d -> %d CA certificates; %d pods created meanwhile, %d failed",
		took, len(pemCerts(oldBundle)), len(pemCerts(newBundle)), created, len(failures)))
}

// The webhook's Deployment at 2 replicas restarted one pod at a time (as kubectl
// rollout restart does) while at least 200 annotated pods are created: every create
// succeeds and is injected (PDB, readiness, graceful drain; the API server calls a
// ready endpoint of the Service).
func TestFault5WebhookRollingRestart(t *testing.T) {
	defer noPanic(t)
	scenario(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	ns := namespace(t, "fault-rolling")
	name := webhookDeploymentName(t)
	scale := func(n int) {
		_, err := cs.AppsV1().Deployments(webhookNamespace).Patch(context.Background(), name, types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)), metav1.PatchOptions{})
		must(t, err)
	}
	scale(2)
	t.Cleanup(func() { scale(1) })
	waitDeployment(t, webhookNamespace, name, 3*time.Minute)
	waitFor(t, "2 ready endpoints of the webhook's Service", 2*time.Minute, func() (bool, string) {
		n := readyEndpoints(t)
		return n == 2, fmt.Sprintf("%d ready", n)
	})

	const want = 200
	creator := startCreating(ctx, t, ns, 2, 100*time.Millisecond)
	time.Sleep(2 * time.Second)
	restarted := time.Now()
	_, err := cs.AppsV1().Deployments(webhookNamespace).Patch(ctx, name, types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"`+restarted.Format(time.RFC3339)+`"}}}}}`), metav1.PatchOptions{})
	must(t, err)
	// Done when the new pods are Ready and the old ones are gone, not only Terminating.
	waitFor(t, "the webhook's rollout restart", 4*time.Minute, func() (bool, string) {
		pods := webhookPods(t)
		fresh := 0
		for _, p := range pods {
			if p.Annotations["kubectl.kubernetes.io/restartedAt"] == restarted.Format(time.RFC3339) && p.DeletionTimestamp == nil && podReady(&p) {
				fresh++
			}
		}
		return fresh == 2 && len(pods) == 2, fmt.Sprintf("%d pods, %d new and Ready", len(pods), fresh)
	})
	rollout := since(restarted)
	createdByRolloutEnd := creator.createdBefore(time.Now())
	// Creates go on a little after the last old pod is gone, then up to the count.
	time.Sleep(2 * time.Second)
	waitFor(t, fmt.Sprintf("%d creates", want), 4*time.Minute, func() (bool, string) {
		n := creator.created.Load()
		return n >= want, fmt.Sprintf("%d created", n)
	})
	created, failures := creator.stop()
	for _, f := range failures {
		t.Errorf("create failed or not injected: %s", f)
	}
	// The creates span the whole restart: some before it began, some after it ended.
	createdFirst := creator.createdBefore(restarted)
	if createdFirst == 0 || createdByRolloutEnd >= created {
		t.Errorf("the creates did not span the restart: %d of %d before it began, %d by its end", createdFirst, created, createdByRolloutEnd)
	}
	measured(t, 0, len(failures), fmt.Sprintf("2 webhook replicas restarted one at a time in %s while %d pods were created (%d before the restart began, %d by its end), %d failed",
		rollout, created, createdFirst, createdByRolloutEnd, len(failures)))
}

// ensureRunning starts component name again at the end of the test if the test left
// it stopped, so that one failure does not take the rest of the suite with it.
// stopFor stops the component name (SIGTERM, SIGKILL after grace), keeps it down
// for down, and starts it again with the same flags; it returns when it was stopped.
func stopFor(t *testing.T, name string, grace, down time.Duration) time.Time {
	t.Helper()
	must(t, cluster.StopComponent(name, grace))
	stopped := time.Now()
	time.Sleep(down)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	must(t, cluster.StartComponent(ctx, name, 2*time.Minute))
	return stopped
}

func ensureRunning(t *testing.T, name string) {
	t.Cleanup(func() {
		if slices.Contains(cluster.Running(), name) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := cluster.StartComponent(ctx, name, 2*time.Minute); err != nil {
			t.Errorf("starting %s again: %v", name, err)
		}
	})
}

// createService makes Service "db" without a selector: the test writes its
// EndpointSlice, so it knows the moment the Service becomes ready.
func createService(t *testing.T, ns string) {
	t.Helper()
	_, err := cs.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "db", Port: 3306}}},
	}, metav1.CreateOptions{})
	must(t, err)
}

// waitingApps runs n replicas of an annotated app waiting for Service "db" and waits
// until every resolver has logged that it waits.
func waitingApps(t *testing.T, ns string, n int) {
	t.Helper()
	createService(t, ns)
	d := appDeployment("app", map[string]string{"entrypoint.io/dependency-service": "db"}, container("app", "print", "started"))
	d.Spec.Replicas = ptr.To(int32(n))
	d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](0)
	_, err := cs.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	must(t, err)
	waitFor(t, fmt.Sprintf("%d resolvers waiting", n), 5*time.Minute, func() (bool, string) {
		waiting := len(logLines(t, ns, `"msg":"waiting for dependencies"`))
		return waiting >= n, fmt.Sprintf("%d of %d waiting", waiting, n)
	})
}

// releaseService gives Service "db" a ready endpoint as a cluster does for a Service with
// a selector: an Endpoints object and an EndpointSlice. before is when the first create
// was sent (nothing can see the Service ready earlier), after when the last returned.
func releaseService(t *testing.T, ns string) (before, after time.Time) {
	t.Helper()
	ctx := context.Background()
	before = time.Now()
	_, err := cs.CoreV1().Endpoints(ns).Create(ctx, &corev1.Endpoints{ //nolint:staticcheck // SA1019: the Endpoints a cluster still writes beside the slice
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Subsets: []corev1.EndpointSubset{{ //nolint:staticcheck // SA1019: as above
			Addresses: []corev1.EndpointAddress{{IP: "10.85.0.250"}},
			Ports:     []corev1.EndpointPort{{Name: "db", Port: 3306}},
		}},
	}, metav1.CreateOptions{})
	must(t, err)
	_, err = cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "db-1", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.85.0.250"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("db"), Port: ptr.To[int32](3306)}},
	}, metav1.CreateOptions{})
	must(t, err)
	return before, time.Now()
}

// appsStarted waits (up to timeout) until n apps of namespace ns have printed their
// start, then counts the early starts (every start of every container instance, from
// the app's own clock, before the dependency was made ready), the lost pods (never
// started) and each started pod's delay from the dependency's readiness (after).
func appsStarted(t *testing.T, ns string, n int, before, after time.Time, timeout time.Duration) (early, lost int, delays []time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var starts map[string][]time.Time
	for {
		starts = appStartTimes(t, ns)
		if len(starts) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for pod, ts := range starts {
		for _, at := range ts {
			if at.Before(before) {
				early++
				t.Errorf("pod %s: the app started at %s, before the dependency was made ready at %s", pod, at.Format(time.RFC3339Nano), before.Format(time.RFC3339Nano))
			}
		}
		first := slices.MinFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		delays = append(delays, max(first.Sub(after), 0))
	}
	if len(starts) < n {
		lost = n - len(starts)
		t.Errorf("%d of %d apps started after %s", len(starts), n, timeout)
	}
	return early, lost, delays
}

// appStartTimes are the start clocks testapp printed, by pod, read from the kubelet's
// log files of the "app" containers (every instance, restarts included; no API call).
func appStartTimes(t *testing.T, ns string) map[string][]time.Time {
	t.Helper()
	files, err := filepath.Glob(cluster.Path("pod-logs", ns+"_*", "app", "*.log"))
	must(t, err)
	out := map[string][]time.Time{}
	for _, f := range files {
		pod := filepath.Base(filepath.Dir(filepath.Dir(f)))
		for _, l := range fileLines(f, "started (pid") {
			at, err := appStartTime(l)
			must(t, err)
			out[pod] = append(out[pod], at)
		}
	}
	return out
}

// podLogLines are the lines with s in the app container's log files of one pod.
func podLogLines(t *testing.T, ns, pod, s string) []string {
	t.Helper()
	files, err := filepath.Glob(cluster.Path("pod-logs", ns+"_"+pod+"_*", "app", "*.log"))
	must(t, err)
	var lines []string
	for _, f := range files {
		lines = append(lines, fileLines(f, s)...)
	}
	return lines
}

func fileLines(path, s string) []string {
	fh, err := os.Open(path)
	if err != nil {
		return nil // rotated or removed meanwhile
	}
	defer fh.Close()
	var lines []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, s) {
			lines = append(lines, l)
		}
	}
	return lines
}

// waitDeployment waits until the Deployment's rollout is complete: every replica
// updated, Ready and available, no old one left.
func waitDeployment(t *testing.T, ns, name string, timeout time.Duration) {
	t.Helper()
	waitFor(t, "rollout of "+ns+"/"+name, timeout, func() (bool, string) {
		d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		want := ptr.Deref(d.Spec.Replicas, 1)
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.ReadyReplicas == want &&
				s.AvailableReplicas == want && s.Replicas == want,
			fmt.Sprintf("updated %d ready %d available %d of %d (%d in all)", s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, want, s.Replicas)
	})
}

// injectionWatch records every pod of a namespace the API server reports, and those
// without the injection.
type injectionWatch struct {
	mu   sync.Mutex
	all  map[string]bool
	bare []string
}

func (w *injectionWatch) uninjected() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.bare)
}

func (w *injectionWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.all)
}

// watchInjection watches the pods of ns until ctx ends (listing again when a watch ends).
func watchInjection(ctx context.Context, t *testing.T, ns string) *injectionWatch {
	w := &injectionWatch{all: map[string]bool{}}
	see := func(p *corev1.Pod) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, ok := w.all[p.Name]; ok {
			return
		}
		ok := injected(p.Annotations, containerNames(p.Spec.InitContainers))
		w.all[p.Name] = ok
		if !ok {
			w.bare = append(w.bare, p.Name)
		}
	}
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	must(t, err)
	for i := range list.Items {
		see(&list.Items[i])
	}
	rv := list.ResourceVersion
	go func() {
		for ctx.Err() == nil {
			wi, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			for ev := range wi.ResultChan() {
				if p, ok := ev.Object.(*corev1.Pod); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
					see(p)
					rv = p.ResourceVersion
				}
			}
			wi.Stop()
		}
	}()
	return w
}

func containerNames(cs []corev1.Container) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

// webhookPods are the webhook's pods, Terminating ones included.
func webhookPods(t *testing.T) []corev1.Pod {
	t.Helper()
	pods, err := cs.CoreV1().Pods(webhookNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=webhook"})
	must(t, err)
	return pods.Items
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func webhookDeploymentName(t *testing.T) string {
	t.Helper()
	ds, err := cs.AppsV1().Deployments(webhookNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=webhook"})
	must(t, err)
	if len(ds.Items) != 1 {
		t.Fatalf("want one webhook Deployment in %s, have %d", webhookNamespace, len(ds.Items))
	}
	return ds.Items[0].Name
}

// readyEndpoints counts the ready endpoints of the webhook's Service.
func readyEndpoints(t *testing.T) int {
	t.Helper()
	cfg := webhookConfig(t)
	svc := cfg.Webhooks[0].ClientConfig.Service
	if svc == nil {
		t.Fatalf("the webhook is registered by URL, not through its Service")
	}
	slices, err := cs.DiscoveryV1().EndpointSlices(svc.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc.Name})
	must(t, err)
	n := 0
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if ptr.Deref(e.Conditions.Ready, true) {
				n++
			}
		}
	}
	return n
}

// webhookConfig is the chart's MutatingWebhookConfiguration.
func webhookConfig(t *testing.T) *admissionregistrationv1.MutatingWebhookConfiguration {
	t.Helper()
	list, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().List(context.Background(), metav1.ListOptions{})
	must(t, err)
	for i, c := range list.Items {
		if len(c.Webhooks) > 0 && c.Webhooks[0].Name == "pods.entrypoint.io" {
			return &list.Items[i]
		}
	}
	t.Fatal("no MutatingWebhookConfiguration with webhook pods.entrypoint.io")
	return nil
}

func caBundle(t *testing.T) []byte {
	t.Helper()
	return webhookConfig(t).Webhooks[0].ClientConfig.CABundle
}

func tlsSecretName(t *testing.T) string {
	t.Helper()
	list, err := cs.CoreV1().Secrets(webhookNamespace).List(context.Background(), metav1.ListOptions{})
	must(t, err)
	for _, s := range list.Items {
		if strings.HasSuffix(s.Name, "-webhook-tls") {
			return s.Name
		}
	}
	t.Fatalf("no *-webhook-tls Secret in %s", webhookNamespace)
	return ""
}

// servedCert is the certificate a Ready webhook pod serves, read at its pod IP as the
// API server reaches it (through the pods' bridge).
func servedCert(t *testing.T) *x509.Certificate {
	t.Helper()
	svc := webhookConfig(t).Webhooks[0].ClientConfig.Service
	for _, p := range webhookPods(t) {
		if p.DeletionTimestamp != nil || !podReady(&p) || p.Status.PodIP == "" {
			continue
		}
		port := int32(9443)
		for _, c := range p.Spec.Containers[0].Ports {
			if c.Name == "webhook" || c.Name == "https" {
				port = c.ContainerPort
			}
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", net.JoinHostPort(p.Status.PodIP, strconv.Itoa(int(port))),
			&tls.Config{ServerName: svc.Name + "." + svc.Namespace + ".svc", InsecureSkipVerify: true}) // verified by verifyServed against the caBundle
		if err != nil {
			t.Fatalf("TLS to the webhook pod %s: %v", p.Name, err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	t.Fatal("no Ready webhook pod")
	return nil
}

// verifyServed checks cert for the Service's name against the CAs of bundle, as the
// API server does.
func verifyServed(cert *x509.Certificate, bundle []byte) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		return fmt.Errorf("no certificate in the caBundle")
	}
	_, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: cert.DNSNames[0]})
	return err
}

func pemCerts(bundle []byte) []*pem.Block {
	var blocks []*pem.Block
	for {
		var b *pem.Block
		if b, bundle = pem.Decode(bundle); b == nil {
			return blocks
		}
		blocks = append(blocks, b)
	}
}

// creator creates annotated pods that never schedule (nothing has the label their
// nodeSelector asks for) and checks that each create succeeded and came back injected.
type creator struct {
	created  atomic.Int64
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	failures []string
	times    []time.Time
}

// startCreating runs workers creating pods one after the other, each pausing pace
// between its creates, until stop.
func startCreating(ctx context.Context, t *testing.T, ns string, workers int, pace time.Duration) *creator {
	ctx, cancel := context.WithCancel(ctx)
	c := &creator{cancel: cancel}
	t.Cleanup(cancel)
	for w := range workers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				pod := pendingPod(fmt.Sprintf("p-%d-%d", w, i))
				got, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
				if ctx.Err() != nil {
					return // stopped mid-request: not the webhook's failure
				}
				c.mu.Lock()
				switch {
				case err != nil:
					c.failures = append(c.failures, fmt.Sprintf("%s at %s: %v", pod.Name, time.Now().Format(time.RFC3339Nano), err))
				case !injected(got.Annotations, containerNames(got.Spec.InitContainers)):
					c.failures = append(c.failures, fmt.Sprintf("%s at %s: admitted without the injection", pod.Name, time.Now().Format(time.RFC3339Nano)))
				default:
					c.created.Add(1)
					c.times = append(c.times, time.Now())
				}
				c.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(pace):
				}
			}
		}()
	}
	return c
}

// stop ends the creates and returns how many succeeded and the failures.
func (c *creator) stop() (int, []string) {
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.created.Load()), slices.Clone(c.failures)
}

// createdBefore is how many creates had succeeded before at.
func (c *creator) createdBefore(at time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.times {
		if t.Before(at) {
			n++
		}
	}
	return n
}

func pendingPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"entrypoint.io/dependency-service": "db"}},
		Spec: corev1.PodSpec{
			NodeSelector:                  map[string]string{"fault.entrypoint.io/nowhere": "true"},
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers:                    []corev1.Container{container("app", "print", "started")},
		},
	}
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
