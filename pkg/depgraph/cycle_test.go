package depgraph

import (
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

type cyclesCase struct {
	name     string
	pods     []Pod
	services []Service
	want     map[string]Cycle // by "namespace/name"; pods in no cycle are absent
}

func cyclesCases() []cyclesCase {
	return []cyclesCase{
		{
			name: "no cycle",
			pods: []Pod{
				{Namespace: "ns", Name: "api-1", Owner: "deployment ns/api", Labels: app("api"), Services: []spec.ObjectRef{svc("ns", "db")}},
				{Namespace: "ns", Name: "db-0", Owner: "statefulset ns/db", Labels: app("db")},
			},
			services: []Service{{Namespace: "ns", Name: "db", Selector: app("db")}, {Namespace: "ns", Name: "api", Selector: app("api")}},
			want:     map[string]Cycle{},
		},
		{
			name: "self-loop: a pod waits for its own service",
			pods: []Pod{
				{Namespace: "ns", Name: "api-1", Owner: "deployment ns/api", Labels: app("api"), Services: []spec.ObjectRef{svc("ns", "api")}},
				{Namespace: "ns", Name: "api-2", Owner: "deployment ns/api", Labels: app("api")},
			},
			services: []Service{{Namespace: "ns", Name: "api", Selector: app("api")}},
			want: map[string]Cycle{
				"ns/api-1": {"deployment ns/api", "service ns/api"},
				"ns/api-2": {"deployment ns/api", "service ns/api"},
			},
		},
		{
			name: "self-loop: a standalone pod waits for pods like itself",
			pods: []Pod{
				{Namespace: "ns", Name: "lonely", Labels: app("lonely"), Pods: []spec.PodRef{podsLabelled("ns", app("lonely"))}},
			},
			want: map[string]Cycle{"ns/lonely": {"pod ns/lonely", "pods ns/[app=lonely]"}},
		},
		{
			name: "two groups through services",
			pods: []Pod{
				{Namespace: "ns", Name: "api-1", Owner: "deployment ns/api", Labels: app("api"), Services: []spec.ObjectRef{svc("ns", "db")}},
				{Namespace: "ns", Name: "db-0", Owner: "statefulset ns/db", Labels: app("db"), Services: []spec.ObjectRef{svc("ns", "api")}},
				{Namespace: "ns", Name: "web-1", Owner: "deployment ns/web", Labels: app("web"), Services: []spec.ObjectRef{svc("ns", "api")}},
			},
			services: []Service{{Namespace: "ns", Name: "db", Selector: app("db")}, {Namespace: "ns", Name: "api", Selector: app("api")}},
			want: map[string]Cycle{
				"ns/api-1": {"deployment ns/api", "service ns/db", "statefulset ns/db", "service ns/api"},
				"ns/db-0":  {"statefulset ns/db", "service ns/api", "deployment ns/api", "service ns/db"},
			},
		},
		{
			name: "three groups through a service, a job by name and a pod selector",
			pods: []Pod{
				{Namespace: "ns", Name: "api-1", Owner: "deployment ns/api", Labels: app("api"), Services: []spec.ObjectRef{svc("ns", "db")}},
				{Namespace: "ns", Name: "db-0", Owner: "statefulset ns/db", Labels: app("db"), Jobs: []spec.JobRef{jobNamed("ns", "db-init")}},
				func() Pod {
					p := jobPod("ns", "db-init", "db-init-x1")
					p.Pods = []spec.PodRef{podsLabelled("ns", app("api"))}
					return p
				}(),
			},
			services: []Service{{Namespace: "ns", Name: "db", Selector: app("db")}},
			want: map[string]Cycle{
				"ns/api-1":      {"deployment ns/api", "service ns/db", "statefulset ns/db", "job ns/db-init", "job ns/db-init", "pods ns/[app=api]"},
				"ns/db-0":       {"statefulset ns/db", "job ns/db-init", "job ns/db-init", "pods ns/[app=api]", "deployment ns/api", "service ns/db"},
				"ns/db-init-x1": {"job ns/db-init", "pods ns/[app=api]", "deployment ns/api", "service ns/db", "statefulset ns/db", "job ns/db-init"},
			},
		},
		{
			name: "jobs by labels are their pods that carry the job-name label",
			pods: []Pod{
				{Namespace: "ns", Name: "api-1", Owner: "deployment ns/api", Labels: map[string]string{"app": "api", "tier": "setup"},
					Jobs: []spec.JobRef{jobsLabelled("ns", map[string]string{"tier": "setup"})}},
				func() Pod {
					p := jobPod("ns", "migrate", "migrate-x1")
					p.Labels["tier"] = "setup"
					p.Services = []spec.ObjectRef{svc("ns", "api")}
					return p
				}(),
			},
			services: []Service{{Namespace: "ns", Name: "api", Selector: app("api")}},
			want: map[string]Cycle{
				// api-1 itself carries tier=setup but no job-name: it is no Job's pod.
				"ns/api-1":      {"deployment ns/api", "jobs ns/[tier=setup]", "job ns/migrate", "service ns/api"},
				"ns/migrate-x1": {"job ns/migrate", "service ns/api", "deployment ns/api", "jobs ns/[tier=setup]"},
			},
		},
		{
			name: "a rollout waits for the workload's pods",
			pods: []Pod{
				{Namespace: "ns", Name: "api-1", Owner: "deployment ns/api", Labels: app("api"),
					Rollouts: []spec.WorkloadRef{{Namespace: "ns", Kind: "statefulset", Name: "db"}}},
				{Namespace: "ns", Name: "db-0", Owner: "statefulset ns/db", Labels: app("db"), Services: []spec.ObjectRef{svc("ns", "api")}},
				// A rollout of a workload without a managed pod leads nowhere.
				{Namespace: "ns", Name: "web-1", Owner: "deployment ns/web", Labels: app("web"),
					Rollouts: []spec.WorkloadRef{{Namespace: "ns", Kind: "deployment", Name: "gone"}}},
			},
			services: []Service{{Namespace: "ns", Name: "api", Selector: app("api")}},
			want: map[string]Cycle{
				"ns/api-1": {"deployment ns/api", "rollout ns/statefulset/db", "statefulset ns/db", "service ns/api"},
				"ns/db-0":  {"statefulset ns/db", "service ns/api", "deployment ns/api", "rollout ns/statefulset/db"},
			},
		},
		{
			name: "a rollout of its own daemonset",
			pods: []Pod{
				{Namespace: "ns", Name: "agent-x", Owner: "daemonset ns/agent", Labels: app("agent"),
					Rollouts: []spec.WorkloadRef{{Namespace: "ns", Kind: "daemonset", Name: "agent"}}},
			},
			want: map[string]Cycle{"ns/agent-x": {"daemonset ns/agent", "rollout ns/daemonset/agent"}},
		},
		{
			name: "CEL and custom-resource items naming workloads and pods",
			pods: []Pod{
				{Namespace: "ns", Name: "web-1", Owner: "deployment ns/web", Labels: app("web"),
					Objects: []Object{{CEL: true, APIVersion: "apps/v1", Kind: "Deployment", Namespace: "ns", Name: "worker"}}},
				{Namespace: "ns", Name: "worker-1", Owner: "deployment ns/worker", Labels: app("worker"),
					Objects: []Object{{APIVersion: "batch/v1", Kind: "Job", Namespace: "ns", Name: "init"}}},
				func() Pod {
					p := jobPod("ns", "init", "init-x1")
					p.Objects = []Object{{CEL: true, APIVersion: "v1", Kind: "Pod", Namespace: "ns", Name: "web-1"}}
					return p
				}(),
				// Names a pod that is not managed: no edge.
				{Namespace: "ns", Name: "lone", Labels: app("lone"),
					Objects: []Object{{CEL: true, APIVersion: "v1", Kind: "Pod", Namespace: "ns", Name: "unmanaged"}}},
			},
			want: map[string]Cycle{
				"ns/web-1":    {"deployment ns/web", "cel apps/v1 Deployment ns/worker", "deployment ns/worker", "job ns/init (batch/v1)", "job ns/init", "cel v1 Pod ns/web-1"},
				"ns/worker-1": {"deployment ns/worker", "job ns/init (batch/v1)", "job ns/init", "cel v1 Pod ns/web-1", "deployment ns/web", "cel apps/v1 Deployment ns/worker"},
				"ns/init-x1":  {"job ns/init", "cel v1 Pod ns/web-1", "deployment ns/web", "cel apps/v1 Deployment ns/worker", "deployment ns/worker", "job ns/init (batch/v1)"},
			},
		},
		{
			name: "a service with a minimum (name#n) is the service",
			pods: []Pod{
				{Namespace: "ns", Name: "db-0", Owner: "statefulset ns/db", Labels: app("db"),
					Services: []spec.ObjectRef{{Namespace: "ns", Name: "db", MinReady: 3}}},
				{Namespace: "ns", Name: "api-1", Owner: "deployment ns/api", Labels: app("api"), Services: []spec.ObjectRef{svc("ns", "db")}},
			},
			services: []Service{{Namespace: "ns", Name: "db", Selector: app("db")}},
			want:     map[string]Cycle{"ns/db-0": {"statefulset ns/db", "service ns/db"}},
		},
		{
			name: "two disjoint cycles, and a pod outside both",
			pods: []Pod{
				{Namespace: "a", Name: "x-1", Owner: "deployment a/x", Labels: app("x"), Services: []spec.ObjectRef{svc("a", "y")}},
				{Namespace: "a", Name: "y-1", Owner: "deployment a/y", Labels: app("y"), Services: []spec.ObjectRef{svc("a", "x")}},
				{Namespace: "b", Name: "z-0", Owner: "statefulset b/z", Labels: app("z"), Pods: []spec.PodRef{podsLabelled("b", app("z"))}},
				{Namespace: "b", Name: "w-1", Owner: "deployment b/w", Labels: app("w"), Services: []spec.ObjectRef{svc("a", "x")}},
			},
			services: []Service{{Namespace: "a", Name: "x", Selector: app("x")}, {Namespace: "a", Name: "y", Selector: app("y")}},
			want: map[string]Cycle{
				"a/x-1": {"deployment a/x", "service a/y", "deployment a/y", "service a/x"},
				"a/y-1": {"deployment a/y", "service a/x", "deployment a/x", "service a/y"},
				"b/z-0": {"statefulset b/z", "pods b/[app=z]"},
			},
		},
		{
			name: "a service in another namespace selects pods of its own namespace only",
			pods: []Pod{
				{Namespace: "front", Name: "web-1", Owner: "deployment front/web", Labels: app("web"), Services: []spec.ObjectRef{svc("back", "db")}},
				{Namespace: "back", Name: "db-0", Owner: "statefulset back/db", Labels: app("db"), Services: []spec.ObjectRef{svc("front", "web")}},
				// Labelled like db, but in front: back/db does not select it.
				{Namespace: "front", Name: "db-copy", Labels: app("db"), Services: []spec.ObjectRef{svc("front", "web")}},
			},
			services: []Service{{Namespace: "back", Name: "db", Selector: app("db")}, {Namespace: "front", Name: "web", Selector: app("web")}},
			want: map[string]Cycle{
				"front/web-1": {"deployment front/web", "service back/db", "statefulset back/db", "service front/web"},
				"back/db-0":   {"statefulset back/db", "service front/web", "deployment front/web", "service back/db"},
			},
		},
		{
			name: "a service with an empty selector, and one that does not exist, are served by no managed pod",
			pods: []Pod{
				{Namespace: "ns", Name: "api-1", Owner: "deployment ns/api", Labels: app("api"),
					Services: []spec.ObjectRef{svc("ns", "external"), svc("ns", "gone")}},
			},
			services: []Service{{Namespace: "ns", Name: "external", Selector: map[string]string{}}},
			want:     map[string]Cycle{},
		},
		{
			name: "the pods of a group wait for the union of their dependencies",
			pods: []Pod{
				{Namespace: "ns", Name: "api-1", Owner: "deployment ns/api", Labels: app("api"), Services: []spec.ObjectRef{svc("ns", "db")}},
				{Namespace: "ns", Name: "api-2", Owner: "deployment ns/api", Labels: app("api")},
				{Namespace: "ns", Name: "db-0", Owner: "statefulset ns/db", Labels: app("db")},
				{Namespace: "ns", Name: "db-1", Owner: "statefulset ns/db", Labels: app("db"), Services: []spec.ObjectRef{svc("ns", "api")}},
			},
			services: []Service{{Namespace: "ns", Name: "db", Selector: app("db")}, {Namespace: "ns", Name: "api", Selector: app("api")}},
			want: map[string]Cycle{
				"ns/api-1": {"deployment ns/api", "service ns/db", "statefulset ns/db", "service ns/api"},
				"ns/api-2": {"deployment ns/api", "service ns/db", "statefulset ns/db", "service ns/api"},
				"ns/db-0":  {"statefulset ns/db", "service ns/api", "deployment ns/api", "service ns/db"},
				"ns/db-1":  {"statefulset ns/db", "service ns/api", "deployment ns/api", "service ns/db"},
			},
		},
		{
			name: "each group gets the shortest cycle through itself; equal lengths go to the first name",
			// a <-> b and b <-> c: b sits on two cycles of the same length.
			pods: []Pod{
				{Namespace: "ns", Name: "a-1", Owner: "deployment ns/a", Labels: app("a"), Services: []spec.ObjectRef{svc("ns", "b")}},
				{Namespace: "ns", Name: "b-1", Owner: "deployment ns/b", Labels: app("b"), Services: []spec.ObjectRef{svc("ns", "c"), svc("ns", "a")}},
				{Namespace: "ns", Name: "c-1", Owner: "deployment ns/c", Labels: app("c"), Services: []spec.ObjectRef{svc("ns", "b")}},
			},
			services: []Service{
				{Namespace: "ns", Name: "a", Selector: app("a")},
				{Namespace: "ns", Name: "b", Selector: app("b")},
				{Namespace: "ns", Name: "c", Selector: app("c")},
			},
			want: map[string]Cycle{
				"ns/a-1": {"deployment ns/a", "service ns/b", "deployment ns/b", "service ns/a"},
				"ns/b-1": {"deployment ns/b", "service ns/a", "deployment ns/a", "service ns/b"},
				"ns/c-1": {"deployment ns/c", "service ns/b", "deployment ns/b", "service ns/c"},
			},
		},
		{
			name: "a daemonset's pods, and pods on the same node, count",
			pods: []Pod{
				{Namespace: "sys", Name: "agent-abc", Owner: "daemonset sys/agent", Labels: app("agent"), Services: []spec.ObjectRef{svc("sys", "conf")}},
				{Namespace: "sys", Name: "conf-1", Owner: "deployment sys/conf", Labels: app("conf"),
					Pods: []spec.PodRef{{Namespace: "sys", Labels: app("cache"), RequireSameNode: true}}},
				{Namespace: "sys", Name: "cache-abc", Owner: "daemonset sys/cache", Labels: app("cache"), DaemonSets: []spec.ObjectRef{svc("sys", "agent")}},
			},
			services: []Service{{Namespace: "sys", Name: "conf", Selector: app("conf")}},
			want: map[string]Cycle{
				"sys/agent-abc": {"daemonset sys/agent", "service sys/conf", "deployment sys/conf", "pods sys/[app=cache] on this node", "daemonset sys/cache", "daemonset sys/agent"},
				"sys/conf-1":    {"deployment sys/conf", "pods sys/[app=cache] on this node", "daemonset sys/cache", "daemonset sys/agent", "daemonset sys/agent", "service sys/conf"},
				"sys/cache-abc": {"daemonset sys/cache", "daemonset sys/agent", "daemonset sys/agent", "service sys/conf", "deployment sys/conf", "pods sys/[app=cache] on this node"},
			},
		},
	}
}

func TestCycles(t *testing.T) {
	for _, tc := range cyclesCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := Build(tc.pods, tc.services).Cycles()
			if !reflect.DeepEqual(byString(got), tc.want) {
				t.Errorf("cycles:\n got %v\nwant %v", byString(got), tc.want)
			}
			for pod, cycle := range got {
				checkCycle(t, tc.pods, tc.services, pod, cycle)
			}
		})
	}
}

// The answer depends on the pods and services, not on the order they come in.
func TestCyclesIgnoreInputOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range cyclesCases() {
		want := byString(Build(tc.pods, tc.services).Cycles())
		for range 10 {
			pods, services := shuffled(rng, tc.pods), shuffled(rng, tc.services)
			if got := byString(Build(pods, services).Cycles()); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: shuffled input changed the cycles:\n got %v\nwant %v", tc.name, got, want)
			}
		}
	}
}

func TestCycleMessage(t *testing.T) {
	cases := []struct {
		cycle Cycle
		want  string
	}{
		{
			Cycle{"deployment ns/api", "service ns/api"},
			"deployment ns/api waits for service ns/api, served by deployment ns/api",
		},
		{
			Cycle{"deployment ns/api", "service ns/db", "statefulset ns/db", "job ns/db-init", "job ns/db-init", "pods ns/[app=api]"},
			"deployment ns/api waits for service ns/db, served by statefulset ns/db, which waits for job ns/db-init, " +
				"which waits for pods ns/[app=api], found in deployment ns/api",
		},
		{
			Cycle{"pod ns/p", "jobs ns/[tier=setup]", "job ns/migrate", "daemonset ns/agent", "daemonset ns/agent", "service ns/p"},
			"pod ns/p waits for jobs ns/[tier=setup], run by job ns/migrate, which waits for daemonset ns/agent, " +
				"which waits for service ns/p, served by pod ns/p",
		},
		{
			Cycle{"deployment ns/api", "rollout ns/statefulset/db", "statefulset ns/db", "cel apps/v1 Deployment ns/api"},
			"deployment ns/api waits for rollout ns/statefulset/db, rolled out by statefulset ns/db, " +
				"which waits for cel apps/v1 Deployment ns/api, satisfied by deployment ns/api",
		},
		{
			// A job by name whose pods belong to no Job (made by hand, labelled alike).
			Cycle{"pod ns/a", "job ns/x", "pod ns/b", "service ns/a"},
			"pod ns/a waits for job ns/x, run by pod ns/b, which waits for service ns/a, served by pod ns/a",
		},
	}
	for _, tc := range cases {
		if got := tc.cycle.Message(); got != tc.want {
			t.Errorf("Message of %q:\n got %q\nwant %q", tc.cycle, got, tc.want)
		}
	}
}

func TestCyclesAreTheCallers(t *testing.T) {
	pods := []Pod{
		{Namespace: "ns", Name: "a", Labels: app("x"), Owner: "deployment ns/x", Pods: []spec.PodRef{podsLabelled("ns", app("x"))}},
		{Namespace: "ns", Name: "b", Labels: app("x"), Owner: "deployment ns/x"},
	}
	g := Build(pods, nil)
	first := g.Cycles()
	first[types.NamespacedName{Namespace: "ns", Name: "a"}][0] = "changed"
	if got := g.Cycles()[types.NamespacedName{Namespace: "ns", Name: "b"}][0]; got != "deployment ns/x" {
		t.Fatalf("changing one returned cycle changed another pod's or the graph's: %q", got)
	}
}

func byString(cycles map[types.NamespacedName]Cycle) map[string]Cycle {
	out := make(map[string]Cycle, len(cycles))
	for pod, c := range cycles {
		out[pod.String()] = c
	}
	return out
}

func shuffled[T any](rng *rand.Rand, in []T) []T {
	out := append([]T(nil), in...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// Dependency names read like the resolver's refs (spec's String methods), label
// order included, so a cycle message and a Waiting message name things alike.
func TestDependencyNamesFollowSpec(t *testing.T) {
	// "a" sorts before "a.b" as a key, after it as "a=..." text: spec sorts the text.
	tricky := map[string]string{"a": "1", "a.b": "2", "z": "3"}
	p := Pod{
		Namespace: "ns", Name: "p",
		Services:   []spec.ObjectRef{svc("other", "db")},
		Jobs:       []spec.JobRef{jobNamed("ns", "init"), jobsLabelled("ns", tricky)},
		Pods:       []spec.PodRef{podsLabelled("ns", tricky), {Namespace: "ns", Labels: app("x"), RequireSameNode: true}},
		DaemonSets: []spec.ObjectRef{svc("sys", "agent")},
		Rollouts:   []spec.WorkloadRef{{Namespace: "ns", Kind: "statefulset", Name: "db"}},
	}
	deps := &spec.Spec{
		CustomResources: []spec.CustomResourceRef{{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "ns", Name: "api"}},
		CEL:             []spec.CELRef{{APIVersion: "v1", Kind: "Pod", Namespace: "ns", Name: "db-0", Expression: "true"}},
	}
	p.Objects = ObjectsOf(deps)
	// The names are the resolver's: the controller's condition and kubectl
	// entrypoint graph write them so.
	want := []string{
		(&kube.Service{Ref: p.Services[0]}).String(),
		(&kube.Job{Ref: p.Jobs[0]}).String(),
		"jobs " + p.Jobs[1].String(),
		"pods " + p.Pods[0].String(),
		"pods " + p.Pods[1].String(),
		"daemonset " + p.DaemonSets[0].String(),
		(&kube.Rollout{Ref: p.Rollouts[0]}).String(),
		(&kube.CustomResource{Ref: deps.CustomResources[0]}).String(),
		(&kube.CEL{Ref: deps.CEL[0]}).String(),
	}
	var got []string
	for _, w := range appendWanted(nil, &p) {
		got = append(got, w.dependency(nil).name)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("names:\n got %q\nwant %q", got, want)
	}
}

// A Graph is read-only once built: Cycles and Closes may run side by side (the
// race detector checks this).
func TestGraphConcurrentReaders(t *testing.T) {
	pods := []Pod{
		{Namespace: "ns", Name: "api-1", Owner: "deployment ns/api", Labels: app("api"), Services: []spec.ObjectRef{svc("ns", "db")}},
		{Namespace: "ns", Name: "db-0", Owner: "statefulset ns/db", Labels: app("db"), Services: []spec.ObjectRef{svc("ns", "api")}},
	}
	services := []Service{{Namespace: "ns", Name: "db", Selector: app("db")}, {Namespace: "ns", Name: "api", Selector: app("api")}}
	g := Build(pods[1:], services)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if _, found := g.Closes(pods[0]); !found {
					t.Error("Closes found no cycle")
					return
				}
				g.Cycles()
			}
		})
	}
	wg.Wait()
}
