package bench

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	requestResolvers = 20 // K resolvers waiting on never-ready services
	// Polls slow down while nothing changes, from the interval (2 s) to 1.5 times
	// it (3 s), unless they are shared: a single dependency's rounds come 2, 4.5,
	// 7.5, 10.5 s ... after the resolver settled (right after its first list), three
	// services' shared rounds 2, 4, 6, 8 s ... The window is steady state: it
	// starts at 9 s, between two rounds of either, and lasts 18 s, a whole number
	// of rounds of both, so that both edges fall between rounds. An edge inside a
	// round counts part of it: a first version starting at the settle saw 185
	// LISTs where 20 resolvers made 200.
	requestOffset = 9 * time.Second
	requestWindow = 18 * time.Second
)

// requestCase is one measurement of BenchmarkAPIRequests.
type requestCase struct {
	name     string
	mode     mode
	services int // per resolver, all in one namespace
}

var requestCases = []requestCase{
	{"watch", watchMode, 1},
	{"poll", pollMode, 1},
	{"poll-3-services", pollMode, 3},
}

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

var apiRequests = map[string]*measured[requestResult]{}

func init() {
	for _, c := range requestCases {
		apiRequests[c.name] = &measured[requestResult]{}
	}
}

// BenchmarkAPIRequests counts, with the API server's own metrics, the requests K
// resolvers make while their dependencies never become ready: at startup (until
// each has listed and is watching, or has been refused the watch) and per minute
// in steady state, for resolvers waiting on one service each and on three
// services of one namespace each.
func BenchmarkAPIRequests(b *testing.B) {
	for _, c := range requestCases {
		b.Run(c.name, func(b *testing.B) {
			needCluster(b)
			r := apiRequests[c.name].get(b, func(b *testing.B) requestResult { return measureAPIRequests(b, c) })
			noTime(b)
			b.ReportMetric(r.startupPerDep, "startup-req/dep")
			b.ReportMetric(r.steadyPerDepPerMin, "req/dep/min")
		})
	}
}

func measureAPIRequests(b *testing.B, c requestCase) requestResult {
	m := c.mode
	s := newSetup(b, m)
	services := createServices(b, s.ns, "never", requestResolvers*c.services)
	base := openSliceWatches(b)

	before := scrape(b)
	rs := make([]*resolver, requestResolvers)
	for i := range rs {
		rs[i] = startResolver(b, s.waitingOn(services[i*c.services:(i+1)*c.services]...)) // no command: init-container mode
	}
	waitSettled(b, s, rs, c.services, base)
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

	res := requestResult{deps: len(services), window: window, startup: map[string]float64{}, steady: map[string]float64{}}
	var startupTotal, steadyTotal float64
	for _, verb := range requestVerbs {
		res.startup[verb] = started(before, settled, sliceRequests(verb, "namespace"))
		res.steady[verb] = started(from, after, sliceRequests(verb, "namespace"))
		res.gap += started(settled, from, sliceRequests(verb, "namespace"))
		startupTotal += res.startup[verb]
		steadyTotal += res.steady[verb]
		res.apiServerOwn += started(before, after, sliceRequests(verb, "")) - started(before, after, sliceRequests(verb, "namespace"))
	}
	res.startupPerDep = startupTotal / float64(res.deps)
	res.steadyPerDepPerMin = steadyTotal / float64(res.deps) / window.Minutes()
	for _, r := range rs {
		if strings.Contains(r.stderr.String(), "watch not allowed") {
			res.deniedWatchesLogged++
		}
	}

	b.Logf("API requests %-15s %d resolvers, %d deps: startup %.2f req/dep (%s); steady %.2f req/dep/min over %.1fs (%s); API server's own EndpointSlice requests meanwhile: %.0f",
		c.name, len(rs), res.deps, res.startupPerDep, byVerb(res.startup), res.steadyPerDepPerMin, window.Seconds(), byVerb(res.steady), res.apiServerOwn)
	if res.gap > 0 {
		b.Logf("API requests %-15s %.0f requests between the settle and the window (%s later) are in neither figure", c.name, res.gap, requestOffset)
	}
	if res.deniedWatchesLogged > 0 {
		b.Logf("API requests %-15s %d of %d resolvers logged a forbidden WATCH: the authorizer rejects it before apiserver_request_total counts it, so the startup figure excludes it (+1 per dependency)",
			c.name, res.deniedWatchesLogged, len(rs))
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
