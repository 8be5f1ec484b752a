package bench

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	requestResolvers = 20 // K resolvers, one never-ready service each
	// requestWindow is the steady-state observation: a whole number of poll
	// intervals, starting half an interval after the resolvers settled (right
	// after their first list), so that in poll mode both edges fall between two
	// rounds of polls. An edge inside a round counts part of it: a first version
	// starting at the settle saw 185 LISTs where 20 resolvers made 200.
	requestWindow = 10 * pollInterval
	requestOffset = pollInterval / 2
)

var requestVerbs = []string{"LIST", "WATCH", "GET"}

type requestResult struct {
	deps                int
	window              time.Duration
	startup, steady     map[string]float64 // requests by verb, all resolvers together
	startupPerDep       float64
	steadyPerDepPerMin  float64
	gap                 float64 // between the settle and the window: in neither figure
	apiServerOwn        float64 // EndpointSlice requests of the API server itself (other scopes)
	deniedWatchesLogged int     // resolvers that logged a forbidden watch
}

var apiRequests = map[mode]*measured[requestResult]{watchMode: {}, pollMode: {}}

// BenchmarkAPIRequests counts, with the API server's own metrics, the requests K
// resolvers make while their dependencies never become ready: at startup (until
// each has listed and is watching, or has been refused the watch) and per minute
// after that.
func BenchmarkAPIRequests(b *testing.B) {
	for _, m := range []mode{watchMode, pollMode} {
		b.Run(string(m), func(b *testing.B) {
			needCluster(b)
			r := apiRequests[m].get(b, func(b *testing.B) requestResult { return measureAPIRequests(b, m) })
			noTime(b)
			b.ReportMetric(r.startupPerDep, "startup-req/dep")
			b.ReportMetric(r.steadyPerDepPerMin, "req/dep/min")
		})
	}
}

func measureAPIRequests(b *testing.B, m mode) requestResult {
	s := newSetup(b, m)
	services := createServices(b, s.ns, "never", requestResolvers)
	base := openSliceWatches(b)

	before := scrape(b)
	rs := make([]*resolver, len(services))
	for i, svc := range services {
		rs[i] = startResolver(b, s.waitingOn(svc)) // no command: init-container mode
	}
	waitSettled(b, s, rs, 1, base)
	settled := scrape(b)
	time.Sleep(requestOffset)
	from := scrape(b)
	t1 := time.Now()
	time.Sleep(requestWindow)
	after := scrape(b)
	window := time.Since(t1)
	for _, r := range rs {
		if r.exited() {
			b.Fatalf("a resolver exited while its dependency is not ready (%v); stderr:\n%s", r.err, r.stderr.String())
		}
	}
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(r.stop)
	}
	wg.Wait()

	res := requestResult{deps: len(rs), window: window, startup: map[string]float64{}, steady: map[string]float64{}}
	var startupTotal, steadyTotal float64
	for _, verb := range requestVerbs {
		res.startup[verb] = started(before, settled, sliceRequests(verb, "namespace"))
		res.steady[verb] = started(from, after, sliceRequests(verb, "namespace"))
		res.gap += started(settled, from, sliceRequests(verb, "namespace"))
		startupTotal += res.startup[verb]
		steadyTotal += res.steady[verb]
		res.apiServerOwn += started(before, after, sliceRequests(verb, "")) - started(before, after, sliceRequests(verb, "namespace"))
	}
	res.startupPerDep = startupTotal / float64(len(rs))
	res.steadyPerDepPerMin = steadyTotal / float64(len(rs)) / window.Minutes()
	for _, r := range rs {
		if strings.Contains(r.stderr.String(), "watch not allowed") {
			res.deniedWatchesLogged++
		}
	}

	b.Logf("API requests %-5s %d deps: startup %.2f req/dep (%s); steady %.2f req/dep/min over %.1fs (%s); API server's own EndpointSlice requests meanwhile: %.0f",
		m, res.deps, res.startupPerDep, byVerb(res.startup), res.steadyPerDepPerMin, window.Seconds(), byVerb(res.steady), res.apiServerOwn)
	if res.gap > 0 {
		b.Logf("API requests %-5s %.0f requests between the settle and the window are in neither figure", m, res.gap)
	}
	if res.deniedWatchesLogged > 0 {
		b.Logf("API requests %-5s %d of %d resolvers logged a forbidden WATCH: the authorizer rejects it before apiserver_request_total counts it, so the startup figure excludes it (+1 per dependency)",
			m, res.deniedWatchesLogged, res.deps)
	}
	return res
}

func byVerb(counts map[string]float64) string {
	parts := make([]string, 0, len(requestVerbs))
	for _, verb := range requestVerbs {
		parts = append(parts, fmt.Sprintf("%s %.0f", verb, counts[verb]))
	}
	return strings.Join(parts, ", ")
}
