package benchgate

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchproc"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchstat"
)

// comparison is the same N pods waiting on one Service two ways: gated, with
// the controller, and as N resolver processes.
type comparison struct {
	gated     gatedResult
	resolvers resolverResult
}

// resolverResult is what N waiting resolver processes cost the API server.
type resolverResult struct {
	before, waiting, after moment              // the API server: before the start, all waiting, all exited
	rssMB                  float64             // the resolvers' VmRSS, summed, while waiting
	latency                benchstat.Durations // EndpointSlice create call → process exited
}

func (r *rig) compare(ctx context.Context, n int) (comparison, error) {
	var c comparison
	var err error
	sc := gatedScenario{name: "vs-resolvers", rounds: 1, services: 1, perService: n, collect: true}
	// Gated first: the resolvers' watches would leave the API server's heap grown.
	if c.gated, err = r.runGated(ctx, sc); err != nil {
		return c, fmt.Errorf("%d gated pods: %w", n, err)
	}
	if c.resolvers, err = r.runResolvers(ctx, n); err != nil {
		return c, fmt.Errorf("%d resolvers: %w", n, err)
	}
	return c, nil
}

// runResolvers starts n resolvers (init-container mode, cluster-admin, watch
// mode) waiting on one Service, measures while all wait, then makes the Service
// ready and waits for every one to exit 0.
func (r *rig) runResolvers(ctx context.Context, n int) (resolverResult, error) {
	var res resolverResult
	ns, err := newNamespace(ctx, r.client, "resolvers")
	if err != nil {
		return res, err
	}
	if err := createServices(ctx, r.client, ns, []string{"db"}); err != nil {
		return res, err
	}
	if res.before, err = r.observe(true); err != nil {
		return res, err
	}
	// The resolvers would run in these pods: stored in the API server just as
	// the gated ones, so that its memory compares like with like.
	if err := createPlainPods(ctx, r.client, ns, names("pod", n)); err != nil {
		return res, err
	}
	defer func() { _ = deletePods(context.Background(), r.client, ns) }()

	env := []string{"PATH=/usr/bin:/bin", "NAMESPACE=" + ns, "KUBECONFIG=" + r.kubeconfig, "DEPENDENCY_SERVICE=" + ns + ":db"}
	procs := make([]*benchproc.Process, 0, n)
	stopAll := func() {
		for _, p := range procs {
			p.Stop()
		}
	}
	defer stopAll()
	for i := range n {
		p, err := benchproc.Start(fmt.Sprintf("resolver %d", i), env, r.resolver)
		if err != nil {
			return res, err
		}
		procs = append(procs, p)
	}
	if err := waitProcs(procs, 2*time.Minute, "logged that it waits", func(p *benchproc.Process) bool {
		return strings.Contains(p.Output(), "waiting for dependencies")
	}); err != nil {
		return res, err
	}
	// Each watches the Service's EndpointSlices; wait until the API server serves them all.
	deadline := time.Now().Add(time.Minute)
	for {
		if res.waiting, err = r.observe(true); err != nil {
			return res, err
		}
		if res.waiting.watches >= res.before.watches+float64(n) {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("%d resolvers wait, but the API server serves %.0f watches a minute later, %.0f before they started",
				n, res.waiting.watches, res.before.watches)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range procs {
		u, err := benchproc.UsageOf(p.Pid())
		if err != nil {
			return res, fmt.Errorf("reading a waiting resolver's memory: %w; %s", err, p.Diagnosis())
		}
		res.rssMB += u.RSSMB
	}

	ready, err := makeReady(ctx, r.client, ns, []string{"db"})
	if err != nil {
		return res, err
	}
	if err := waitProcs(procs, releaseTimeout, "exited", (*benchproc.Process).Exited); err != nil {
		return res, fmt.Errorf("the Service is ready but: %w", err)
	}
	for _, p := range procs {
		if p.Err() != nil {
			return res, fmt.Errorf("a resolver failed once its Service was ready: %s", p.Diagnosis())
		}
		res.latency = append(res.latency, p.Ended().Sub(ready["db"]))
	}
	if res.after, err = r.observe(true); err != nil {
		return res, err
	}
	return res, nil
}

// waitProcs polls until ok holds for every process; the error names one for
// which it does not.
func waitProcs(procs []*benchproc.Process, timeout time.Duration, what string, ok func(*benchproc.Process) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		var missing *benchproc.Process
		n := 0
		for _, p := range procs {
			if ok(p) {
				n++
			} else if missing == nil {
				missing = p
			}
		}
		if missing == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s, %d of %d resolvers %s; %s", timeout, n, len(procs), what, missing.Diagnosis())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c comparison) print(n int) {
	g, rs := c.gated, c.resolvers
	fmt.Printf("\n== gate vs resolvers: %d pods waiting on one Service ==\n", n)
	row := func(k, a, b string) { fmt.Printf("  %-32s %-36s %s\n", k, a, b) }
	row("", "gated pods + the controller", fmt.Sprintf("%d plain pods + %d resolver processes", n, n))
	row("API server open watches", fmt.Sprintf("%.0f → %.0f waiting → %.0f", g.before.watches, g.waiting.watches, g.after.watches),
		fmt.Sprintf("%.0f → %.0f waiting → %.0f", rs.before.watches, rs.waiting.watches, rs.after.watches))
	row("API server VmRSS", fmt.Sprintf("%.1f → %.1f MB waiting (%+.1f)", g.before.rssMB, g.waiting.rssMB, g.waiting.rssMB-g.before.rssMB),
		fmt.Sprintf("%.1f → %.1f MB waiting (%+.1f)", rs.before.rssMB, rs.waiting.rssMB, rs.waiting.rssMB-rs.before.rssMB))
	row("API server live heap", fmt.Sprintf("%.1f → %.1f MB waiting (%+.1f)", g.before.heapMB, g.waiting.heapMB, g.waiting.heapMB-g.before.heapMB),
		fmt.Sprintf("%.1f → %.1f MB waiting (%+.1f)", rs.before.heapMB, rs.waiting.heapMB, rs.waiting.heapMB-rs.before.heapMB))
	row("API server goroutines", fmt.Sprintf("%.0f → %.0f waiting", g.before.goroutines, g.waiting.goroutines),
		fmt.Sprintf("%.0f → %.0f waiting", rs.before.goroutines, rs.waiting.goroutines))
	row("waiting side's memory", fmt.Sprintf("controller VmHWM %.1f MB", g.controller.HWMMB), fmt.Sprintf("resolvers' VmRSS summed %.1f MB", rs.rssMB))
	row("API requests per pod", fmt.Sprintf("%.2f, creation to release", total(g.requests)/float64(g.pods)),
		fmt.Sprintf("%.2f, start to exit", started(rs.before, rs.after)/float64(n)))
	row("API server CPU", fmt.Sprintf("%.2f s, creation to release", (g.after.cpu-g.before.cpu).Seconds()),
		fmt.Sprintf("%.2f s, start to exit", (rs.after.cpu-rs.before.cpu).Seconds()))
	row("watch events sent", fmt.Sprintf("%.0f (%d to the harness), creation to release", g.after.eventsSent-g.before.eventsSent, g.harnessEvents),
		fmt.Sprintf("%.0f, start to exit", rs.after.eventsSent-rs.before.eventsSent))
	fmt.Printf("  %-32s gated: %s\n  %-32s resolvers: %s\n", "watch restarts", watchRestarts(g.before, g.after), "", watchRestarts(rs.before, rs.after))
	row("ready → released p50/p99/max", fmt.Sprintf("%.0f / %.0f / %.0f ms", benchstat.MS(g.latency.Percentile(50)), benchstat.MS(g.latency.Percentile(99)), benchstat.MS(g.latency.Max())),
		fmt.Sprintf("%.0f / %.0f / %.0f ms (exit)", benchstat.MS(rs.latency.Percentile(50)), benchstat.MS(rs.latency.Percentile(99)), benchstat.MS(rs.latency.Max())))
}

// started is the number of requests, but the harness's, the API server began
// between two moments: the ones completed in between plus the change in those
// still open.
func started(from, to moment) float64 {
	return total(withoutHarness(requestsBetween(from.metrics, to.metrics))) + to.sum(longRunning, nil) - from.sum(longRunning, nil)
}

func (c comparison) report(b *testing.B) {
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(c.gated.waiting.watches-c.gated.before.watches, "gated-watches-added")
	b.ReportMetric(c.resolvers.waiting.watches-c.resolvers.before.watches, "resolver-watches-added")
	b.ReportMetric(c.gated.waiting.rssMB-c.gated.before.rssMB, "gated-apiserver-MB-added")
	b.ReportMetric(c.resolvers.waiting.rssMB-c.resolvers.before.rssMB, "resolver-apiserver-MB-added")
	b.ReportMetric(c.gated.waiting.goroutines-c.gated.before.goroutines, "gated-apiserver-goroutines-added")
	b.ReportMetric(c.resolvers.waiting.goroutines-c.resolvers.before.goroutines, "resolver-apiserver-goroutines-added")
}

func (c comparison) summary(n int) string {
	g, rs := c.gated, c.resolvers
	return fmt.Sprintf("%d waiting pods, gated vs as resolvers: API server watches %+.0f vs %+.0f, its goroutines %+.0f vs %+.0f, its RSS %+.0f MB vs %+.0f MB",
		n, g.waiting.watches-g.before.watches, rs.waiting.watches-rs.before.watches,
		g.waiting.goroutines-g.before.goroutines, rs.waiting.goroutines-rs.before.goroutines,
		g.waiting.rssMB-g.before.rssMB, rs.waiting.rssMB-rs.before.rssMB)
}
