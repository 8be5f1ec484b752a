package graph

import (
	"context"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

func deployment(name string, labels, annotations map[string]string, env ...corev1.EnvVar) appsv1.Deployment {
	return appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: appsv1.DeploymentSpec{
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app", Env: env}}}}}}
}

func svc(name string, selector map[string]string) corev1.Service {
	return corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: corev1.ServiceSpec{Selector: selector}}
}

func app(v string) map[string]string { return map[string]string{"app": v} }

func ptrTrue() *bool { t := true; return &t }

func TestBuild(t *testing.T) {
	tests := []struct {
		name string
		o    Objects
		crs  CustomResourceLookup
		// edges are "from -> to"; unsatisfiable and inCycle list node IDs.
		edges         []string
		unsatisfiable []string
		inCycle       []string
		problem       string
	}{
		{
			name: "service served by a statefulset",
			o: Objects{
				Deployments: []appsv1.Deployment{deployment("web", app("web"), map[string]string{"entrypoint.io/dependency-service": "db"})},
				StatefulSets: []appsv1.StatefulSet{{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"},
					Spec: appsv1.StatefulSetSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: app("db")}}}}},
				Services: []corev1.Service{svc("db", app("db"))},
			},
			edges: []string{"deployment ns/web -> service ns/db", "service ns/db -> statefulset ns/db"},
		},
		{
			name: "cycle through services",
			o: Objects{
				Deployments: []appsv1.Deployment{
					deployment("a", app("a"), map[string]string{"entrypoint.io/dependency-service": "b"}),
					deployment("b", app("b"), map[string]string{"entrypoint.io/dependency-service": "a"}),
				},
				Services: []corev1.Service{svc("a", app("a")), svc("b", app("b"))},
			},
			edges:   []string{"deployment ns/a -> service ns/b", "deployment ns/b -> service ns/a", "service ns/a -> deployment ns/a", "service ns/b -> deployment ns/b"},
			inCycle: []string{"deployment ns/a", "deployment ns/b", "service ns/a", "service ns/b"},
		},
		{
			name: "missing service, selector matching nothing, missing job, missing daemonset",
			o: Objects{
				Deployments: []appsv1.Deployment{deployment("web", app("web"), map[string]string{
					"entrypoint.io/dependency-service":   "gone,cache",
					"entrypoint.io/dependency-job":       "migrate",
					"entrypoint.io/dependency-daemonset": "agent",
				})},
				Services: []corev1.Service{svc("cache", app("cache"))},
			},
			edges:         []string{"deployment ns/web -> daemonset ns/agent", "deployment ns/web -> job ns/migrate", "deployment ns/web -> service ns/cache", "deployment ns/web -> service ns/gone"},
			unsatisfiable: []string{"daemonset ns/agent", "job ns/migrate", "service ns/cache", "service ns/gone"},
		},
		{
			name: "job by name from a CronJob; jobs by labels; pods by labels",
			o: Objects{
				Deployments: []appsv1.Deployment{
					deployment("web", app("web"), map[string]string{"entrypoint.io/dependency-job": "nightly-29000000"}),
					deployment("api", app("api"), map[string]string{
						"entrypoint.io/dependency-job-json": `[{"labels":{"task":"init"}}]`,
						"entrypoint.io/dependency-pod":      `[{"labels":{"app":"web"}}]`,
					}),
				},
				CronJobs: []batchv1.CronJob{{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "ns"}}},
				Jobs:     []batchv1.Job{{ObjectMeta: metav1.ObjectMeta{Name: "init-1", Namespace: "ns", Labels: map[string]string{"task": "init"}}}},
			},
			edges: []string{"deployment ns/api -> jobs ns/[task=init]", "deployment ns/api -> pods ns/[app=web]",
				"deployment ns/web -> job ns/nightly-29000000", "job ns/nightly-29000000 -> cronjob ns/nightly",
				"jobs ns/[task=init] -> job ns/init-1", "pods ns/[app=web] -> deployment ns/web"},
		},
		{
			name: "DEPENDENCY_* environment of a template, custom resource not found",
			o: Objects{
				Deployments: []appsv1.Deployment{deployment("keystone", app("keystone"), nil,
					corev1.EnvVar{Name: "DEPENDENCY_CUSTOM_RESOURCE", Value: `[{"apiVersion":"example.com/v1","kind":"Database","name":"db"}]`},
					corev1.EnvVar{Name: "DEPENDENCY_SERVICE", Value: ""})},
			},
			crs:           func(spec.CustomResourceRef) (bool, string) { return false, "" },
			edges:         []string{"deployment ns/keystone -> database ns/db (example.com/v1)"},
			unsatisfiable: []string{"database ns/db (example.com/v1)"},
		},
		{
			name: "cycle through a rollout",
			o: Objects{
				Deployments: []appsv1.Deployment{deployment("api", app("api"), map[string]string{"entrypoint.io/dependency-rollout": "statefulset/db"})},
				StatefulSets: []appsv1.StatefulSet{{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"},
					Spec: appsv1.StatefulSetSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: app("db"),
						Annotations: map[string]string{"entrypoint.io/dependency-service": "api#2"}},
						Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db"}}}}}}},
				Services: []corev1.Service{svc("api", app("api"))},
			},
			edges: []string{"deployment ns/api -> rollout ns/statefulset/db", "rollout ns/statefulset/db -> statefulset ns/db",
				"service ns/api -> deployment ns/api", "statefulset ns/db -> service ns/api"},
			inCycle: []string{"deployment ns/api", "rollout ns/statefulset/db", "service ns/api", "statefulset ns/db"},
		},
		{
			name: "cycle through CEL and custom-resource items naming a workload and a pod; a CEL item naming nothing there",
			o: Objects{
				Deployments: []appsv1.Deployment{
					deployment("web", app("web"), map[string]string{"entrypoint.io/dependency-cel": `[` +
						`{"apiVersion":"apps/v1","kind":"Deployment","name":"worker","expression":"object.status.readyReplicas > 0"},` +
						`{"apiVersion":"v1","kind":"ConfigMap","name":"settings","expression":"has(object.data)"}]`}),
					deployment("worker", app("worker"), map[string]string{"entrypoint.io/dependency-custom-resource": `[{"apiVersion":"v1","kind":"Pod","name":"web-5d8f-x1","fields":[{"key":"status.phase","value":"Running"}]}]`}),
				},
				Pods: []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f-x1", Namespace: "ns",
					Labels:          map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: "5d8f"},
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d8f", Controller: ptrTrue()}}}}},
			},
			crs: func(spec.CustomResourceRef) (bool, string) { return false, "" },
			edges: []string{"cel apps/v1 Deployment ns/worker -> deployment ns/worker", "deployment ns/web -> cel apps/v1 Deployment ns/worker",
				"deployment ns/web -> cel v1 ConfigMap ns/settings", "deployment ns/worker -> pod ns/web-5d8f-x1 (v1)",
				"pod ns/web-5d8f-x1 (v1) -> deployment ns/web"},
			unsatisfiable: []string{"cel v1 ConfigMap ns/settings"},
			inCycle:       []string{"cel apps/v1 Deployment ns/worker", "deployment ns/web", "deployment ns/worker", "pod ns/web-5d8f-x1 (v1)"},
		},
		{
			name:    "annotations the webhook denies",
			o:       Objects{Deployments: []appsv1.Deployment{deployment("web", app("web"), map[string]string{"entrypoint.io/dependency-service": "Bad_Name"})}},
			problem: "the webhook would deny its pods",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := Build(Workloads(context.Background(), tt.o), tt.o, tt.crs)
			var edges, unsat, cycle []string
			for _, e := range g.Edges {
				edges = append(edges, e.From+" -> "+e.To)
			}
			for _, n := range g.Nodes {
				if n.Unsatisfiable != "" {
					unsat = append(unsat, n.ID)
				}
				if n.InCycle {
					cycle = append(cycle, n.ID)
				}
				if tt.problem != "" && n.Kind == KindWorkload && !strings.Contains(n.Problem, tt.problem) {
					t.Errorf("node %s: problem %q, want %q", n.ID, n.Problem, tt.problem)
				}
			}
			if !slices.Equal(edges, tt.edges) {
				t.Errorf("edges:\n got %q\nwant %q", edges, tt.edges)
			}
			if !slices.Equal(unsat, tt.unsatisfiable) {
				t.Errorf("unsatisfiable %q, want %q", unsat, tt.unsatisfiable)
			}
			if !slices.Equal(cycle, tt.inCycle) {
				t.Errorf("in cycle %q, want %q", cycle, tt.inCycle)
			}
			if (len(g.Cycles) > 0) != (len(tt.inCycle) > 0) {
				t.Errorf("cycles %v", g.Cycles)
			}
		})
	}
}

// The new kinds read in the tree as in pkg/depgraph's cycle messages.
func TestTreeOfRolloutAndCEL(t *testing.T) {
	o := Objects{
		Deployments: []appsv1.Deployment{
			deployment("api", app("api"), map[string]string{"entrypoint.io/dependency-rollout": "deployment/db"}),
			deployment("db", app("db"), map[string]string{"entrypoint.io/dependency-cel": `[{"apiVersion":"apps/v1","kind":"Deployment","name":"api","expression":"true"}]`}),
		},
	}
	g := Build(Workloads(context.Background(), o), o, nil)
	var b strings.Builder
	if err := WriteTree(&b, g); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  └─ waits for rollout ns/deployment/db  [in a cycle]\n       rolled out by deployment ns/db  [in a cycle]\n",
		"  └─ waits for cel apps/v1 Deployment ns/api  [in a cycle]\n       satisfied by deployment ns/api  [in a cycle]\n",
		"deployment ns/api waits for rollout ns/deployment/db, rolled out by deployment ns/db, " +
			"which waits for cel apps/v1 Deployment ns/api, satisfied by deployment ns/api\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("tree without %q:\n%s", want, b.String())
		}
	}
	kinds := map[string]string{}
	for _, n := range g.Nodes {
		kinds[n.ID] = n.Kind
	}
	if kinds["cel apps/v1 Deployment ns/api"] != KindCEL || kinds["rollout ns/deployment/db"] != KindRollout {
		t.Errorf("node kinds %v", kinds)
	}
}
