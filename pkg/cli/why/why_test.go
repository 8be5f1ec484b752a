package why

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
)

func TestSources(t *testing.T) {
	plain := func(c ...corev1.Container) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{InitContainers: c,
			Containers: []corev1.Container{{Name: "app", Image: "app", Command: []string{"/app"}}}}}
	}
	injected, _, err := inject.Mutate(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Annotations: map[string]string{"entrypoint.io/dependency-service": "db"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app", Command: []string{"/app"}}}},
	}, inject.Config{Image: "ke", Controller: true})
	if err != nil {
		t.Fatal(err)
	}
	adopted, outcome, err := inject.Mutate(context.Background(), plain(corev1.Container{Name: "init", Env: []corev1.EnvVar{
		{Name: "DEPENDENCY_SERVICE", Value: "db"}, {Name: "DEPENDENCY_DAEMONSET", Value: "agent"}, {Name: "NODE_NAME", Value: "n"},
	}}), inject.Config{Image: "ke", Controller: true, NamespaceAdopted: true})
	if err != nil || outcome.Reason != inject.ReasonAdopted {
		t.Fatalf("adopting: %+v, %v", outcome, err)
	}
	gateOnly, _, err := inject.Mutate(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Annotations: map[string]string{
			"entrypoint.io/dependency-service": "db", inject.AnnotationGate: "true",
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app", Command: []string{"/app"}}}},
	}, inject.Config{Image: "ke", Controller: true})
	if err != nil || !inject.GateOnly(gateOnly) {
		t.Fatalf("gating: %v, status %s", err, gateOnly.Annotations[inject.AnnotationStatus])
	}
	broken := injected.DeepCopy()
	broken.Annotations[inject.AnnotationStatus] = "{"

	tests := []struct {
		name     string
		pod      *corev1.Pod
		services []string // of every source, in order
		where    []string
		err      string
	}{
		{name: "injected", pod: injected, services: []string{"ns/db"}, where: []string{"injected by the entrypoint webhook"}},
		{name: "gate-only", pod: gateOnly, services: []string{"ns/db"},
			where: []string{"injected by the entrypoint webhook, gate only (no resolver: the controller judges every dependency)"}},
		{name: "adopted", pod: adopted, services: []string{"ns/db"},
			where: []string{`adopted by the entrypoint webhook (its gate holds what the controller can judge, init container "init" the rest)`}},
		{name: "openstack-helm init container", pod: plain(corev1.Container{Name: "init", Env: []corev1.EnvVar{
			{Name: "NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "DEPENDENCY_SERVICE", Value: "openstack:mariadb,memcached"},
			{Name: "DEPENDENCY_JOBS", Value: ""},
		}}), services: []string{"openstack/mariadb", "ns/memcached"}, where: []string{`from the DEPENDENCY_* environment of container "init"`}},
		{name: "only empty variables", pod: plain(corev1.Container{Name: "init", Env: []corev1.EnvVar{{Name: "DEPENDENCY_SERVICE"}}})},
		{name: "nothing", pod: plain()},
		{name: "bad status annotation", pod: broken, err: "not the webhook's"},
		{name: "bad environment", pod: plain(corev1.Container{Name: "init", Env: []corev1.EnvVar{{Name: "DEPENDENCY_SERVICE", Value: "a:b:c"}}}), err: `container "init"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sources, err := Sources(tt.pod)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var services, where []string
			for _, s := range sources {
				where = append(where, s.Where)
				for _, ref := range s.Deps.Services {
					services = append(services, ref.String())
				}
			}
			if !slices.Equal(services, tt.services) || !slices.Equal(where, tt.where) {
				t.Errorf("services %q from %q, want %q from %q", services, where, tt.services, tt.where)
			}
		})
	}
}

func TestContainerState(t *testing.T) {
	pod := &corev1.Pod{Status: corev1.PodStatus{
		InitContainerStatuses: []corev1.ContainerStatus{{Name: "sidecar", Ready: true}},
		ContainerStatuses:     []corev1.ContainerStatus{{Name: "db", Ready: false}},
	}}
	for _, tt := range []struct{ name, state, reason string }{
		{"sidecar", StateReady, ""}, {"db", StateWaiting, "not ready"}, {"other", StateWaiting, "no status yet"},
	} {
		if d := containerState(pod, tt.name); d.State != tt.state || d.Reason != tt.reason {
			t.Errorf("container %s: %+v, want %s %q", tt.name, d, tt.state, tt.reason)
		}
	}
}

// For a gated pod, each dependency says whether the gate holds the pod for it or
// what in the pod checks it: the gate takes an adopted pod's Service and its
// same-node DaemonSet, its init container keeps the socket.
func TestCheckedBy(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Env: []corev1.EnvVar{
			{Name: "DEPENDENCY_SERVICE", Value: "db"}, {Name: "DEPENDENCY_DAEMONSET", Value: "agent"},
			{Name: "DEPENDENCY_SOCKET", Value: "/run/agent.sock"}}}},
		Containers: []corev1.Container{{Name: "app", Image: "app", Command: []string{"/app"}}},
		Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{
				{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}}}}}}},
	}}
	adopted, outcome, err := inject.Mutate(context.Background(), pod, inject.Config{Image: "ke", Controller: true, NamespaceAdopted: true})
	if err != nil || outcome.Reason != inject.ReasonAdopted {
		t.Fatalf("adopting: %+v, %v", outcome, err)
	}
	if got := nodeOf(adopted); got != "n1" {
		t.Errorf("nodeOf = %q, want n1, the node the pod's affinity binds it to", got)
	}
	sources, err := Sources(adopted)
	if err != nil || len(sources) != 1 {
		t.Fatalf("sources %+v, %v", sources, err)
	}
	s := sources[0]
	if s.Gate == nil || len(s.Gate.Services) != 1 || len(s.Gate.DaemonSets) != 1 || len(s.Gate.Sockets) != 0 {
		t.Fatalf("the gate holds %+v, want the Service and the DaemonSet", s.Gate)
	}
	deps := []Dependency{{}, {}, {}}
	for i, it := range kube.Items(s.Deps, kube.LookupOptions{NodeName: "n1"}) {
		deps[i].Name = it.Text // the resolver's words, whatever they are
	}
	markCheckedBy(deps, adopted, s)
	want := []string{CheckedByGate, CheckedByGate, `init container "init"`}
	for i, d := range deps {
		if d.CheckedBy != want[i] {
			t.Errorf("%s: checked by %q, want %q", d.Name, d.CheckedBy, want[i])
		}
	}
}

// A gate-only pod has no resolver: the gate holds it for every dependency, the
// same-node ones too.
func TestCheckedByGateOnly(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Annotations: map[string]string{
			inject.AnnotationGate:              "true",
			"entrypoint.io/dependency-service": "db",
			"entrypoint.io/dependency-job":     "migrate",
			"entrypoint.io/dependency-pod":     `[{"labels":{"app":"agent"},"requireSameNode":true}]`,
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app", Command: []string{"/app"}}}},
	}
	gated, _, err := inject.Mutate(context.Background(), pod, inject.Config{Image: "ke", Controller: true})
	if err != nil || !inject.GateOnly(gated) {
		t.Fatalf("gating: %v, status %s", err, gated.Annotations[inject.AnnotationStatus])
	}
	gated.Spec.NodeName = "n1" // released and scheduled: the same-node item is judged on n1
	sources, err := Sources(gated)
	if err != nil || len(sources) != 1 {
		t.Fatalf("sources %+v, %v", sources, err)
	}
	items := kube.Items(sources[0].Deps, kube.LookupOptions{NodeName: "n1"})
	if len(items) != 3 {
		t.Fatalf("items %+v, want the Service, the Job and the pod", items)
	}
	deps := make([]Dependency, len(items))
	for i, it := range items {
		deps[i].Name = it.Text
	}
	markCheckedBy(deps, gated, sources[0])
	for _, d := range deps {
		if d.CheckedBy != CheckedByGate {
			t.Errorf("%s: checked by %q, want %q", d.Name, d.CheckedBy, CheckedByGate)
		}
	}
}
