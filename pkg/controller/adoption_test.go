package controller

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Unjudged names the gated dependencies the controller would refuse to judge
// (a kind not on the allow-list, a kind not served) and nothing else, so that
// the webhook adopts only pods the controller can release.
func TestUnjudged(t *testing.T) {
	connections := schema.GroupVersion{Group: "mariadb.osh.openstack.org", Version: "v1alpha1"}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(connections.WithKind("Connection"), meta.RESTScopeNamespace)
	const connection = `[{"apiVersion":"mariadb.osh.openstack.org/v1alpha1","kind":"Connection","name":"nova-db"}]`
	const unserved = `[{"apiVersion":"example.com/v1","kind":"Widget","name":"w"}]`
	tests := []struct {
		name    string
		allowed []string
		env     []corev1.EnvVar
		want    string // a part of the only item; "" for none
	}{
		{name: "the contract's kinds", env: []corev1.EnvVar{{Name: spec.EnvServices, Value: "mariadb"}, {Name: spec.EnvJobs, Value: "db-sync"}}},
		{name: "an allowed custom resource", allowed: []string{"connections.mariadb.osh.openstack.org"},
			env: []corev1.EnvVar{{Name: spec.EnvServices, Value: ""}, {Name: spec.EnvCustomResources, Value: connection}}},
		{name: "a custom resource not allowed", env: []corev1.EnvVar{{Name: spec.EnvServices, Value: ""}, {Name: spec.EnvCustomResources, Value: connection}},
			want: "is not one the dependency controller may read"},
		{name: "a kind not served", allowed: []string{"*.example.com"},
			env: []corev1.EnvVar{{Name: spec.EnvServices, Value: ""}, {Name: spec.EnvCustomResources, Value: unserved}}, want: "not served"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewAccessWarner(nil, mapper, inject.Dependencies, false, tt.allowed)
			if err != nil {
				t.Fatal(err)
			}
			pod := &corev1.Pod{}
			pod.Namespace = "openstack"
			pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "kubernetes-entrypoint", Env: tt.env}}
			pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "app"}}
			adopted, outcome, err := inject.Mutate(t.Context(), pod, inject.Config{Image: "ke", Controller: true, NamespaceAdopted: true})
			if err != nil || outcome.Reason != inject.ReasonAdopted {
				t.Fatalf("adopting: %+v, %v", outcome, err)
			}
			adopted.Name = "pod-0"
			got := w.Unjudged(adopted)
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("unjudged %q, want none", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("unjudged %q, want one with %q", got, tt.want)
			}
		})
	}
}
