package depgraph

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

func TestCloses(t *testing.T) {
	services := []Service{
		{Namespace: "ns", Name: "api", Selector: app("api")},
		{Namespace: "ns", Name: "db", Selector: app("db")},
		{Namespace: "ns", Name: "cache", Selector: app("cache")},
		{Namespace: "ns", Name: "gate", Selector: app("gate")},
	}
	// db waits for api; cache waits for nothing; web and worker wait for each
	// other; gate waits for the Job api-init, which has no pod yet.
	existing := []Pod{
		{Namespace: "ns", Name: "db-0", Owner: "statefulset ns/db", Labels: app("db"), Services: []spec.ObjectRef{svc("ns", "api")}},
		{Namespace: "ns", Name: "cache-0", Owner: "statefulset ns/cache", Labels: app("cache")},
		{Namespace: "ns", Name: "web-1", Owner: "deployment ns/web", Labels: app("web"), Pods: []spec.PodRef{podsLabelled("ns", app("worker"))}},
		{Namespace: "ns", Name: "worker-1", Owner: "deployment ns/worker", Labels: app("worker"), Pods: []spec.PodRef{podsLabelled("ns", app("web"))}},
		{Namespace: "ns", Name: "gate-1", Owner: "deployment ns/gate", Labels: app("gate"), Jobs: []spec.JobRef{jobNamed("ns", "api-init")}},
		{Namespace: "ns", Name: "namer-1", Owner: "deployment ns/namer", Labels: app("namer"),
			Objects: []Object{{CEL: true, APIVersion: "v1", Kind: "Pod", Namespace: "ns", Name: "named"}}},
	}
	cases := []struct {
		name string
		pod  Pod
		want Cycle // nil: no cycle
	}{
		{
			name: "a new group that closes a cycle through the services",
			pod:  Pod{Namespace: "ns", Name: "api-1", Owner: "deployment ns/api", Labels: app("api"), Services: []spec.ObjectRef{svc("ns", "db")}},
			want: Cycle{"deployment ns/api", "service ns/db", "statefulset ns/db", "service ns/api"},
		},
		{
			name: "a new group that waits for what does not wait back",
			pod:  Pod{Namespace: "ns", Name: "api-1", Owner: "deployment ns/api", Labels: app("api"), Services: []spec.ObjectRef{svc("ns", "cache")}},
		},
		{
			name: "a new pod that waits for nothing",
			pod:  Pod{Namespace: "ns", Name: "api-1", Owner: "deployment ns/api", Labels: app("api")},
		},
		{
			name: "a new pod that waits for its own kind, through a selector the graph does not have yet",
			pod:  Pod{Namespace: "ns", Name: "solo", Labels: app("solo"), Pods: []spec.PodRef{podsLabelled("ns", app("solo"))}},
			want: Cycle{"pod ns/solo", "pods ns/[app=solo]"},
		},
		{
			name: "a new pod of a group already in a cycle joins it",
			pod:  Pod{Namespace: "ns", Name: "web-2", Owner: "deployment ns/web", Labels: app("web")},
			want: Cycle{"deployment ns/web", "pods ns/[app=worker]", "deployment ns/worker", "pods ns/[app=web]"},
		},
		{
			name: "a new pod of an existing group adds the dependency that closes the cycle",
			pod:  Pod{Namespace: "ns", Name: "cache-1", Owner: "statefulset ns/cache", Labels: app("cache"), Services: []spec.ObjectRef{svc("ns", "cache")}},
			want: Cycle{"statefulset ns/cache", "service ns/cache"},
		},
		{
			name: "the same pod in another namespace is selected by nothing",
			pod:  Pod{Namespace: "other", Name: "api-1", Owner: "deployment other/api", Labels: app("api"), Services: []spec.ObjectRef{svc("ns", "db")}},
		},
		{
			name: "the first pod of a Job that a group waits for by name, waiting for that group",
			pod: func() Pod {
				p := jobPod("ns", "api-init", "api-init-x1")
				p.Services = []spec.ObjectRef{svc("ns", "gate")}
				return p
			}(),
			want: Cycle{"job ns/api-init", "service ns/gate", "deployment ns/gate", "job ns/api-init"},
		},
		{
			name: "a new pod of an existing group waits for what another pod of its group serves",
			pod:  Pod{Namespace: "ns", Name: "cache-2", Owner: "statefulset ns/cache", Labels: app("other"), Services: []spec.ObjectRef{svc("ns", "cache")}},
			want: Cycle{"statefulset ns/cache", "service ns/cache"},
		},
		{
			name: "a new group whose rollout closes a cycle",
			pod: Pod{Namespace: "ns", Name: "api-1", Owner: "deployment ns/api", Labels: app("api"),
				Rollouts: []spec.WorkloadRef{{Namespace: "ns", Kind: "statefulset", Name: "db"}}},
			want: Cycle{"deployment ns/api", "rollout ns/statefulset/db", "statefulset ns/db", "service ns/api"},
		},
		{
			name: "a new pod that a CEL item names, by the pod's name",
			pod: Pod{Namespace: "ns", Name: "named", Labels: app("named"),
				Objects: []Object{{CEL: true, APIVersion: "apps/v1", Kind: "Deployment", Namespace: "ns", Name: "namer"}}},
			want: Cycle{"pod ns/named", "cel apps/v1 Deployment ns/namer", "deployment ns/namer", "cel v1 Pod ns/named"},
		},
		{
			name: "a Job's pod that waits for what does not wait back",
			pod: func() Pod {
				p := jobPod("ns", "api-init", "api-init-x1")
				p.Services = []spec.ObjectRef{svc("ns", "db")}
				return p
			}(),
		},
	}
	g := Build(existing, services)
	before := g.Cycles()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, found := g.Closes(tc.pod)
			if found != (tc.want != nil) || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Closes = %q, %v; want %q", got, found, tc.want)
			}
			// The same answer as building the graph with the pod in it.
			all := append(append([]Pod(nil), existing...), tc.pod)
			rebuilt := Build(all, services).Cycles()[types.NamespacedName{Namespace: tc.pod.Namespace, Name: tc.pod.Name}]
			if !reflect.DeepEqual(rebuilt, tc.want) {
				t.Fatalf("a rebuilt graph says %q, the table %q", rebuilt, tc.want)
			}
		})
	}
	if after := g.Cycles(); !reflect.DeepEqual(after, before) {
		t.Fatalf("Closes changed the graph: cycles before %v, after %v", before, after)
	}
}

// Closes on a graph without the pod agrees with building the graph with it.
func TestClosesAgainstRebuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	closed := 0
	for round := range 300 {
		pods, services := randomCluster(rng, 2+rng.IntN(12))
		last := pods[len(pods)-1]
		got, found := Build(pods[:len(pods)-1], services).Closes(last)
		want, wantFound := Build(pods, services).Cycles()[types.NamespacedName{Namespace: last.Namespace, Name: last.Name}]
		if found != wantFound || len(got) != len(want) {
			t.Fatalf("round %d: Closes(%+v) = %q, %v; the rebuilt graph has %q, %v\npods: %+v\nservices: %+v",
				round, last, got, found, want, wantFound, pods[:len(pods)-1], services)
		}
		if found {
			closed++
			checkCycle(t, pods, services, types.NamespacedName{Namespace: last.Namespace, Name: last.Name}, got)
		}
	}
	if closed == 0 {
		t.Fatal("no random pod closed a cycle: the test checked nothing")
	}
}
