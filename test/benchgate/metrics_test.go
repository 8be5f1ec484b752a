package benchgate

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchproc"
)

// The API server's metrics the benchmark reads. A request is counted in
// requestTotal when it completes; an open WATCH only in longRunning, until it
// ends. watchEvents counts the events sent to watchers: one change sent to N
// watchers counts N. (apiserver_registered_watchers is gone from the API server.)
// terminatedWatchers counts the watchers the watch cache closed because they
// did not keep up; their clients list again.
const (
	requestTotal       = "apiserver_request_total"
	longRunning        = "apiserver_longrunning_requests"
	watchEvents        = "apiserver_watch_events_total"
	terminatedWatchers = "apiserver_terminated_watchers_total"
)

// metrics is one scrape of the API server's /metrics.
type metrics map[string]*dto.MetricFamily

// scrape reads the API server's own metrics as cluster-admin (envtest's API
// server serves them to an authorized client only).
func (r *rig) scrape() (metrics, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := r.env.Client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's /metrics: %w", err)
	}
	return parseMetrics(strings.NewReader(string(raw)))
}

func parseMetrics(in io.Reader) (metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	m, err := p.TextToMetricFamilies(in)
	if err != nil {
		return nil, fmt.Errorf("parsing the API server's /metrics: %w", err)
	}
	return m, nil
}

// sum adds the values of the series of name whose labels include match.
func (m metrics) sum(name string, match map[string]string) float64 {
	total := 0.0
	for _, s := range m[name].GetMetric() {
		if labelsMatch(s, match) {
			total += value(s)
		}
	}
	return total
}

func labelsMatch(s *dto.Metric, match map[string]string) bool {
	have := map[string]string{}
	for _, l := range s.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range match {
		if have[k] != v {
			return false
		}
	}
	return true
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.GetCounter().GetValue()
	case s.Gauge != nil:
		return s.GetGauge().GetValue()
	default:
		return s.GetUntyped().GetValue()
	}
}

// watches is the number of watches the API server serves now, of every resource.
func (m metrics) watches() float64 { return m.sum(longRunning, map[string]string{"verb": "WATCH"}) }

// eventsSent is the number of watch events the API server has sent, to every watcher.
func (m metrics) eventsSent() float64 { return m.sum(watchEvents, nil) }

// eventsSentBy is eventsSent by resource ("pods", "events.events.k8s.io").
func (m metrics) eventsSentBy() map[string]float64 {
	out := map[string]float64{}
	for _, s := range m[watchEvents].GetMetric() {
		r := labelValue(s, "resource")
		if r == "" {
			r = labelValue(s, "kind")
		}
		if g := labelValue(s, "group"); g != "" {
			r += "." + g
		}
		out[r] += value(s)
	}
	return out
}

// between is after minus before, key by key, without the zeros.
func between(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// podWrites is how many writes to pods, their status and other subresources
// aside, the API server has accepted (code 200): patches, updates, applies.
func podWrites(m metrics) float64 {
	n := 0.0
	for _, verb := range []string{"PATCH", "UPDATE", "APPLY"} {
		n += m.sum(requestTotal, map[string]string{"resource": "pods", "subresource": "", "verb": verb, "code": "200"})
	}
	return n
}

// podWriteCodes is, by response code, how many writes to pods (status aside)
// the API server answered between two scrapes: "200 999, 500 1".
func podWriteCodes(before, after metrics) map[string]float64 {
	out := map[string]float64{}
	for _, m := range []struct {
		m    metrics
		sign float64
	}{{after, 1}, {before, -1}} {
		for _, s := range m.m[requestTotal].GetMetric() {
			switch labelValue(s, "verb") {
			case "PATCH", "UPDATE", "APPLY":
				if labelValue(s, "resource") == "pods" && labelValue(s, "subresource") == "" {
					out[labelValue(s, "code")] += m.sign * value(s)
				}
			}
		}
	}
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

// requestKey names a kind of request: "PATCH pods/status (resource)", with the
// scope the API server gives it in parentheses.
func requestKey(s *dto.Metric) string {
	l := map[string]string{}
	for _, p := range s.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	res := l["resource"]
	if res == "" {
		res = "(non-resource)"
	}
	if l["subresource"] != "" {
		res += "/" + l["subresource"]
	}
	return fmt.Sprintf("%s %s (%s)", l["verb"], res, l["scope"])
}

// requestsBetween is how many requests of each kind the API server completed
// between two scrapes.
func requestsBetween(before, after metrics) map[string]float64 {
	out := map[string]float64{}
	for _, s := range after[requestTotal].GetMetric() {
		out[requestKey(s)] += value(s)
	}
	for _, s := range before[requestTotal].GetMetric() {
		out[requestKey(s)] -= value(s)
	}
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

func total(counts map[string]float64) float64 {
	t := 0.0
	for _, v := range counts {
		t += v
	}
	return t
}

// largest lists the n largest counts, "PATCH pods (namespace) 1000, ...".
func largest(counts map[string]float64, n int) string {
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b string) int {
		if counts[a] != counts[b] {
			if counts[a] > counts[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, 0, n)
	for _, k := range keys[:min(n, len(keys))] {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, counts[k]))
	}
	if len(keys) > n {
		parts = append(parts, fmt.Sprintf("%d more kinds", len(keys)-n))
	}
	return strings.Join(parts, ", ")
}

// moment is the API server as the benchmark saw it at one point of a scenario.
type moment struct {
	metrics
	watches    float64       // open watches
	eventsSent float64       // watch events sent so far
	rssMB      float64       // the API server's VmRSS
	heapMB     float64       // its Go heap in use, live objects only after a collection
	goroutines float64       // its goroutines: a watch holds some, whatever the heap does
	cpu        time.Duration // the API server's CPU so far, user+system
}

// observe reads the API server's metrics and process figures. With collect, it
// first has the API server run a garbage collection (its heap profile with
// gc=1), so that the heap in use is what is live, not the garbage of the last
// burst of requests.
func (r *rig) observe(collect bool) (moment, error) {
	if collect {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := r.env.Client.Discovery().RESTClient().Get().AbsPath("/debug/pprof/heap").Param("gc", "1").DoRaw(ctx); err != nil {
			return moment{}, fmt.Errorf("having the API server collect its garbage (/debug/pprof/heap?gc=1): %w", err)
		}
	}
	m, err := r.scrape()
	if err != nil {
		return moment{}, err
	}
	u, err := benchproc.UsageOf(r.apiServer)
	if err != nil {
		return moment{}, fmt.Errorf("reading the API server's memory and CPU time: %w", err)
	}
	return moment{
		metrics: m, watches: m.watches(), eventsSent: m.eventsSent(), rssMB: u.RSSMB, cpu: u.CPU,
		heapMB: m.sum("go_memstats_heap_inuse_bytes", nil) / 1e6, goroutines: m.sum("go_goroutines", nil),
	}, nil
}

// watchRestarts tells, between two moments, which watchers the API server closed
// for not keeping up (by resource) and which watches ended and were opened again
// (by resource and scope: the controller watches the cluster, the harness one
// namespace): "closed as too slow: pods 3; ended: WATCH pods (cluster) 3".
func watchRestarts(from, to moment) string {
	closed := map[string]float64{}
	for _, s := range to.metrics[terminatedWatchers].GetMetric() {
		closed[labelValue(s, "resource")] += value(s)
	}
	for _, s := range from.metrics[terminatedWatchers].GetMetric() {
		closed[labelValue(s, "resource")] -= value(s)
	}
	ended := map[string]float64{}
	for kind, n := range requestsBetween(from.metrics, to.metrics) {
		if strings.HasPrefix(kind, "WATCH ") {
			ended[kind] = n
		}
	}
	for k, v := range closed {
		if v == 0 {
			delete(closed, k)
		}
	}
	out := "none closed as too slow"
	if len(closed) > 0 {
		out = "closed as too slow: " + largest(closed, 5)
	}
	if len(ended) > 0 {
		out += "; ended: " + largest(ended, 5)
	}
	return out
}

func labelValue(s *dto.Metric, name string) string {
	for _, l := range s.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
