package bench

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchstat"
)

const (
	latencySamples = 50 // per mode
	// latencyBatch resolvers wait at the same time; each sample's latency is
	// still its own: from its own service's EndpointSlice to its own exec.
	latencyBatch = 10
	// latencySettle follows "the resolver is watching (or polling)", before the
	// first dependency becomes ready.
	latencySettle = 200 * time.Millisecond
	// watchStagger spaces the EndpointSlice creations in watch mode so that the
	// exec of one sample does not compete for the CPU with the next.
	watchStagger = 50 * time.Millisecond
	// pollRamp is how long after a poll-mode resolver settled its rounds come at
	// their steady interval: a single dependency's at 2, 4.5, 7.5 s ... (3 s apart
	// from the second on), shared ones every 2 s. Samples are taken after it.
	pollRamp = 9 * pollInterval / 4
)

// latencyCase is one measurement of BenchmarkReadyToExec.
type latencyCase struct {
	name     string
	mode     mode
	services int // per resolver, in one namespace, all made ready at once
}

var latencyCases = []latencyCase{
	{"watch", watchMode, 1},
	{"poll", pollMode, 1},
	{"poll-3-services", pollMode, 3},
}

var readyToExec = map[string]*measured[benchstat.Durations]{}

func init() {
	for _, c := range latencyCases {
		readyToExec[c.name] = &measured[benchstat.Durations]{}
	}
}

// BenchmarkReadyToExec measures, per sample, the time from the EndpointSlice
// create call returning (the dependency is ready) to the application's start
// (the resolver's exec). Watch mode uses cluster-admin; poll mode helm-toolkit's
// get/list Role with the original's 2 s interval, in steady state (after the
// polls of a single dependency slowed to 3 s). With three services, the last of
// its three EndpointSlices created is the moment it is ready.
func BenchmarkReadyToExec(b *testing.B) {
	for _, c := range latencyCases {
		b.Run(c.name, func(b *testing.B) {
			needCluster(b)
			lat := readyToExec[c.name].get(b, func(b *testing.B) benchstat.Durations { return measureReadyToExec(b, c) })
			noTime(b)
			b.ReportMetric(benchstat.MS(lat.Percentile(50)), "p50-ms")
			b.ReportMetric(benchstat.MS(lat.Percentile(99)), "p99-ms")
			b.ReportMetric(benchstat.MS(lat.Max()), "max-ms")
			if c.mode == pollMode {
				if w := readyToExec["watch"].v; len(w) > 0 && w.Percentile(50) > 0 {
					b.ReportMetric(float64(lat.Percentile(50))/float64(w.Percentile(50)), "poll/watch-p50")
				}
			}
		})
	}
}

func measureReadyToExec(b *testing.B, c latencyCase) benchstat.Durations {
	m := c.mode
	s := newSetup(b, m)
	base := openSliceWatches(b)
	var lat benchstat.Durations
	for first := 0; first < latencySamples; first += latencyBatch {
		n := min(latencyBatch, latencySamples-first)
		services := createServices(b, s.ns, fmt.Sprintf("batch%d", first/latencyBatch), n*c.services)
		rs := make([]*resolver, n)
		for i := range rs {
			rs[i] = startResolver(b, s.waitingOn(services[i*c.services:(i+1)*c.services]...), "--", stampApp)
		}
		waitSettled(b, s, rs, c.services, base)
		if m == pollMode {
			time.Sleep(pollRamp)
		} else {
			time.Sleep(latencySettle)
		}

		// The steady interval: shared polls keep 2 s, a single dependency's slow to 3 s.
		period := pollInterval
		if c.services == 1 {
			period = pollInterval * 3 / 2
		}
		offsets := creationOffsets(m, n, period)
		ready := make([]time.Time, n)
		start := time.Now()
		for i := range rs {
			time.Sleep(time.Until(start.Add(offsets[i])))
			for _, svc := range services[i*c.services : (i+1)*c.services] {
				env.ReadyEndpointSlice(b, s.ns, svc)
			}
			ready[i] = time.Now()
		}
		limit := 10 * time.Second
		if m == pollMode {
			limit += 3 * pollInterval
		}
		for i, r := range rs {
			r.waitExit(b, max(time.Until(ready[i].Add(limit)), time.Millisecond), fmt.Sprintf("sample %d (%s mode)", first+i, m))
			lat = append(lat, r.stampTime(b).Sub(ready[i]))
		}
		if m == watchMode {
			waitWatchesBelow(b, base)
		}
	}

	line := fmt.Sprintf("ready→exec %-15s n=%d  p50 %.1f ms  p99 %.1f ms  max %.1f ms  min %.1f ms  mean %.1f ms",
		c.name, len(lat), benchstat.MS(lat.Percentile(50)), benchstat.MS(lat.Percentile(99)), benchstat.MS(lat.Max()), benchstat.MS(lat.Min()), benchstat.MS(lat.Mean()))
	if m == pollMode {
		line += fmt.Sprintf("  (interval %s, growing to %s for one dependency)", pollInterval, pollInterval*3/2)
		if w := readyToExec["watch"].v; len(w) > 0 {
			line += fmt.Sprintf("  poll/watch p50 %.0fx", float64(lat.Percentile(50))/float64(w.Percentile(50)))
		}
	} else {
		line += fmt.Sprintf("  (includes the app's own start: stamp spawned directly p50 %.2f ms)", benchstat.MS(stampStart(b, 20).Percentile(50)))
	}
	b.Log(line)
	b.Logf("ready→exec %-15s samples (ms, sorted): %s", c.name, formatMS(lat))
	return lat
}

// creationOffsets spaces the n EndpointSlice creations of a batch: in watch mode
// evenly; in poll mode at random points of one steady poll period, so that the
// samples do not all fall at the same phase of the resolvers' (simultaneously
// started) polls.
func creationOffsets(m mode, n int, period time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		if m == pollMode {
			out[i] = rand.N(period)
		} else {
			out[i] = time.Duration(i) * watchStagger
		}
	}
	slices.Sort(out)
	return out
}

// stampStart is how long the stamp application takes from being spawned to
// taking its time stamp: the part of every latency sample that is not the
// resolver's (an exec costs less than this spawn, which also forks).
func stampStart(b *testing.B, n int) benchstat.Durations {
	b.Helper()
	var d benchstat.Durations
	for range n {
		before := time.Now()
		out, err := exec.Command(stampApp).Output()
		if err != nil {
			b.Fatalf("running the stamp application: %v", err)
		}
		v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "stamp ")
		ns, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			b.Fatalf("bad stamp %q", out)
		}
		d = append(d, time.Unix(0, ns).Sub(before))
	}
	return d
}

func formatMS(d benchstat.Durations) string {
	s := slices.Clone(d)
	slices.Sort(s)
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = strconv.FormatFloat(benchstat.MS(v), 'f', 1, 64)
	}
	return strings.Join(parts, " ")
}
