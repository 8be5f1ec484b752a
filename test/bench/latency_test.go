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
)

var readyToExec = map[mode]*measured[durations]{watchMode: {}, pollMode: {}}

// BenchmarkReadyToExec measures, per sample, the time from the EndpointSlice
// create call returning (the dependency is ready) to the application's start
// (the resolver's exec). Watch mode uses cluster-admin; poll mode helm-toolkit's
// get/list Role with the original's 2 s interval.
func BenchmarkReadyToExec(b *testing.B) {
	for _, m := range []mode{watchMode, pollMode} {
		b.Run(string(m), func(b *testing.B) {
			needCluster(b)
			lat := readyToExec[m].get(b, func(b *testing.B) durations { return measureReadyToExec(b, m) })
			noTime(b)
			b.ReportMetric(ms(lat.percentile(50)), "p50-ms")
			b.ReportMetric(ms(lat.percentile(99)), "p99-ms")
			b.ReportMetric(ms(lat.max()), "max-ms")
			if m == pollMode {
				if w := readyToExec[watchMode].v; len(w) > 0 && w.percentile(50) > 0 {
					b.ReportMetric(float64(lat.percentile(50))/float64(w.percentile(50)), "poll/watch-p50")
				}
			}
		})
	}
}

func measureReadyToExec(b *testing.B, m mode) durations {
	s := newSetup(b, m)
	base := openSliceWatches(b)
	var lat durations
	for first := 0; first < latencySamples; first += latencyBatch {
		n := min(latencyBatch, latencySamples-first)
		services := createServices(b, s.ns, fmt.Sprintf("batch%d", first/latencyBatch), n)
		rs := make([]*resolver, n)
		for i, svc := range services {
			rs[i] = startResolver(b, s.waitingOn(svc), "--", stampApp)
		}
		waitSettled(b, s, rs, 1, base)
		time.Sleep(latencySettle)

		offsets := creationOffsets(m, n)
		ready := make([]time.Time, n)
		start := time.Now()
		for i, svc := range services {
			time.Sleep(time.Until(start.Add(offsets[i])))
			env.ReadyEndpointSlice(b, s.ns, svc)
			ready[i] = time.Now()
		}
		limit := 10 * time.Second
		if m == pollMode {
			limit += 2 * pollInterval
		}
		for i, r := range rs {
			r.waitExit(b, max(time.Until(ready[i].Add(limit)), time.Millisecond), fmt.Sprintf("sample %d (%s mode)", first+i, m))
			lat = append(lat, r.stampTime(b).Sub(ready[i]))
		}
		if m == watchMode {
			waitWatchesBelow(b, base)
		}
	}

	line := fmt.Sprintf("ready→exec %-5s n=%d  p50 %.1f ms  p99 %.1f ms  max %.1f ms  min %.1f ms  mean %.1f ms",
		m, len(lat), ms(lat.percentile(50)), ms(lat.percentile(99)), ms(lat.max()), ms(lat.min()), ms(lat.mean()))
	if m == pollMode {
		line += fmt.Sprintf("  (interval %s)", pollInterval)
		if w := readyToExec[watchMode].v; len(w) > 0 {
			line += fmt.Sprintf("  poll/watch p50 %.0fx", float64(lat.percentile(50))/float64(w.percentile(50)))
		}
	} else {
		line += fmt.Sprintf("  (includes the app's own start: stamp spawned directly p50 %.2f ms)", ms(stampStart(b, 20).percentile(50)))
	}
	b.Log(line)
	b.Logf("ready→exec %-5s samples (ms, sorted): %s", m, formatMS(lat))
	return lat
}

// creationOffsets spaces the n EndpointSlice creations of a batch: in watch mode
// evenly; in poll mode at random points of one interval, so that the samples do
// not all fall at the same phase of the resolvers' (simultaneously started) polls.
func creationOffsets(m mode, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		if m == pollMode {
			out[i] = rand.N(pollInterval)
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
func stampStart(b *testing.B, n int) durations {
	b.Helper()
	var d durations
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

func formatMS(d durations) string {
	s := slices.Clone(d)
	slices.Sort(s)
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = strconv.FormatFloat(ms(v), 'f', 1, 64)
	}
	return strings.Join(parts, " ")
}
