package bench

import (
	"debug/elf"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchstat"
)

type binaryResult struct {
	bytes            int64
	static, stripped bool
}

var binarySize measured[binaryResult]

// BenchmarkBinarySize reports the size of the resolver binary and whether it is
// static (no PT_INTERP program header, i.e. no dynamic loader) and stripped.
func BenchmarkBinarySize(b *testing.B) {
	r := binarySize.get(b, measureBinary)
	noTime(b)
	b.ReportMetric(float64(r.bytes)/1e6, "MB")
	b.ReportMetric(boolMetric(r.static), "static")
	b.ReportMetric(boolMetric(r.stripped), "stripped")
}

func measureBinary(b *testing.B) binaryResult {
	fi, err := os.Stat(binary)
	if err != nil {
		b.Fatal(err)
	}
	f, err := elf.Open(binary)
	if err != nil {
		b.Fatalf("reading the resolver as ELF: %v", err)
	}
	defer f.Close()
	r := binaryResult{bytes: fi.Size(), static: true, stripped: f.Section(".symtab") == nil}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			r.static = false
		}
	}
	b.Logf("binary %s: %d bytes = %.2f MB (%.2f MiB), static=%v (PT_INTERP absent), stripped=%v (.symtab absent)",
		binary, r.bytes, float64(r.bytes)/1e6, float64(r.bytes)/(1<<20), r.static, r.stripped)
	return r
}

func boolMetric(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

const overheadRuns = 200

type overheadResult struct {
	resolver, direct benchstat.Durations
}

var noDependencyOverhead measured[overheadResult]

// BenchmarkNoDependencyOverhead compares `kubernetes-entrypoint -- /bin/true`
// with `/bin/true`, run alternately so that both see the same noise.
func BenchmarkNoDependencyOverhead(b *testing.B) {
	r := noDependencyOverhead.get(b, measureOverhead)
	noTime(b)
	b.ReportMetric(benchstat.MS(r.resolver.Mean()-r.direct.Mean()), "mean-overhead-ms")
	b.ReportMetric(benchstat.MS(r.resolver.Percentile(50)-r.direct.Percentile(50)), "p50-overhead-ms")
}

func measureOverhead(b *testing.B) overheadResult {
	run := func(name string, args ...string) time.Duration {
		cmd := exec.Command(name, args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return d
	}
	var r overheadResult
	for i := range overheadRuns {
		// Alternate which goes first, so neither always runs on a warmer cache.
		if i%2 == 0 {
			r.resolver = append(r.resolver, run(binary, "--", "/bin/true"))
			r.direct = append(r.direct, run("/bin/true"))
		} else {
			r.direct = append(r.direct, run("/bin/true"))
			r.resolver = append(r.resolver, run(binary, "--", "/bin/true"))
		}
	}
	b.Logf("no-dependency overhead over %d runs: kubernetes-entrypoint -- /bin/true mean %.2f ms p50 %.2f ms p99 %.2f ms; /bin/true mean %.2f ms p50 %.2f ms p99 %.2f ms; overhead mean %.2f ms, p50 %.2f ms",
		overheadRuns, benchstat.MS(r.resolver.Mean()), benchstat.MS(r.resolver.Percentile(50)), benchstat.MS(r.resolver.Percentile(99)),
		benchstat.MS(r.direct.Mean()), benchstat.MS(r.direct.Percentile(50)), benchstat.MS(r.direct.Percentile(99)),
		benchstat.MS(r.resolver.Mean()-r.direct.Mean()), benchstat.MS(r.resolver.Percentile(50)-r.direct.Percentile(50)))
	return r
}

const rssWait = 3 * time.Second

type rssResult struct {
	rss, hwm map[mode]float64 // MB
}

var rssWhileWaiting measured[rssResult]

// BenchmarkRSSWhileWaiting reads the resident memory of a resolver waiting on
// three services that never become ready, in watch mode and in poll mode.
func BenchmarkRSSWhileWaiting(b *testing.B) {
	needCluster(b)
	r := rssWhileWaiting.get(b, measureRSS)
	noTime(b)
	for _, m := range []mode{watchMode, pollMode} {
		b.ReportMetric(r.rss[m], string(m)+"-RSS-MB")
		b.ReportMetric(r.hwm[m], string(m)+"-HWM-MB")
	}
}

func measureRSS(b *testing.B) rssResult {
	res := rssResult{rss: map[mode]float64{}, hwm: map[mode]float64{}}
	procs := map[mode]*resolver{}
	start := time.Now()
	for _, m := range []mode{watchMode, pollMode} {
		s := newSetup(b, m)
		base := openSliceWatches(b)
		r := startResolver(b, s.waitingOn(createServices(b, s.ns, "never", 3)...), "--", "/bin/true")
		waitSettled(b, s, []*resolver{r}, 3, base)
		procs[m] = r
	}
	time.Sleep(time.Until(start.Add(rssWait)))
	for _, m := range []mode{watchMode, pollMode} {
		r := procs[m]
		if r.exited() {
			b.Fatalf("the %s-mode resolver exited while waiting (%v); stderr:\n%s", m, r.err, r.stderr.String())
		}
		var err error
		if res.rss[m], err = procStatusMB(r.cmd.Process.Pid, "VmRSS"); err != nil {
			b.Fatal(err)
		}
		if res.hwm[m], err = procStatusMB(r.cmd.Process.Pid, "VmHWM"); err != nil {
			b.Fatal(err)
		}
		b.Logf("RSS while waiting on 3 services, %-5s mode, %.1fs after start: VmRSS %.1f MB, VmHWM %.1f MB",
			m, time.Since(start).Seconds(), res.rss[m], res.hwm[m])
	}
	return res
}
