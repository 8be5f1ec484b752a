package controller

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
)

// Metrics are the controller's Prometheus metrics. The pod counts are computed at
// scrape time from the controller's own view, so they cannot drift; only the
// leader has one (sum or max over replicas).
type Metrics struct {
	// ReleaseLatency: from the dependency change that readied a gated pod's last
	// dependency, as seen by the controller, to its gate removed.
	ReleaseLatency prometheus.Histogram
	// GatedDuration: from a gated pod's creation to its gate removed.
	GatedDuration prometheus.Histogram

	states *podStates
}

// NewMetrics registers the histograms on reg (controller-runtime's
// metrics.Registry in the webhook).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		ReleaseLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "entrypoint_controller_release_latency_seconds",
			Help:    "Time from the dependency change that made a gated pod's dependencies ready, as seen by the controller, to its scheduling gate removed.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
		GatedDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "entrypoint_controller_gated_duration_seconds",
			Help:    "Time from a gated pod's creation to its scheduling gate removed.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1 s to 2.3 h
		}),
		states: newPodStates(time.Now),
	}
	var err error
	if m.ReleaseLatency, err = register(reg, m.ReleaseLatency); err != nil {
		return nil, err
	}
	if m.GatedDuration, err = register(reg, m.GatedDuration); err != nil {
		return nil, err
	}
	if m.states, err = register(reg, m.states); err != nil {
		return nil, err
	}
	return m, nil
}

// podStates is what the controller last decided for each pod it follows.
type podStates struct {
	now func() time.Time

	mu   sync.Mutex
	pods map[types.NamespacedName]podState

	podsDesc   *prometheus.Desc
	oldestDesc *prometheus.Desc
}

type podState struct {
	reason  string
	gated   bool
	created time.Time
}

// register registers c, or returns the collector registered before in its place
// (a second controller in the same process, as in tests, shares it).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			return c, err
		}
		existing, ok := already.ExistingCollector.(C)
		if !ok {
			return c, err
		}
		return existing, nil
	}
	return c, nil
}

// reset forgets every pod: a new controller (after a lost election) starts over.
func (s *podStates) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pods = map[types.NamespacedName]podState{}
}

func newPodStates(now func() time.Time) *podStates {
	return &podStates{
		now:  now,
		pods: map[types.NamespacedName]podState{},
		podsDesc: prometheus.NewDesc("entrypoint_controller_pods",
			"Pods the dependency controller follows, by the reason of their condition and whether they are still gated.",
			[]string{"reason", "gated"}, nil),
		oldestDesc: prometheus.NewDesc("entrypoint_controller_gated_pod_oldest_seconds",
			"Age of the oldest pod still held by the scheduling gate; 0 when none is.", nil, nil),
	}
}

func (s *podStates) set(pod types.NamespacedName, reason string, gated bool, created time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pods[pod] = podState{reason: reason, gated: gated, created: created}
}

func (s *podStates) forget(pod types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pods, pod)
}

func (s *podStates) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.podsDesc
	ch <- s.oldestDesc
}

func (s *podStates) Collect(ch chan<- prometheus.Metric) {
	type key struct {
		reason string
		gated  bool
	}
	counts := map[key]int{}
	for _, reason := range []string{ReasonWaiting, ReasonReady, ReasonCycle, ReasonTooManyDependencies} {
		counts[key{reason, false}], counts[key{reason, true}] = 0, 0
	}
	var oldest time.Time
	s.mu.Lock()
	for _, st := range s.pods {
		counts[key{st.reason, st.gated}]++
		if st.gated && (oldest.IsZero() || st.created.Before(oldest)) {
			oldest = st.created
		}
	}
	s.mu.Unlock()
	for k, n := range counts {
		gated := "false"
		if k.gated {
			gated = "true"
		}
		ch <- prometheus.MustNewConstMetric(s.podsDesc, prometheus.GaugeValue, float64(n), k.reason, gated)
	}
	age := 0.0
	if !oldest.IsZero() {
		age = s.now().Sub(oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(s.oldestDesc, prometheus.GaugeValue, age)
}
