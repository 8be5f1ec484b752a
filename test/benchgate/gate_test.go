package benchgate

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchproc"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchstat"
)

// releaseTimeout is how long after its Service became ready a pod may stay
// gated before the benchmark calls gate mode broken: far beyond any target.
const releaseTimeout = 5 * time.Minute

// gatedScenario is one measurement of gated pods and the controller.
type gatedScenario struct {
	name       string // of the sub-benchmark
	title      string
	rounds     int // one after the other, each with its own Services and pods
	services   int // per round, made ready at once
	perService int // pods waiting for each Service
	target     string
	collect    bool // have the API server collect garbage before each look at its memory
	ceiling    bool // then measure the raw rate of the same releases (ceiling_test.go); one round only
}

func (s gatedScenario) podsPerRound() int { return s.services * s.perService }

// gatedResult is what one scenario saw.
type gatedResult struct {
	pods        int
	latency     benchstat.Durations // per pod: its Service's EndpointSlice create call → seen without the gate
	allReleased time.Duration       // last round: first EndpointSlice create call → last pod seen released
	perSecond   []int               // last round: pods seen released in each second from the first EndpointSlice create call
	created     time.Duration       // last round: creating the pods
	evaluated   time.Duration       // last round: first pod create call → every pod carries the condition
	markedReady time.Duration       // last round: first EndpointSlice create call → every pod's condition is True
	// notEvaluated says why the condition was no longer waited for (the
	// controller did not set it in time); the release is measured all the same.
	notEvaluated string

	controller    benchproc.Usage // at the end: VmHWM is the peak of the whole scenario
	controllerCPU time.Duration   // user+system during the scenario, from after the canary
	// The API server before the pods, while they wait (the first round's,
	// evaluated) and after the last release.
	before, waiting, after moment
	requests               map[string]float64 // before → after, without the harness's own
	harnessEvents          int                // watch events the harness's pod watch received
}

// withoutHarness drops from counts the kinds of request the harness itself makes
// in a scenario's window: its creates of pods and EndpointSlices and its
// scrapes of /metrics. (Its one pod watch is open all along.)
func withoutHarness(counts map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for kind, n := range counts {
		if !strings.HasPrefix(kind, "POST pods (") && !strings.HasPrefix(kind, "POST endpointslices (") &&
			!strings.Contains(kind, "(non-resource)") {
			out[kind] = n
		}
	}
	return out
}

// runGated runs one scenario; an error is a functional failure with a diagnosis.
func (r *rig) runGated(ctx context.Context, sc gatedScenario) (gatedResult, error) {
	g := &gatedRun{rig: r, sc: sc, res: gatedResult{pods: sc.rounds * sc.podsPerRound()}, evaluate: true}
	var err error
	if g.ns, err = newNamespace(ctx, r.client, "gate-"+sc.name); err != nil {
		return g.res, err
	}
	profArgs, profAddr, err := r.profiler.controllerArgs()
	if err != nil {
		return g.res, err
	}
	g.pprof = profAddr
	if g.ctrl, err = r.startController(ctx, profArgs...); err != nil {
		return g.res, err
	}
	defer g.ctrl.Stop()
	if g.w, err = watchPods(ctx, r.client, g.ns); err != nil {
		return g.res, err
	}
	defer g.w.close()
	services := make([][]string, sc.rounds)
	for round := range services {
		services[round] = names(fmt.Sprintf("r%d-svc", round), sc.services)
		if err := createServices(ctx, r.client, g.ns, services[round]); err != nil {
			return g.res, err
		}
	}
	defer func() { _ = deletePods(context.Background(), r.client, g.ns) }()

	start, err := benchproc.UsageOf(g.ctrl.Pid())
	if err != nil {
		return g.res, fmt.Errorf("reading the controller's resource use: %w", err)
	}
	if g.res.before, err = r.observe(sc.collect); err != nil {
		return g.res, err
	}
	for round := range sc.rounds {
		if err := g.round(ctx, round, services[round]); err != nil {
			return g.res, err
		}
	}
	if g.res.after, err = r.observe(sc.collect); err != nil {
		return g.res, err
	}
	g.res.harnessEvents = g.w.received()
	g.res.requests = withoutHarness(requestsBetween(g.res.before.metrics, g.res.after.metrics))
	end, err := benchproc.UsageOf(g.ctrl.Pid())
	if err != nil {
		return g.res, fmt.Errorf("reading the controller's resource use: %w", err)
	}
	g.res.controller, g.res.controllerCPU = end, end.CPU-start.CPU
	return g.res, g.ctrl.Running()
}

// gatedRun is one scenario under way.
type gatedRun struct {
	rig      *rig
	sc       gatedScenario
	ns       string
	ctrl     *benchproc.Process
	w        *podWatch
	res      gatedResult
	evaluate bool   // wait for the condition; false once the controller did not set it in time
	pprof    string // the controller's /debug/pprof address when profiling
}

// round creates the round's pods, waits until the controller has evaluated
// them, makes their Services ready at once and times each pod's release.
func (g *gatedRun) round(ctx context.Context, round int, services []string) error {
	pods := names(fmt.Sprintf("r%d-pod", round), g.sc.podsPerRound())
	serviceOf := func(i int) string { return services[i/g.sc.perService] }
	t0 := time.Now()
	if err := createGatedPods(ctx, g.rig.client, g.ns, pods, serviceOf); err != nil {
		return err
	}
	g.res.created = time.Since(t0)
	if err := g.w.waitFor(pods, 2*time.Minute, "seen gated by the harness's watch", nil, seenGated); err != nil {
		return err
	}
	// The scenario times the release, not the backlog of a burst of new pods:
	// wait until the controller has evaluated each (set its condition).
	if g.evaluate {
		limit := 30*time.Second + time.Duration(len(pods))*20*time.Millisecond
		if err := g.w.waitFor(pods, limit, "evaluated by the controller (carry "+string(conditionType)+")", g.ctrl.Running, evaluated); err != nil {
			g.evaluate, g.res.notEvaluated = false, err.Error()
		} else {
			g.res.evaluated = time.Since(t0)
		}
	}
	if n, early := g.w.count(pods, func(s *podState) bool { return !isReleased(s) }); n < len(pods) {
		return fmt.Errorf("%d of %d pods were released while their Service had no endpoint, e.g. %s; %s", len(pods)-n, len(pods), early, g.ctrl.Diagnosis())
	}
	if round == 0 {
		var err error
		if g.res.waiting, err = g.rig.observe(g.sc.collect); err != nil {
			return err
		}
	}

	profiled := g.rig.profiler.start(ctx, g.rig, fmt.Sprintf("%s-round%d", g.sc.name, round), g.pprof)
	t1 := time.Now()
	ready, err := makeReady(ctx, g.rig.client, g.ns, services)
	if err != nil {
		return err
	}
	if err := g.w.waitFor(pods, releaseTimeout, "released", g.ctrl.Running, isReleased); err != nil {
		_, missing := g.w.count(pods, isReleased)
		s, _ := g.w.state(missing)
		svc := serviceOf(indexOf(pods, missing))
		return fmt.Errorf("gate mode did not release the pods within %s of their Service becoming ready: %w; pod %s: %s; its Service %s has had a ready EndpointSlice since %s; %s",
			releaseTimeout, err, missing, describe(s), svc, ready[svc].Format(time.RFC3339Nano), g.ctrl.Diagnosis())
	}
	last := t1
	released := g.w.released(pods)
	for i, at := range released {
		g.res.latency = append(g.res.latency, at.Sub(ready[serviceOf(i)]))
		last = maxTime(last, at)
	}
	g.res.allReleased = last.Sub(t1)
	g.res.perSecond = perSecond(t1, released)
	// The controller writes the condition after the gate: wait for it too, so
	// that the scenario's requests and CPU hold the whole of a pod's handling.
	if g.evaluate {
		limit := 30*time.Second + time.Duration(len(pods))*20*time.Millisecond
		if err := g.w.waitFor(pods, limit, "marked ready ("+string(conditionType)+"=True)", g.ctrl.Running, markedReady); err != nil {
			g.evaluate, g.res.notEvaluated = false, err.Error()
		} else {
			g.res.markedReady = time.Since(t1)
		}
	}
	return profiled()
}

// perSecond counts the times in each whole second after start.
func perSecond(start time.Time, times []time.Time) []int {
	var out []int
	for _, at := range times {
		i := max(int(at.Sub(start)/time.Second), 0)
		for len(out) <= i {
			out = append(out, 0)
		}
		out[i]++
	}
	return out
}

func formatCounts(counts []int) string {
	parts := make([]string, len(counts))
	for i, n := range counts {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, " ")
}

func indexOf(list []string, v string) int {
	for i, s := range list {
		if s == v {
			return i
		}
	}
	return 0
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// print writes the scenario's table.
func (res gatedResult) print(sc gatedScenario) {
	fmt.Printf("\n== gate: %s ==\n", sc.title)
	row := func(k, format string, args ...any) { fmt.Printf("  %-34s %s\n", k, fmt.Sprintf(format, args...)) }
	row("pods released", "%d", len(res.latency))
	row("EndpointSlice create → released", "p50 %.1f ms  p99 %.1f ms  max %.1f ms  (target: %s)",
		benchstat.MS(res.latency.Percentile(50)), benchstat.MS(res.latency.Percentile(99)), benchstat.MS(res.latency.Max()), sc.target)
	if sc.rounds == 1 {
		row("all released after", "%.2f s (from the first EndpointSlice create call)", res.allReleased.Seconds())
		row("released in each second", "%s", formatCounts(res.perSecond))
		row("pods created in", "%.2f s", res.created.Seconds())
	}
	if res.notEvaluated == "" {
		row("every pod evaluated after", "%.2f s (condition set; from the first create; then the Services were made ready)", res.evaluated.Seconds())
		row("every pod marked ready after", "%.2f s (condition True; from the first EndpointSlice create call)", res.markedReady.Seconds())
	} else {
		row("condition not waited for", "%s", res.notEvaluated)
	}
	row("controller peak RSS (VmHWM)", "%.1f MB", res.controller.HWMMB)
	row("controller CPU (user+system)", "%.2f s, %.2f ms per pod", res.controllerCPU.Seconds(), benchstat.MS(res.controllerCPU)/float64(res.pods))
	row("API server open watches", "before the pods %.0f; pods waiting %.0f; after %.0f", res.before.watches, res.waiting.watches, res.after.watches)
	row("API server VmRSS", "before the pods %.1f MB; pods waiting %.1f MB", res.before.rssMB, res.waiting.rssMB)
	row("API server CPU", "%.2f s, from the pods' creation to the last release", (res.after.cpu - res.before.cpu).Seconds())
	row("watch events sent", "%.0f, from the pods' creation to the last release, to every watcher (%d of them to the harness's); by resource: %s",
		res.after.eventsSent-res.before.eventsSent, res.harnessEvents, largest(between(res.before.eventsSentBy(), res.after.eventsSentBy()), 4))
	row("watch restarts", "%s", watchRestarts(res.before, res.after))
	row("requests while released", "%s (from the moment every pod carried its condition to the end)",
		largest(withoutHarness(requestsBetween(res.waiting.metrics, res.after.metrics)), 4))
	row("API requests per released pod", "%.2f (%.0f: %s)", total(res.requests)/float64(res.pods), total(res.requests), largest(res.requests, 5))
}

// rate is the controller's releases per second in the last round: its pods
// over the time from the first EndpointSlice create call to the last release.
func (res gatedResult) rate(sc gatedScenario) float64 {
	return float64(sc.podsPerRound()) / res.allReleased.Seconds()
}

// printCeiling writes the controller's release rate beside the raw client's,
// measured right before and right after it.
func printCeiling(sc gatedScenario, res gatedResult, before, after ceilingResult, qps, burst int) {
	row := func(k, format string, args ...any) { fmt.Printf("  %-34s %s\n", k, fmt.Sprintf(format, args...)) }
	row("release rate, controller", "%.0f pods/s (%d pods, first EndpointSlice create call → last release)", res.rate(sc), sc.podsPerRound())
	for _, c := range []struct {
		when string
		c    ceilingResult
	}{{"before", before}, {"after", after}} {
		row("raw gate-removal patches, "+c.when, "%.0f patches/s (%d gated pods with the Waiting condition, %d workers, qps %d burst %d; all answered in %.2f s, all seen released in %.2f s; in each second: %s)",
			c.c.rate(), c.c.pods, c.c.workers, qps, burst, c.c.answered.Seconds(), c.c.released.Seconds(), formatCounts(c.c.perSecond))
	}
	row("controller ÷ ceiling", "%.2f (the ceiling: the faster raw run)", res.rate(sc)/max(before.rate(), after.rate()))
}

func (res gatedResult) report(b *testing.B) {
	b.ReportMetric(0, "ns/op") // the time of the whole scenario means nothing
	b.ReportMetric(benchstat.MS(res.latency.Percentile(50)), "p50-ms")
	b.ReportMetric(benchstat.MS(res.latency.Percentile(99)), "p99-ms")
	b.ReportMetric(benchstat.MS(res.latency.Max()), "max-ms")
	b.ReportMetric(res.controller.HWMMB, "ctrl-HWM-MB")
	b.ReportMetric(res.controllerCPU.Seconds(), "ctrl-CPU-s")
	b.ReportMetric(res.waiting.watches-res.before.watches, "watches-added")
	b.ReportMetric(total(res.requests)/float64(res.pods), "req/pod")
}

var gatedScenarios = []gatedScenario{
	{name: "latency", title: "one pod on one Service, 50 times", rounds: 50, services: 1, perService: 1, target: "p99 < 100 ms"},
	{name: "1000-pods", title: "1,000 pods on one Service", rounds: 1, services: 1, perService: 1000, target: "all within 3 s", ceiling: true},
	{name: "10000-pods", title: "10,000 pods on 100 Services (100 each), all made ready at once", rounds: 1, services: 100, perService: 100, target: "all within 15 s", ceiling: true},
}

// The hand-over scenario: as many pods and Services as the largest burst.
const handoverPods, handoverServices = 10000, 100

// BenchmarkGate measures gate mode at scale: the comparison with resolver
// processes first, while the API server's memory is not yet inflated by the
// 10,000 pods of the last scenario, then the latency and the two bursts.
func BenchmarkGate(b *testing.B) {
	ctx := context.Background()
	var summary []string

	n, err := resolverCount()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("vs-resolvers", func(b *testing.B) {
		r := need(b)
		cmp, err := r.compare(ctx, n)
		if err != nil {
			b.Fatal(err)
		}
		cmp.print(n)
		cmp.report(b)
		summary = append(summary, cmp.summary(n))
	})
	for _, sc := range gatedScenarios {
		b.Run(sc.name, func(b *testing.B) {
			r := need(b)
			// The ceiling right before and right after the controller's run on
			// the same API server, whose heap and etcd grow from run to run.
			var before, after ceilingResult
			if sc.ceiling {
				var err error
				if before, err = r.ceiling(ctx, sc, "before"); err != nil {
					b.Fatalf("%s, the raw ceiling before the controller: %v", sc.title, err)
				}
			}
			res, err := r.runGated(ctx, sc)
			if err != nil {
				b.Fatalf("%s: %v", sc.title, err)
			}
			res.print(sc)
			res.report(b)
			s := fmt.Sprintf("%s p99 %.0f ms", sc.name, benchstat.MS(res.latency.Percentile(99)))
			if sc.rounds == 1 {
				s += fmt.Sprintf(", all in %.2f s", res.allReleased.Seconds())
			}
			s += fmt.Sprintf(" (%s)", sc.target)
			if sc.ceiling {
				if after, err = r.ceiling(ctx, sc, "after"); err != nil {
					b.Fatalf("%s, the raw ceiling after the controller: %v", sc.title, err)
				}
				printCeiling(sc, res, before, after, r.qps, r.burst)
				raw := max(before.rate(), after.rate())
				b.ReportMetric(res.rate(sc), "ctrl-pods/s")
				b.ReportMetric(raw, "raw-patches/s")
				b.ReportMetric(res.rate(sc)/raw, "ctrl/raw")
				s += fmt.Sprintf(", %.0f pods/s = %.2f of the raw %.0f patches/s (%.0f before, %.0f after)",
					res.rate(sc), res.rate(sc)/raw, raw, before.rate(), after.rate())
			}
			summary = append(summary, s)
		})
	}
	b.Run("handover", func(b *testing.B) {
		r := need(b)
		res, err := r.handover(ctx, handoverPods, handoverServices)
		if err != nil {
			b.Fatalf("leader hand-over of %d pods: %v", handoverPods, err)
		}
		res.print()
		res.report(b)
		summary = append(summary, res.summary())
	})
	if len(summary) > 0 {
		fmt.Printf("\nbench-gate: %s\n", strings.Join(summary, "; "))
	}
}

// resolverCount is N of the comparison: GATE_RESOLVERS, default 300.
func resolverCount() (int, error) {
	v := os.Getenv("GATE_RESOLVERS")
	if v == "" {
		return 300, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("GATE_RESOLVERS=%q: want a positive number of resolver processes", v)
	}
	return n, nil
}
