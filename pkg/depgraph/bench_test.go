package depgraph

import (
	"fmt"
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// benchCluster is 10,000 pods in 100 Deployments of 100 pods over 10 namespaces,
// and 1,000 services, 10 per Deployment. Each pod carries five labels and waits
// for three services of other Deployments (a ring through all of them, so one
// strongly connected component holds every group), a Job by name and pods by labels.
func benchCluster() ([]Pod, []Service) {
	const groups, podsPerGroup, servicesPerGroup = 100, 100, 10
	ns := func(g int) string { return fmt.Sprintf("ns%d", g%10) }
	name := func(g int) string { return fmt.Sprintf("app%d", g) }
	var services []Service
	for g := range groups {
		for s := range servicesPerGroup {
			services = append(services, Service{
				Namespace: ns(g), Name: fmt.Sprintf("%s-%d", name(g), s),
				Selector: map[string]string{"app": name(g), "part-of": "bench"},
			})
		}
	}
	pods := make([]Pod, 0, groups*podsPerGroup)
	for g := range groups {
		var waits []spec.ObjectRef
		for _, d := range []int{1, 7, 31} {
			other := (g + d) % groups
			waits = append(waits, svc(ns(other), fmt.Sprintf("%s-%d", name(other), g%servicesPerGroup)))
		}
		jobs := []spec.JobRef{jobNamed(ns(g), name(g)+"-init")}
		peers := []spec.PodRef{podsLabelled(ns(g), map[string]string{"app": name((g + 3) % groups), "tier": "backend"})}
		for i := range podsPerGroup {
			pods = append(pods, Pod{
				Namespace: ns(g),
				Name:      fmt.Sprintf("%s-5d9f8c7b6-%05d", name(g), i),
				Owner:     "deployment " + ns(g) + "/" + name(g),
				Labels: map[string]string{
					"app": name(g), "part-of": "bench", "tier": "backend",
					"pod-template-hash": "5d9f8c7b6", "instance": fmt.Sprintf("%d", i),
				},
				Services: waits, Jobs: jobs, Pods: peers,
			})
		}
	}
	return pods, services
}

// The benchmarks below measure real work only if the cluster is what it says.
func TestBenchClusterIsOneBigCycle(t *testing.T) {
	pods, services := benchCluster()
	if len(pods) != 10000 || len(services) != 1000 {
		t.Fatalf("%d pods and %d services, want 10000 and 1000", len(pods), len(services))
	}
	if cycles := Build(pods, services).Cycles(); len(cycles) != len(pods) {
		t.Fatalf("%d of %d pods in a cycle, want all", len(cycles), len(pods))
	}
}

func BenchmarkBuild10000(b *testing.B) {
	pods, services := benchCluster()
	b.ReportAllocs()
	for b.Loop() {
		Build(pods, services)
	}
}

func BenchmarkCycles10000(b *testing.B) {
	g := Build(benchCluster())
	b.ReportAllocs()
	for b.Loop() {
		g.Cycles()
	}
}

func BenchmarkCloses10000(b *testing.B) {
	pods, services := benchCluster()
	g := Build(pods[1:], services)
	b.ReportAllocs()
	for b.Loop() {
		if _, found := g.Closes(pods[0]); !found {
			b.Fatal("the pod closes no cycle")
		}
	}
}
