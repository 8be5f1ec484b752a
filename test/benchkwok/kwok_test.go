package benchkwok

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchproc"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchstat"
)

// services is how many Services the gated scenario's pods wait on, in equal shares.
const services = 100

// stepTimeout bounds each wait of a scenario (all pods released, all bound...):
// far beyond any figure measured, so that only a broken piece reaches it.
const stepTimeout = 15 * time.Minute

// result is what one scenario saw.
type result struct {
	pods       int
	toReleased benchstat.Durations // per pod: its dependency ready → seen without the gate
	toBound    benchstat.Durations // per pod: its dependency ready → seen bound
	created    time.Duration       // creating the pods
	evaluated  time.Duration       // first create → every pod carries the controller's condition; 0: not waited for
	// allBound is the first dependency ready → the last pod bound; for the
	// scheduler alone, the scheduler's first bind → its last.
	allBound time.Duration
	started  time.Duration // scheduler alone: the scheduler's start → its last bind
	allReady time.Duration // the first dependency ready (scheduler alone: start) → every pod Ready (kwok)
	// The API server with one pod (the canary; the scheduler alone: before its
	// start), with every pod waiting, and at the end.
	few, waiting, after moment
	apiServerCPU        time.Duration // from before the pods' creation to the end
	controller          benchproc.Usage
	note                string // what was not waited for, and why
}

// scenario is one measurement under way.
type scenario struct {
	r         *rig
	ns        string
	w         *podWatch
	procs     diagnoser // kwok, the scheduler, the controller: what a wait depends on
	scheduler *benchproc.Process
	ctrl      *benchproc.Process
	res       result
	start     moment // before the pods
}

// open starts a scenario in a fresh namespace: the pod watch and, with
// controller set, a scheduler and the controller, proven working by a canary.
func (r *rig) open(ctx context.Context, prefix string, controller bool) (*scenario, error) {
	s := &scenario{r: r, procs: diagnoser{r.kwok}, res: result{pods: r.pods}}
	var err error
	if s.ns, err = newNamespace(ctx, r.client, prefix); err != nil {
		return s, err
	}
	if s.w, err = watchPods(ctx, r.client, s.ns); err != nil {
		return s, err
	}
	if !controller {
		return s, nil
	}
	if err := s.startScheduler(); err != nil {
		return s, err
	}
	if s.ctrl, err = benchproc.Start("the controller", processEnv(), r.controller,
		"--webhook=false", "--leader-elect=false",
		"--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--kubeconfig", r.kubeconfig,
		"--kube-api-qps", strconv.Itoa(r.qps), "--kube-api-burst", strconv.Itoa(r.burst)); err != nil {
		return s, err
	}
	s.procs = append(s.procs, s.ctrl)
	return s, s.canary(ctx)
}

func (s *scenario) startScheduler() error {
	p, err := s.r.startScheduler()
	if err != nil {
		return err
	}
	s.scheduler = p
	s.procs = append(s.procs, p)
	return nil
}

// canary proves the chain works before anything is measured: a gated pod whose
// Service is ready is released by the controller, bound by the scheduler and
// made Ready by kwok. It stays: the scenario's "one pod" moment.
func (s *scenario) canary(ctx context.Context) error {
	if err := createServices(ctx, s.r.client, s.ns, []string{"canary"}); err != nil {
		return err
	}
	if _, err := makeReady(ctx, s.r.client, s.ns, []string{"canary"}); err != nil {
		return err
	}
	pod := []string{"canary"}
	if err := createPods(ctx, s.r.client, 1, func(int) (*corev1.Pod, error) {
		return gatedPod(s.ns, "canary", map[string]string{"dependency-service": "canary"}, nil)
	}); err != nil {
		return err
	}
	if err := s.w.waitFor(pod, 3*time.Minute, "released, bound and Ready (the canary)", s.procs, isReady); err != nil {
		return err
	}
	var err error
	s.res.few, err = s.r.observe()
	return err
}

// close stops the scenario's processes and deletes its pods.
func (s *scenario) close() {
	if s.w != nil {
		s.w.close()
	}
	if s.ctrl != nil {
		s.ctrl.Stop()
	}
	if s.scheduler != nil {
		s.scheduler.Stop()
	}
	if s.ns != "" {
		if err := deletePods(context.Background(), s.r.client, s.ns); err != nil {
			fmt.Printf("cleaning up: %v\n", err)
		}
	}
}

// create creates the scenario's pods, timed, and waits until the watch saw each.
func (s *scenario) create(ctx context.Context, pods []string, podOf func(int) (*corev1.Pod, error)) error {
	var err error
	if s.start, err = s.r.observe(); err != nil {
		return err
	}
	t0 := time.Now()
	if err := createPods(ctx, s.r.client, len(pods), podOf); err != nil {
		return err
	}
	s.res.created = time.Since(t0)
	if err := s.w.waitFor(pods, stepTimeout, "seen by the harness's watch", s.procs, seen); err != nil {
		return err
	}
	// The release is timed, not the backlog of a burst of new pods: wait until
	// the controller has evaluated each (set its condition).
	if s.ctrl != nil {
		limit := 30*time.Second + time.Duration(len(pods))*20*time.Millisecond
		if err := s.w.waitFor(pods, limit, "evaluated by the controller", s.procs, evaluated); err != nil {
			s.res.note = "the controller's condition was not waited for: " + firstLine(err)
		} else {
			s.res.evaluated = time.Since(t0)
		}
	}
	if n, early := s.w.count(pods, isReleased); s.ctrl != nil && n > 0 {
		return fmt.Errorf("%d of %d pods were released before their dependency was ready, e.g. %s\n%s", n, len(pods), early, s.procs.diagnosis())
	}
	s.res.waiting, err = s.r.observe()
	return err
}

// finish waits until every pod is bound and Ready and takes the figures;
// readyOf is each pod's dependency's ready moment.
func (s *scenario) finish(pods []string, first time.Time, readyOf func(i int) time.Time) error {
	if s.ctrl != nil {
		if err := s.w.waitFor(pods, stepTimeout, "released", s.procs, isReleased); err != nil {
			return err
		}
	}
	if err := s.w.waitFor(pods, stepTimeout, "bound", s.procs, isBound); err != nil {
		return err
	}
	if err := s.w.waitFor(pods, stepTimeout, "Ready (kwok)", s.procs, isReady); err != nil {
		return err
	}
	released, bound, ready := s.w.times(pods, releasedAt), s.w.times(pods, boundAt), s.w.times(pods, readyAt)
	last, lastReady := first, first
	for i := range pods {
		if s.ctrl != nil {
			s.res.toReleased = append(s.res.toReleased, released[i].Sub(readyOf(i)))
			s.res.toBound = append(s.res.toBound, bound[i].Sub(readyOf(i)))
		}
		last, lastReady = later(last, bound[i]), later(lastReady, ready[i])
	}
	s.res.allBound, s.res.allReady = last.Sub(first), lastReady.Sub(first)
	var err error
	if s.res.after, err = s.r.observe(); err != nil {
		return err
	}
	s.res.apiServerCPU = s.res.after.apiServer.CPU - s.start.apiServer.CPU
	if s.ctrl != nil {
		if s.res.controller, err = benchproc.UsageOf(s.ctrl.Pid()); err != nil {
			return fmt.Errorf("reading the controller's resource use: %w", err)
		}
	}
	return s.procs.running()
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func firstLine(err error) string {
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}

// gated: the pods wait on 100 Services whose EndpointSlices are created at once.
func (r *rig) gated(ctx context.Context) (result, error) {
	s, err := r.open(ctx, "kwok-gated", true)
	defer s.close()
	if err != nil {
		return s.res, err
	}
	svcs := names("svc", services)
	if err := createServices(ctx, r.client, s.ns, svcs); err != nil {
		return s.res, err
	}
	pods := names("pod", r.pods)
	serviceOf := func(i int) string { return svcs[i%services] }
	if err := s.create(ctx, pods, func(i int) (*corev1.Pod, error) {
		return gatedPod(s.ns, pods[i], map[string]string{"dependency-service": serviceOf(i)}, nil)
	}); err != nil {
		return s.res, err
	}
	first := time.Now()
	ready, err := makeReady(ctx, r.client, s.ns, svcs)
	if err != nil {
		return s.res, err
	}
	return s.res, s.finish(pods, first, func(i int) time.Time { return ready[serviceOf(i)] })
}

// schedulerAlone: the same pods without the gate, created before the scheduler
// starts; its binding rate is the limit.
func (r *rig) schedulerAlone(ctx context.Context) (result, error) {
	s, err := r.open(ctx, "kwok-alone", false)
	defer s.close()
	if err != nil {
		return s.res, err
	}
	pods := names("pod", r.pods)
	if err := s.create(ctx, pods, func(i int) (*corev1.Pod, error) {
		pod, err := gatedPod(s.ns, pods[i], map[string]string{"dependency-service": "svc-" + strconv.Itoa(i%services)}, nil)
		if err != nil {
			return nil, err
		}
		return ungated(pod), nil
	}); err != nil {
		return s.res, err
	}
	s.res.few = s.res.waiting // no scheduler, no controller: nothing of this scenario watches yet
	t0 := time.Now()
	if err := s.startScheduler(); err != nil {
		return s.res, err
	}
	if err := s.finish(pods, t0, func(int) time.Time { return t0 }); err != nil {
		return s.res, err
	}
	bound := s.w.times(pods, boundAt)
	firstBind := bound[0]
	for _, at := range bound {
		if at.Before(firstBind) {
			firstBind = at
		}
	}
	s.res.started = s.res.allBound
	s.res.allBound -= firstBind.Sub(t0)
	return s.res, nil
}

// daemonSet: the pods are spread over the nodes, each pinned to its node as a
// DaemonSet's pods are, waiting for the DaemonSet agent's pod on that node.
func (r *rig) daemonSet(ctx context.Context) (result, error) {
	s, err := r.open(ctx, "kwok-daemonset", true)
	defer s.close()
	if err != nil {
		return s.res, err
	}
	ds, err := r.client.AppsV1().DaemonSets(s.ns).Create(ctx, agentDaemonSet(s.ns), metav1.CreateOptions{})
	if err != nil {
		return s.res, fmt.Errorf("creating the DaemonSet agent: %w", err)
	}
	nodes := names("kwok-node", r.nodes)
	pods := names("pod", r.pods)
	nodeOf := func(i int) string { return nodes[i%len(nodes)] }
	if err := s.create(ctx, pods, func(i int) (*corev1.Pod, error) {
		return gatedPod(s.ns, pods[i], map[string]string{"dependency-daemonset": ds.Name}, onNode(nodeOf(i)))
	}); err != nil {
		return s.res, err
	}
	first := time.Now()
	if err := createPods(ctx, r.client, len(nodes), func(i int) (*corev1.Pod, error) { return agentPod(ds, nodes[i]), nil }); err != nil {
		return s.res, err
	}
	agents := make([]string, len(nodes))
	for i, n := range nodes {
		agents[i] = agentPod(ds, n).Name
	}
	if err := s.w.waitFor(agents, stepTimeout, "Ready (the DaemonSet's pods)", s.procs, isReady); err != nil {
		return s.res, err
	}
	agentReady := map[string]time.Time{}
	for i, at := range s.w.times(agents, readyAt) {
		agentReady[nodes[i]] = at
	}
	return s.res, s.finish(pods, first, func(i int) time.Time { return agentReady[nodeOf(i)] })
}

// BenchmarkKwok measures gate mode with the real scheduler on fake nodes: the
// pods for the scheduler alone first, on an API server that has held no pods
// yet (the limit is not flattered), then the same pods gated, then the
// same-node case.
func BenchmarkKwok(b *testing.B) {
	ctx := context.Background()
	var gated, alone *result
	n := 0 // pods per scenario, for the titles
	if the != nil {
		n = the.pods
	}
	for _, sc := range []struct {
		name, title string
		run         func(*rig, context.Context) (result, error)
		keep        **result
	}{
		{"scheduler-alone", fmt.Sprintf("%d pods without the gate, bound by the scheduler alone", n), (*rig).schedulerAlone, &alone},
		{"gated", fmt.Sprintf("the same %d pods gated, on %d Services, made ready at once", n, services), (*rig).gated, &gated},
		{"daemonset", fmt.Sprintf("%d gated pods pinned to their nodes, each waiting for the DaemonSet's pod there", n), (*rig).daemonSet, nil},
	} {
		b.Run(sc.name, func(b *testing.B) {
			r := need(b)
			res, err := sc.run(r, ctx)
			if err != nil {
				b.Fatalf("%s: %v", sc.name, err)
			}
			res.print(fmt.Sprintf("%s (%d nodes)", sc.title, r.nodes), sc.name == "scheduler-alone")
			res.report(b, sc.name == "scheduler-alone")
			if sc.keep != nil {
				*sc.keep = &res
			}
		})
	}
	if gated != nil && alone != nil && alone.allBound > 0 {
		ratio := gated.allBound.Seconds() / alone.allBound.Seconds()
		fmt.Printf("\nbench-kwok: %d pods, %d nodes: gated ready → all bound %.2f s; scheduler alone first → last bind %.2f s (%.0f pods/s); ratio %.2fx (target ≤ 1.2x)\n",
			gated.pods, the.nodes, gated.allBound.Seconds(), alone.allBound.Seconds(), float64(alone.pods)/alone.allBound.Seconds(), ratio)
	}
}

// print writes the scenario's table.
func (res result) print(title string, alone bool) {
	fmt.Printf("\n== kwok: %s ==\n", title)
	row := func(k, format string, args ...any) { fmt.Printf("  %-36s %s\n", k, fmt.Sprintf(format, args...)) }
	pct := func(d benchstat.Durations) string {
		return fmt.Sprintf("p50 %.0f ms  p99 %.0f ms  max %.0f ms", benchstat.MS(d.Percentile(50)), benchstat.MS(d.Percentile(99)), benchstat.MS(d.Max()))
	}
	row("pods created in", "%.1f s (%.0f pods/s)", res.created.Seconds(), float64(res.pods)/res.created.Seconds())
	if alone {
		row("scheduler start → last bind", "%.2f s", res.started.Seconds())
		row("first bind → last bind", "%.2f s: %.0f pods/s", res.allBound.Seconds(), float64(res.pods)/res.allBound.Seconds())
		row("scheduler start → all Ready (kwok)", "%.2f s", res.allReady.Seconds())
	} else {
		if res.evaluated > 0 {
			row("every pod evaluated after", "%.1f s (from the first create; then the dependency was made ready)", res.evaluated.Seconds())
		}
		row("ready → gate removed", "%s", pct(res.toReleased))
		row("ready → bound", "%s", pct(res.toBound))
		row("first ready → last bound", "%.2f s", res.allBound.Seconds())
		row("first ready → all Ready (kwok)", "%.2f s", res.allReady.Seconds())
		row("controller peak RSS, CPU", "%.0f MB, %.1f s", res.controller.HWMMB, res.controller.CPU.Seconds())
	}
	few := "with 1 pod"
	if alone {
		few = "before the scheduler,"
	}
	row("API server open watches (of pods)", "%s %.0f (%.0f); %d pods waiting %.0f (%.0f); at the end %.0f (%.0f)",
		few, res.few.watches, res.few.podWatches, res.pods, res.waiting.watches, res.waiting.podWatches, res.after.watches, res.after.podWatches)
	row("API server CPU", "%.1f s (from before the pods to the end)", res.apiServerCPU.Seconds())
	row("API server VmRSS, VmHWM", "%.0f MB, %.0f MB (peak since it started)", res.after.apiServer.RSSMB, res.after.apiServer.HWMMB)
	row("etcd VmRSS; database", "%.0f MB; %.0f MB", res.after.etcd.RSSMB, res.after.etcdMB)
	if res.note != "" {
		row("note", "%s", res.note)
	}
}

func (res result) report(b *testing.B, alone bool) {
	b.ReportMetric(0, "ns/op") // the time of the whole scenario means nothing
	if alone {
		b.ReportMetric(float64(res.pods)/res.allBound.Seconds(), "binds/s")
	} else {
		for _, m := range []struct {
			unit string
			d    benchstat.Durations
		}{{"release", res.toReleased}, {"bound", res.toBound}} {
			b.ReportMetric(benchstat.MS(m.d.Percentile(50)), m.unit+"-p50-ms")
			b.ReportMetric(benchstat.MS(m.d.Percentile(99)), m.unit+"-p99-ms")
			b.ReportMetric(benchstat.MS(m.d.Max()), m.unit+"-max-ms")
		}
		b.ReportMetric(res.controller.HWMMB, "ctrl-HWM-MB")
	}
	b.ReportMetric(res.allBound.Seconds(), "all-bound-s")
	b.ReportMetric(res.apiServerCPU.Seconds(), "apiserver-CPU-s")
	b.ReportMetric(res.after.apiServer.HWMMB, "apiserver-HWM-MB")
	b.ReportMetric(res.waiting.watches-res.few.watches, "watches-added")
}
