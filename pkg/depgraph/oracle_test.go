package depgraph

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// The oracle: the same edges worked out the slow, obvious way (every dependency
// against every pod), to check Build's index and the cycles against.

type step struct{ from, dependency, to string }

type oracle struct {
	steps map[step]bool
	next  map[string][]string // group -> groups it waits for, through any dependency
}

func newOracle(pods []Pod, services []Service) *oracle {
	selectors := map[spec.ObjectRef]map[string]string{}
	for _, s := range services {
		selectors[spec.ObjectRef{Namespace: s.Namespace, Name: s.Name}] = s.Selector
	}
	o := &oracle{steps: map[step]bool{}, next: map[string][]string{}}
	for _, p := range pods {
		for _, q := range pods {
			for _, dep := range satisfiedBy(p, q, selectors) {
				s := step{p.group(), dep, q.group()}
				if !o.steps[s] {
					o.steps[s] = true
					o.next[s.from] = append(o.next[s.from], s.to)
				}
			}
		}
	}
	return o
}

// satisfiedBy names p's dependencies that q satisfies.
func satisfiedBy(p, q Pod, selectors map[spec.ObjectRef]map[string]string) []string {
	const jobName = "batch.kubernetes.io/job-name"
	contains := func(labels map[string]string) bool {
		if len(labels) == 0 {
			return false
		}
		for k, v := range labels {
			if got, ok := q.Labels[k]; !ok || got != v {
				return false
			}
		}
		return true
	}
	var names []string
	for _, ref := range p.Services {
		if q.Namespace == ref.Namespace && contains(selectors[spec.ObjectRef{Namespace: ref.Namespace, Name: ref.Name}]) { // name#n: the same pods
			names = append(names, "service "+ref.String())
		}
	}
	for _, ref := range p.Jobs {
		if q.Namespace != ref.Namespace {
			continue
		}
		if ref.Name != "" && q.Labels[jobName] == ref.Name {
			names = append(names, "job "+ref.Namespace+"/"+ref.Name)
		}
		if _, isJobs := q.Labels[jobName]; ref.Name == "" && isJobs && contains(ref.Labels) {
			names = append(names, "jobs "+ref.String())
		}
	}
	for _, ref := range p.Pods {
		if q.Namespace == ref.Namespace && contains(ref.Labels) {
			names = append(names, "pods "+ref.String())
		}
	}
	for _, ref := range p.DaemonSets {
		if q.group() == "daemonset "+ref.String() {
			names = append(names, "daemonset "+ref.String())
		}
	}
	for _, ref := range p.Rollouts {
		if q.group() == ref.Kind+" "+ref.Namespace+"/"+ref.Name {
			names = append(names, "rollout "+ref.Namespace+"/"+ref.Kind+"/"+ref.Name)
		}
	}
	for _, o := range p.Objects {
		name := strings.ToLower(o.Kind) + " " + o.Namespace + "/" + o.Name + " (" + o.APIVersion + ")"
		if o.CEL {
			name = "cel " + o.APIVersion + " " + o.Kind + " " + o.Namespace + "/" + o.Name
		}
		switch {
		case o.Kind == "Pod" && q.Namespace == o.Namespace && q.Name == o.Name,
			o.Kind != "Pod" && q.group() == strings.ToLower(o.Kind)+" "+o.Namespace+"/"+o.Name:
			names = append(names, name)
		}
	}
	return names
}

// shortest is the number of groups on a shortest cycle through group, 0 if none.
func (o *oracle) shortest(group string) int {
	dist := map[string]int{group: 0}
	queue := []string{group}
	for len(queue) > 0 {
		g := queue[0]
		queue = queue[1:]
		for _, h := range o.next[g] {
			if h == group {
				return dist[g] + 1
			}
			if _, seen := dist[h]; !seen {
				dist[h] = dist[g] + 1
				queue = append(queue, h)
			}
		}
	}
	return 0
}

// checkCycle checks that cycle is a real, shortest cycle through pod's group,
// starting there.
func checkCycle(t *testing.T, pods []Pod, services []Service, pod types.NamespacedName, cycle Cycle) {
	t.Helper()
	var group string
	for _, p := range pods {
		if p.Namespace == pod.Namespace && p.Name == pod.Name {
			group = p.group()
		}
	}
	o := newOracle(pods, services)
	if len(cycle) < 2 || len(cycle)%2 != 0 || cycle[0] != group {
		t.Fatalf("%s: cycle %q does not alternate group and dependency from the pod's group %q", pod, cycle, group)
	}
	for i := 0; i < len(cycle); i += 2 {
		s := step{cycle[i], cycle[i+1], cycle[(i+2)%len(cycle)]}
		if !o.steps[s] {
			t.Errorf("%s: cycle %q has a step no pod makes: %s waits for %s, satisfied by %s", pod, cycle, s.from, s.dependency, s.to)
		}
	}
	if want := o.shortest(group); len(cycle)/2 != want {
		t.Errorf("%s: cycle %q has %d groups, the shortest has %d", pod, cycle, len(cycle)/2, want)
	}
}

// randomCluster makes a small, dense cluster where cycles of every shape are likely.
func randomCluster(rng *rand.Rand, npods int) ([]Pod, []Service) {
	namespaces := []string{"a", "b"}
	values := []string{"x", "y", "z"}
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	someLabels := func() map[string]string {
		labels := map[string]string{"app": pick(values)}
		if rng.IntN(2) == 0 {
			labels["tier"] = pick(values)
		}
		return labels
	}
	var services []Service
	for i := range 6 {
		s := Service{Namespace: pick(namespaces), Name: fmt.Sprintf("s%d", i)}
		if rng.IntN(5) > 0 {
			s.Selector = someLabels()
		}
		services = append(services, s)
	}
	pods := make([]Pod, npods)
	for i := range pods {
		ns := pick(namespaces)
		p := Pod{Namespace: ns, Name: fmt.Sprintf("p%d", i), Labels: someLabels()}
		switch rng.IntN(4) {
		case 0: // standalone
		case 1:
			p.Owner = "deployment " + ns + "/" + p.Labels["app"]
		case 2:
			p.Owner = "daemonset " + ns + "/" + pick(values)
		case 3:
			job := pick(values)
			p.Owner = "job " + ns + "/" + job
			p.Labels["batch.kubernetes.io/job-name"] = job
		}
		for range rng.IntN(3) {
			ns := pick(namespaces)
			switch rng.IntN(8) {
			case 0:
				s := svc(ns, fmt.Sprintf("s%d", rng.IntN(7))) // s6 does not exist
				if rng.IntN(3) == 0 {
					s.MinReady = 2
				}
				p.Services = append(p.Services, s)
			case 1:
				p.Jobs = append(p.Jobs, jobNamed(ns, pick(values)))
			case 2:
				p.Jobs = append(p.Jobs, jobsLabelled(ns, someLabels()))
			case 3:
				p.Pods = append(p.Pods, podsLabelled(ns, someLabels()))
			case 4:
				p.DaemonSets = append(p.DaemonSets, svc(ns, pick(values)))
			case 5:
				p.Rollouts = append(p.Rollouts, spec.WorkloadRef{Namespace: ns, Kind: pick([]string{"deployment", "daemonset"}), Name: pick(values)})
			case 6: // a workload named by a custom-resource or CEL item
				kind := pick([]string{"apps/v1 Deployment", "apps/v1 DaemonSet", "batch/v1 Job"})
				apiVersion, kind, _ := strings.Cut(kind, " ")
				p.Objects = append(p.Objects, Object{CEL: rng.IntN(2) == 0, APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: pick(values)})
			case 7: // a pod named by one
				p.Objects = append(p.Objects, Object{CEL: rng.IntN(2) == 0, APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: fmt.Sprintf("p%d", rng.IntN(npods))})
			}
		}
		pods[i] = p
	}
	return pods, services
}

func TestCyclesAgainstOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	inCycle := 0
	for round := range 300 {
		pods, services := randomCluster(rng, 1+rng.IntN(12))
		cycles := Build(pods, services).Cycles()
		o := newOracle(pods, services)
		for _, p := range pods {
			pod := types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
			cycle, found := cycles[pod]
			if want := o.shortest(p.group()) > 0; found != want {
				t.Fatalf("round %d: %s in a cycle: got %v, the oracle says %v\npods: %+v\nservices: %+v", round, pod, found, want, pods, services)
			}
			if found {
				inCycle++
				checkCycle(t, pods, services, pod, cycle)
			}
		}
	}
	if inCycle == 0 {
		t.Fatal("the random clusters made no cycle at all: the test checked nothing")
	}
}
