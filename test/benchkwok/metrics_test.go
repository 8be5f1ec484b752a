package benchkwok

import (
	"context"
	"fmt"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchproc"
)

// longRunning is the API server's gauge of the requests it serves for long: an
// open WATCH counts until it ends (apiserver_registered_watchers is gone).
const longRunning = "apiserver_longrunning_requests"

// storageBytes is the size of etcd's database as the API server last saw it.
const storageBytes = "apiserver_storage_size_bytes"

// moment is the API server (and etcd) at one point of a scenario.
type moment struct {
	watches    float64 // open watches, of every resource
	podWatches float64 // open watches of pods
	apiServer  benchproc.Usage
	etcd       benchproc.Usage
	etcdMB     float64 // etcd's database, 0 when the API server does not say
}

// observe scrapes the API server's metrics and reads both processes' usage.
func (r *rig) observe() (moment, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := r.env.Client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return moment{}, fmt.Errorf("reading the API server's /metrics: %w", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		return moment{}, fmt.Errorf("parsing the API server's /metrics: %w", err)
	}
	m := moment{
		watches:    sum(families[longRunning], map[string]string{"verb": "WATCH"}),
		podWatches: sum(families[longRunning], map[string]string{"verb": "WATCH", "resource": "pods"}),
		etcdMB:     sum(families[storageBytes], nil) / 1e6,
	}
	if m.apiServer, err = benchproc.UsageOf(r.apiServer); err != nil {
		return m, fmt.Errorf("reading the API server's resource use: %w", err)
	}
	if m.etcd, err = benchproc.UsageOf(r.etcd); err != nil {
		return m, fmt.Errorf("reading etcd's resource use: %w", err)
	}
	return m, nil
}

// sum adds the values of the series of f whose labels include match.
func sum(f *dto.MetricFamily, match map[string]string) float64 {
	total := 0.0
	for _, s := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range s.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range match {
			ok = ok && have[k] == v
		}
		if !ok {
			continue
		}
		switch {
		case s.Counter != nil:
			total += s.GetCounter().GetValue()
		case s.Gauge != nil:
			total += s.GetGauge().GetValue()
		default:
			total += s.GetUntyped().GetValue()
		}
	}
	return total
}
