package hostile

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
)

// ctrlBenchTiming: the idle process is measured after a few seconds at rest,
// the case's peak a little after the last condition, and a case that brings no
// condition within minutes fails.
var ctrlBenchTiming = ctrlTiming{idle: 3 * time.Second, settle: 2 * time.Second, timeout: 3 * time.Minute}

// ctrlBenchCases are the controller's hostile cases at the sizes of the issue.
func ctrlBenchCases() []ctrlCase {
	return []ctrlCase{
		regexCase(4, 16, 6),
		tooManyCase(100, 5000),
		bigConfigMapsCase(40, 1<<20),
		crossNamespaceCase(),
	}
}

// BenchmarkHostileController runs each of the dependency controller's hostile
// cases in a fresh entrypoint-webhook process (--webhook=false: the controller
// alone) against envtest, in namespaces of its own: the process's peak RSS
// (VmHWM) at rest before the case's pods exist, its peak once every pod has the
// expected condition, and how long from the first pod's creation until then.
// It needs KUBEBUILDER_ASSETS; ENTRYPOINT_WEBHOOK_BINARY names the binary (make
// bench-hostile builds it), else it is built. Run it with -benchtime 1x.
func BenchmarkHostileController(b *testing.B) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		b.Skip("KUBEBUILDER_ASSETS is not set (make bench-hostile sets it)")
	}
	env, err := testenv.Start(envtest.Environment{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	r := newCtrlRig(b, env)

	var table strings.Builder
	fmt.Fprintf(&table, "the controller alone, a fresh process per case          %5s %9s %9s %14s %8s %12s  %s\n",
		"pods", "idle MiB", "peak MiB", "over idle MiB", "created", "conditions", "condition")
	for _, c := range ctrlBenchCases() {
		b.Run(c.name, func(b *testing.B) {
			var res ctrlResult
			for b.Loop() {
				res = runCtrlCase(b, r, c, ctrlBenchTiming)
			}
			over := float64(res.peakKiB-res.idleKiB) / 1024
			b.ReportMetric(float64(res.idleKiB)/1024, "idle-RSS-MiB")
			b.ReportMetric(float64(res.peakKiB)/1024, "peak-RSS-MiB")
			b.ReportMetric(over, "over-idle-MiB")
			b.ReportMetric(res.conditions.Seconds(), "s-to-conditions")
			shown := res.condition
			if res.note != "" {
				shown = res.note + "; " + shown
			}
			fmt.Fprintf(&table, "%-55s %5d %9.1f %9.1f %14.1f %8s %12s  %.160s\n", c.name, res.pods,
				float64(res.idleKiB)/1024, float64(res.peakKiB)/1024, over,
				res.created.Round(time.Millisecond), res.conditions.Round(time.Millisecond), shown)
		})
	}
	// On stdout: a benchmark's log is not shown once it has sub-benchmarks.
	fmt.Print(table.String())
}
