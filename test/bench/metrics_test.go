package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sample is one line of the Prometheus text format: name{labels} value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metrics is one scrape of the API server's /metrics.
type metrics []sample

// scrape reads the API server's own metrics as cluster-admin.
func scrape(b *testing.B) metrics {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := env.Client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		b.Fatalf("reading the API server's /metrics: %v", err)
	}
	m, err := parseMetrics(string(raw))
	if err != nil {
		b.Fatalf("parsing the API server's /metrics: %v", err)
	}
	return m
}

// parseMetrics reads the Prometheus text exposition format, skipping comments.
func parseMetrics(text string) (metrics, error) {
	var out metrics
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w: %q", n+1, err, line)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, fmt.Errorf("no metric name")
	}
	s.name = line[:i]
	rest := line[i:]
	if rest[0] == '{' {
		var err error
		rest, err = parseLabels(rest[1:], s.labels)
		if err != nil {
			return s, err
		}
	}
	f := strings.Fields(rest) // value [timestamp]
	if len(f) == 0 {
		return s, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(f[0], 64) // also NaN, +Inf
	if err != nil {
		return s, err
	}
	s.value = v
	return s, nil
}

// parseLabels reads `k="v",...}` into into and returns what follows the brace.
func parseLabels(in string, into map[string]string) (string, error) {
	for {
		in = strings.TrimLeft(in, " ,")
		if in == "" {
			return "", fmt.Errorf("unterminated labels")
		}
		if in[0] == '}' {
			return in[1:], nil
		}
		eq := strings.IndexByte(in, '=')
		if eq <= 0 || len(in) < eq+2 || in[eq+1] != '"' {
			return "", fmt.Errorf("bad label")
		}
		key := strings.TrimSpace(in[:eq])
		in = in[eq+2:]
		var v strings.Builder
		closed := false
		for len(in) > 0 && !closed {
			c := in[0]
			in = in[1:]
			switch {
			case c == '"':
				closed = true
			case c == '\\' && len(in) > 0:
				switch in[0] {
				case 'n':
					v.WriteByte('\n')
				default: // \\ and \"
					v.WriteByte(in[0])
				}
				in = in[1:]
			default:
				v.WriteByte(c)
			}
		}
		if !closed {
			return "", fmt.Errorf("unterminated label value")
		}
		into[key] = v.String()
	}
}

// sum adds the values of the samples named name whose labels include match.
func (m metrics) sum(name string, match map[string]string) float64 {
	total := 0.0
next:
	for _, s := range m {
		if s.name != name {
			continue
		}
		for k, v := range match {
			if s.labels[k] != v {
				continue next
			}
		}
		total += s.value
	}
	return total
}

// has reports whether any sample is named name.
func (m metrics) has(name string) bool {
	for _, s := range m {
		if s.name == name {
			return true
		}
	}
	return false
}

// The API server's counters and gauge for requests on EndpointSlices. A request
// is counted in apiserver_request_total when it completes, so an open WATCH is
// seen only in apiserver_longrunning_requests until it ends. Requests the
// authorizer denies (a forbidden WATCH) appear in neither.
const (
	requestTotal = "apiserver_request_total"
	longRunning  = "apiserver_longrunning_requests"
)

// sliceRequests selects requests on EndpointSlices with verb in scope: the
// resolvers list and watch one namespace ("namespace"); the API server's own
// kubernetes-service reconciler GETs by name ("resource") and watches all
// namespaces ("cluster").
func sliceRequests(verb, scope string) map[string]string {
	m := map[string]string{"group": "discovery.k8s.io", "resource": "endpointslices", "verb": verb}
	if scope != "" {
		m["scope"] = scope
	}
	return m
}

// openSliceWatches is the number of namespaced EndpointSlice watches (the
// resolvers') the API server serves now.
func openSliceWatches(b *testing.B) float64 {
	b.Helper()
	return scrape(b).sum(longRunning, sliceRequests("WATCH", "namespace"))
}

// started is the number of requests with these labels that began between two
// scrapes: the ones completed in between plus the change in those still open.
func started(before, after metrics, match map[string]string) float64 {
	return after.sum(requestTotal, match) - before.sum(requestTotal, match) +
		after.sum(longRunning, match) - before.sum(longRunning, match)
}
