package benchgate

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// The harness's pods are the webhook's own mutation in gate mode: the gate, the
// managed label, and the Service held in the status annotation, not in the env.
// The Service is all they wait for, so they are gate-only: no resolver, the
// container as written.
func TestGatedPodIsTheWebhooksMutation(t *testing.T) {
	pod, err := gatedPod("bench", "p1", "db")
	if err != nil {
		t.Fatal(err)
	}
	deps, gated, err := inject.Dependencies(pod)
	if err != nil || !gated {
		t.Fatalf("Dependencies: gated %v, err %v", gated, err)
	}
	if len(deps.Services) != 1 || deps.Services[0].Namespace != "bench" || deps.Services[0].Name != "db" {
		t.Errorf("gated dependencies %+v; want service bench/db", deps.Services)
	}
	if pod.Labels[inject.LabelManaged] != "true" || len(pod.Spec.SchedulingGates) != 1 || pod.Spec.SchedulingGates[0].Name != inject.SchedulingGate {
		t.Errorf("labels %v, gates %v", pod.Labels, pod.Spec.SchedulingGates)
	}
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == "DEPENDENCY_SERVICE" {
			t.Errorf("the gated Service is in the container's env: %v", e)
		}
	}
	c := pod.Spec.Containers[0]
	if !inject.GateOnly(pod) || len(pod.Spec.InitContainers) > 0 || len(pod.Spec.Volumes) > 0 ||
		strings.Join(c.Command, " ") != "/app serve" || len(c.Args) > 0 || len(c.Env) > 0 || len(c.VolumeMounts) > 0 {
		t.Errorf("not gate-only (status %s): init containers %v, volumes %v, container %+v",
			pod.Annotations[inject.AnnotationStatus], pod.Spec.InitContainers, pod.Spec.Volumes, c)
	}
}

const scrapeBefore = `# HELP apiserver_request_total Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",group="",resource="pods",scope="namespace",subresource="",verb="PATCH",version="v1"} 10
apiserver_request_total{code="201",component="apiserver",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1"} 5
# TYPE apiserver_longrunning_requests gauge
apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} 2
apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="namespace",subresource="exec",verb="CONNECT",version="v1"} 1
# TYPE apiserver_watch_events_total counter
apiserver_watch_events_total{group="",kind="Pod",version="v1"} 20
apiserver_watch_events_total{group="discovery.k8s.io",kind="EndpointSlice",version="v1"} 5
`

const scrapeAfter = `# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",group="",resource="pods",scope="namespace",subresource="",verb="PATCH",version="v1"} 110
apiserver_request_total{code="200",component="apiserver",group="",resource="pods",scope="namespace",subresource="status",verb="PATCH",version="v1"} 100
apiserver_request_total{code="409",component="apiserver",group="",resource="pods",scope="namespace",subresource="",verb="PATCH",version="v1"} 3
apiserver_request_total{code="201",component="apiserver",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1"} 5
apiserver_request_total{code="201",component="apiserver",group="discovery.k8s.io",resource="endpointslices",scope="resource",subresource="",verb="POST",version="v1"} 2
apiserver_request_total{code="200",component="",group="",resource="",scope="",subresource="",verb="GET",version=""} 4
# TYPE apiserver_longrunning_requests gauge
apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} 3
`

func TestMetrics(t *testing.T) {
	before, err := parseMetrics(strings.NewReader(scrapeBefore))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseMetrics(strings.NewReader(scrapeAfter))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := before.watches(), 2.0; got != want {
		t.Errorf("watches before = %v, want %v (CONNECT is no watch)", got, want)
	}
	if got, want := after.watches(), 3.0; got != want {
		t.Errorf("watches after = %v, want %v", got, want)
	}
	if got, want := before.eventsSent(), 25.0; got != want {
		t.Errorf("events sent before = %v, want %v", got, want)
	}
	if got := after.eventsSent(); got != 0 {
		t.Errorf("events sent after = %v, want 0 (no such series)", got)
	}
	if got, want := podWrites(after)-podWrites(before), 100.0; got != want {
		t.Errorf("pod writes accepted between = %v, want %v (PATCH pods 200 only: not 409, not status)", got, want)
	}
	got := requestsBetween(before, after)
	want := map[string]float64{
		"PATCH pods (namespace)":         103, // both codes of one kind
		"PATCH pods/status (namespace)":  100, // new series: from zero
		"GET (non-resource) ()":          4,
		"POST endpointslices (resource)": 2,
	} // POST pods did not change: left out
	if len(got) != len(want) {
		t.Errorf("requestsBetween = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("requestsBetween[%q] = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if got, want := withoutHarness(got), map[string]float64{"PATCH pods (namespace)": 103, "PATCH pods/status (namespace)": 100}; !maps.Equal(got, want) {
		t.Errorf("withoutHarness = %v, want %v (the scrapes left out)", got, want)
	}
	if total(got) != 209 {
		t.Errorf("total = %v, want 209", total(got))
	}
	if got, want := largest(got, 2), "PATCH pods (namespace) 103, PATCH pods/status (namespace) 100, 2 more kinds"; got != want {
		t.Errorf("largest = %q, want %q", got, want)
	}
}

func TestWatchRestarts(t *testing.T) {
	parse := func(text string) moment {
		t.Helper()
		m, err := parseMetrics(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return moment{metrics: m}
	}
	const quiet = `# TYPE apiserver_terminated_watchers_total counter
apiserver_terminated_watchers_total{group="",resource="pods"} 2
`
	const restarted = `# TYPE apiserver_terminated_watchers_total counter
apiserver_terminated_watchers_total{group="",resource="pods"} 5
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} 3
apiserver_request_total{code="200",component="apiserver",group="",resource="pods",scope="namespace",subresource="",verb="PATCH",version="v1"} 9
`
	tests := []struct {
		name     string
		from, to string
		want     string
	}{
		{"nothing happened", quiet, quiet, "none closed as too slow"},
		{"closed and re-opened", quiet, restarted, "closed as too slow: pods 3; ended: WATCH pods (cluster) 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := watchRestarts(parse(tc.from), parse(tc.to)); got != tc.want {
				t.Errorf("watchRestarts = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPerSecond(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	got := perSecond(start, []time.Time{at(10), at(999), at(1000), at(3500), at(-5)})
	if want := []int{3, 1, 0, 1}; !slices.Equal(got, want) {
		t.Errorf("perSecond: got %v, want %v (a time before the start counts in the first second)", got, want)
	}
	if got := formatCounts(got); got != "3 1 0 1" {
		t.Errorf("formatCounts: %q", got)
	}
}
