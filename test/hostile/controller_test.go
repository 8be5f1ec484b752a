package hostile

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchproc"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testpods"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/controller"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// The dependency controller's hostile cases: pods created with the managed
// label and a status annotation of their author's ("forged": the webhook never
// saw them), each case judged by a fresh entrypoint-webhook process that runs
// the controller alone against envtest.

// envWebhookBinary names a built entrypoint-webhook (make bench-hostile sets
// it); without it the binary is built into a temporary directory.
const envWebhookBinary = "ENTRYPOINT_WEBHOOK_BINARY"

// webhookBinary is ENTRYPOINT_WEBHOOK_BINARY, checked, or cmd/webhook built
// into dir with go build's default flags (benchproc.Binary).
func webhookBinary(tb testing.TB, dir string) string {
	tb.Helper()
	p, err := benchproc.Binary(dir, envWebhookBinary, "entrypoint-webhook", "/cmd/webhook", nil)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// ctrlRig is what every case shares: the control plane, a client of the
// harness's own, the binary under test and its kubeconfig (cluster-admin).
type ctrlRig struct {
	env        *testenv.Env
	client     kubernetes.Interface
	binary     string
	kubeconfig string
}

func newCtrlRig(tb testing.TB, env *testenv.Env) *ctrlRig {
	tb.Helper()
	dir := tb.TempDir()
	cfg := rest.CopyConfig(env.Config)
	// Creating a hundred pods and 40 MiB of ConfigMaps as fast as the API
	// server takes them.
	cfg.QPS, cfg.Burst = 1e6, 1e6
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &ctrlRig{env: env, client: cs, binary: webhookBinary(tb, dir), kubeconfig: testenv.Kubeconfig(tb, env.Config, dir)}
}

// ctrlProcess is one running entrypoint-webhook, the controller alone.
type ctrlProcess struct{ *benchproc.Process }

// readyTimeout bounds how long a fresh controller may take to start its workers.
const readyTimeout = time.Minute

// startCtrlProcess starts the controller alone in a fresh process and returns
// once its workers run; it is stopped when tb ends.
func startCtrlProcess(tb testing.TB, r *ctrlRig) *ctrlProcess {
	tb.Helper()
	// Not the KUBECONFIG of whoever runs the benchmark.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") {
			env = append(env, kv)
		}
	}
	proc, err := benchproc.Start("entrypoint-webhook", env, r.binary, "--webhook=false", "--controller=true", "--leader-elect=false",
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--kubeconfig", r.kubeconfig)
	if err != nil {
		tb.Fatal(err)
	}
	p := &ctrlProcess{proc}
	tb.Cleanup(p.Stop)
	deadline := time.Now().Add(readyTimeout)
	for !strings.Contains(p.Output(), "Starting workers") {
		if p.Exited() || time.Now().After(deadline) {
			tb.Fatalf("the controller did not start its workers within %s: %s", readyTimeout, p.Diagnosis())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// peakKiB is the process's peak RSS so far: VmHWM of its /proc/<pid>/status.
func (p *ctrlProcess) peakKiB() (int64, error) {
	if p.Exited() {
		return 0, fmt.Errorf("the controller exited: %s", p.Diagnosis())
	}
	return peakRSSOf(fmt.Sprintf("/proc/%d/status", p.Pid()))
}

// scenario is one case's namespaces and client.
type scenario struct {
	r *ctrlRig
	// ns holds the case's pods; other what they name elsewhere (a victim's
	// ConfigMap, the large ConfigMaps).
	ns, other string
}

// ctrlCase is one hostile case of the controller.
type ctrlCase struct {
	name string
	// prepare creates, before the controller starts, what the pods name.
	prepare func(tb testing.TB, s *scenario)
	pods    func(s *scenario) []*corev1.Pod
	// want is the condition every pod must come to.
	want func(s *scenario) wantCondition
	// after, when set, checks more once every pod has its condition, and says
	// what it found, for the report.
	after func(tb testing.TB, s *scenario, p *ctrlProcess) string
}

// wantCondition is the controller's condition a case expects: False, its reason,
// and parts of its message.
type wantCondition struct {
	reason   string
	contains []string
}

func (w wantCondition) String() string {
	return fmt.Sprintf("%s=False reason %s with %q", api.ConditionType, w.reason, w.contains)
}

func (w wantCondition) matches(p *corev1.Pod) bool {
	c := conditionOf(p)
	if c == nil || c.Status != corev1.ConditionFalse || c.Reason != w.reason {
		return false
	}
	for _, s := range w.contains {
		if !strings.Contains(c.Message, s) {
			return false
		}
	}
	return true
}

func conditionOf(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == api.ConditionType {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func gated(p *corev1.Pod) bool {
	for _, g := range p.Spec.SchedulingGates {
		if g.Name == inject.SchedulingGate {
			return true
		}
	}
	return false
}

func createConfigMap(tb testing.TB, s *scenario, ns, name string, data map[string]string) {
	tb.Helper()
	_, err := s.r.client.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("creating ConfigMap %s/%s: %v", ns, name, err)
	}
}

// hostileMatches is a pattern the controller must refuse before compiling it:
// compiled, it is tens of thousands of instructions, built again at every
// compilation of every expression that calls it.
const hostileMatches = `object.data.x.matches("(?:abcdefghijklmnopqrstuvwxyz0123456789){1000}")`

// regexCase: pods, each with items CEL items on ConfigMaps that exist (so the
// expressions would be evaluated), each expression calling the hostile pattern
// calls times.
func regexCase(pods, items, calls int) ctrlCase {
	expression := strings.Repeat(hostileMatches+" || ", calls-1) + hostileMatches
	return ctrlCase{
		name: fmt.Sprintf("%d forged pods, %d CEL items x %d hostile matches", pods, items, calls),
		prepare: func(tb testing.TB, s *scenario) {
			for i := range items {
				createConfigMap(tb, s, s.ns, fmt.Sprintf("c%d", i), map[string]string{"x": "abc"})
			}
		},
		pods: func(s *scenario) []*corev1.Pod {
			cel := "[" + list(items, func(i int) string {
				return fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","name":"c%d","expression":%q}`, i, expression)
			}) + "]"
			out := make([]*corev1.Pod, pods)
			for i := range out {
				out[i] = testpods.Forged(s.ns, fmt.Sprintf("regex-%d", i), map[string]string{spec.EnvCEL: cel})
			}
			return out
		},
		want: func(*scenario) wantCondition {
			return wantCondition{reason: api.ReasonWaiting, contains: []string{
				"has a regular expression of over", "instructions, more than " + thousands(1000)}}
		},
	}
}

// tooManyCase: pods, each naming services Services (the webhook denies past
// spec.MaxItems).
func tooManyCase(pods, services int) ctrlCase {
	return ctrlCase{
		name: fmt.Sprintf("%d forged pods naming %s services each", pods, thousands(services)),
		pods: func(s *scenario) []*corev1.Pod {
			names := list(services, func(i int) string { return "svc-" + strconv.Itoa(i) })
			out := make([]*corev1.Pod, pods)
			for i := range out {
				out[i] = testpods.Forged(s.ns, fmt.Sprintf("many-%d", i), map[string]string{spec.EnvServices: names})
			}
			return out
		},
		want: func(*scenario) wantCondition {
			return wantCondition{reason: api.ReasonTooManyDependencies, contains: []string{
				fmt.Sprintf("%d dependency items, more than %d", services, spec.MaxItems)}}
		},
	}
}

// bigConfigMapsCase: n ConfigMaps of size bytes each in another namespace, and
// one gated pod naming a key of a ConfigMap that does not exist: the pod starts
// the controller's ConfigMap informer, which lists them all.
func bigConfigMapsCase(n, size int) ctrlCase {
	return ctrlCase{
		name: fmt.Sprintf("%d ConfigMaps of %s, a pod naming a missing key", n, bytesShown(size)),
		prepare: func(tb testing.TB, s *scenario) {
			value := strings.Repeat("v", size-len("blob"))
			for i := range n {
				createConfigMap(tb, s, s.other, fmt.Sprintf("big-%d", i), map[string]string{"blob": value})
			}
		},
		pods: func(s *scenario) []*corev1.Pod {
			return []*corev1.Pod{testpods.Forged(s.ns, "app", map[string]string{spec.EnvConfigMaps: "missing/key"})}
		},
		want: func(s *scenario) wantCondition {
			return wantCondition{reason: api.ReasonWaiting, contains: []string{"configmap " + s.ns + "/missing"}}
		},
	}
}

// bytesShown is size in MiB when it is whole MiB, else in KiB.
func bytesShown(size int) string {
	if size%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", size>>20)
	}
	return fmt.Sprintf("%d KiB", size>>10)
}

// secretValue is the value of the victim's ConfigMap that the tenant guesses.
const secretValue = "s3cret-value-of-the-victim"

// gatedFor is how long the tenant's pod is watched to stay gated.
const gatedFor = 3 * time.Second

// crossNamespaceCase: a tenant's pod, whose ServiceAccount may read nothing,
// names another namespace's ConfigMap by a custom-resource field with the
// right value. It must stay gated, its condition must name the missing RBAC,
// and the value may appear in no condition, Event or log line.
func crossNamespaceCase() ctrlCase {
	return ctrlCase{
		name: "tenant guesses another namespace's ConfigMap value",
		prepare: func(tb testing.TB, s *scenario) {
			createConfigMap(tb, s, s.other, "creds", map[string]string{"password": secretValue})
		},
		pods: func(s *scenario) []*corev1.Pod {
			p := testpods.Forged(s.ns, "app", map[string]string{spec.EnvCustomResources: fmt.Sprintf(
				`[{"apiVersion":"v1","kind":"ConfigMap","namespace":%q,"name":"creds","fields":[{"key":"data.password","value":%q}]}]`,
				s.other, secretValue)})
			p.Spec.ServiceAccountName = "app"
			return []*corev1.Pod{p}
		},
		want: func(s *scenario) wantCondition {
			return wantCondition{reason: api.ReasonWaiting, contains: []string{
				fmt.Sprintf(`serviceaccount %s/app may not get configmaps "creds" in %s`, s.ns, s.other)}}
		},
		after: func(tb testing.TB, s *scenario, p *ctrlProcess) string {
			tb.Helper()
			ctx := context.Background()
			pods := s.r.client.CoreV1().Pods(s.ns)
			for end := time.Now().Add(gatedFor); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				pod, err := pods.Get(ctx, "app", metav1.GetOptions{})
				if err != nil {
					tb.Fatal(err)
				}
				if !gated(pod) {
					tb.Errorf("released on a right guess without the right to read: %s", describePod(pod))
					break
				}
			}
			pod, err := pods.Get(ctx, "app", metav1.GetOptions{})
			if err != nil {
				tb.Fatal(err)
			}
			raw, _ := json.Marshal(pod.Status.Conditions)
			if strings.Contains(string(raw), secretValue) {
				tb.Errorf("the pod's conditions hold the value: %s", raw)
			}
			// The Event of the condition is recorded asynchronously.
			var notes []string
			for end := time.Now().Add(10 * time.Second); len(notes) == 0 && time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				events, err := s.r.client.EventsV1().Events(s.ns).List(ctx, metav1.ListOptions{FieldSelector: "regarding.name=app"})
				if err != nil {
					tb.Fatal(err)
				}
				for _, e := range events.Items {
					notes = append(notes, e.Reason+": "+e.Note)
				}
			}
			if len(notes) == 0 {
				tb.Errorf("no Event about the pod within 10s: nothing to look for the value in")
			}
			for _, n := range notes {
				if strings.Contains(n, secretValue) {
					tb.Errorf("an Event holds the value: %s", n)
				}
			}
			if strings.Contains(p.Output(), secretValue) {
				tb.Errorf("the controller's log holds the value")
			}
			return fmt.Sprintf("still gated after %s; the value in no condition, none of %d Events, not the log", gatedFor, len(notes))
		},
	}
}

// describePod is what a diagnosis says of a pod: its gate and condition.
func describePod(p *corev1.Pod) string {
	out := "gated"
	if !gated(p) {
		out = "not gated"
	}
	c := conditionOf(p)
	if c == nil {
		return out + ", no " + string(api.ConditionType) + " condition"
	}
	msg := c.Message
	if len(msg) > 400 {
		msg = msg[:400] + "..."
	}
	return fmt.Sprintf("%s, %s reason %s: %q", out, c.Status, c.Reason, msg)
}

// podWatch follows the managed pods of one namespace for the harness.
type podWatch struct {
	lister corelisters.PodNamespaceLister
	stop   chan struct{}
}

func watchPods(tb testing.TB, client kubernetes.Interface, ns string) *podWatch {
	tb.Helper()
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = controller.ManagedPods().String() }))
	w := &podWatch{lister: f.Core().V1().Pods().Lister().Pods(ns), stop: make(chan struct{})}
	f.Start(w.stop)
	tb.Cleanup(func() { close(w.stop); f.Shutdown() })
	for typ, ok := range f.WaitForCacheSync(w.stop) {
		if !ok {
			tb.Fatalf("the harness's watch of %v in %s did not sync", typ, ns)
		}
	}
	return w
}

// waitConditions waits until every pod named has the condition wanted, or fails
// after timeout with the pods' conditions and the controller's log.
func (w *podWatch) waitConditions(tb testing.TB, names []string, want wantCondition, timeout time.Duration, p *ctrlProcess) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done := 0
		for _, n := range names {
			if pod, err := w.lister.Get(n); err == nil && want.matches(pod) {
				done++
			}
		}
		if done == len(names) {
			return
		}
		if p.Exited() || time.Now().After(deadline) {
			tb.Fatalf("%d of %d pods came to %s within %s\nthe pods: %s\n%s",
				done, len(names), want, timeout, w.summary(names), p.Diagnosis())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// summary counts the pods by what describePod says of them.
func (w *podWatch) summary(names []string) string {
	counts := map[string]int{}
	for _, n := range names {
		pod, err := w.lister.Get(n)
		if err != nil {
			counts["not seen by the harness"]++
			continue
		}
		counts[describePod(pod)]++
	}
	var out []string
	for d, n := range counts {
		out = append(out, fmt.Sprintf("%d pods: %s", n, d))
	}
	sort.Strings(out)
	return strings.Join(out, "\n  ")
}

// ctrlResult is what one case measured.
type ctrlResult struct {
	pods             int
	idleKiB, peakKiB int64
	// created is how long creating the pods took; conditions, how long from the
	// first create until every pod had its condition.
	created, conditions time.Duration
	condition           string // the first pod's condition message
	note                string // what the case's after found
}

// ctrlTiming are a run's waits: idle before measuring the idle peak, settle after
// the conditions before measuring the case's, timeout for the conditions.
type ctrlTiming struct {
	idle, settle, timeout time.Duration
}

// runCtrlCase runs c in fresh namespaces with a fresh controller process. What
// it created is deleted when tb ends, before the next case's process follows
// the cluster's managed pods.
func runCtrlCase(tb testing.TB, r *ctrlRig, c ctrlCase, t ctrlTiming) ctrlResult {
	tb.Helper()
	ctx := context.Background()
	s := &scenario{r: r, ns: r.env.Namespace(tb), other: r.env.Namespace(tb)}
	// envtest runs no namespace controller: a deleted namespace keeps its
	// objects, and the next process would follow these pods.
	tb.Cleanup(func() { cleanUp(tb, s) })
	if c.prepare != nil {
		c.prepare(tb, s)
	}
	w := watchPods(tb, r.client, s.ns)
	p := startCtrlProcess(tb, r)
	time.Sleep(t.idle)
	idle, err := p.peakKiB()
	if err != nil {
		tb.Fatal(err)
	}

	pods := c.pods(s)
	names := make([]string, len(pods))
	start := time.Now()
	for i, pod := range pods {
		if _, err := r.client.CoreV1().Pods(s.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			tb.Fatalf("creating pod %s: %v", pod.Name, err)
		}
		names[i] = pod.Name
	}
	created := time.Since(start)
	want := c.want(s)
	w.waitConditions(tb, names, want, t.timeout, p)
	res := ctrlResult{pods: len(pods), idleKiB: idle, created: created, conditions: time.Since(start)}
	if first, err := w.lister.Get(names[0]); err == nil {
		res.condition = conditionOf(first).Message
	}
	if c.after != nil {
		res.note = c.after(tb, s, p)
	}
	time.Sleep(t.settle)
	if res.peakKiB, err = p.peakKiB(); err != nil {
		tb.Fatal(err)
	}
	return res
}

// cleanUp deletes the case's pods and ConfigMaps and waits until its pods are
// gone (pods on no node go at once).
func cleanUp(tb testing.TB, s *scenario) {
	ctx := context.Background()
	for _, ns := range []string{s.ns, s.other} {
		if err := s.r.client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, metav1.ListOptions{}); err != nil {
			tb.Errorf("deleting the pods of %s: %v", ns, err)
		}
		if err := s.r.client.CoreV1().ConfigMaps(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			tb.Errorf("deleting the ConfigMaps of %s: %v", ns, err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		left, err := s.r.client.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{})
		if err == nil && len(left.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Errorf("the pods of %s are still there after a minute (%v)", s.ns, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ctrlTestTiming: no idle wait or settling (nothing is measured), and a bound
// on the conditions well above what they take.
var ctrlTestTiming = ctrlTiming{timeout: 30 * time.Second}

// A fresh controller process, as entrypoint-webhook runs it, refuses forged
// pods with hostile regular expressions before compiling them, and judges
// nothing of forged pods past the cap on dependency items. Smaller than the
// benchmark; the conditions are asserted, never time or memory.
func TestHostileController(t *testing.T) {
	env := testenv.StartT(t, envtest.Environment{})
	r := newCtrlRig(t, env)
	for _, c := range []ctrlCase{regexCase(2, 4, 6), tooManyCase(10, 200)} {
		t.Run(c.name, func(t *testing.T) {
			res := runCtrlCase(t, r, c, ctrlTestTiming)
			t.Logf("%d pods came to their condition in %s: %.200s", res.pods, res.conditions.Round(time.Millisecond), res.condition)
		})
	}
}
