package controller

import (
	corev1 "k8s.io/api/core/v1"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
)

func TestAllowList(t *testing.T) {
	connections := schema.GroupVersionResource{Group: "mariadb.osh.openstack.org", Version: "v1alpha1", Resource: "connections"}
	databases := schema.GroupVersionResource{Group: "mariadb.osh.openstack.org", Version: "v1alpha1", Resource: "databases"}
	widgets := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	nodes := schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	namespaces := schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	tests := []struct {
		name    string
		extra   []string
		secrets bool
		allowed []schema.GroupVersionResource
		refused []schema.GroupVersionResource
		wantErr string
	}{
		{name: "the contract's kinds only", allowed: []schema.GroupVersionResource{kube.ConfigMapsResource, jobsResource, kube.CRDsResource},
			refused: []schema.GroupVersionResource{nodes, namespaces, kube.SecretsResource, connections}},
		{name: "secrets when opted in", secrets: true, allowed: []schema.GroupVersionResource{kube.SecretsResource}},
		{name: "one resource", extra: []string{"connections.mariadb.osh.openstack.org"},
			allowed: []schema.GroupVersionResource{connections}, refused: []schema.GroupVersionResource{databases, widgets}},
		{name: "a whole group", extra: []string{" *.mariadb.osh.openstack.org ", ""},
			allowed: []schema.GroupVersionResource{connections, databases}, refused: []schema.GroupVersionResource{widgets, nodes}},
		{name: "malformed", extra: []string{"nodes", "*.", "a b.c"}, wantErr: `"nodes", "*.", "a b.c": want plural.group`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := newAllowList(tt.extra, tt.secrets)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("newAllowList(%q) = %v, want an error with %q", tt.extra, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, gvr := range tt.allowed {
				if !a.allows(gvr) {
					t.Errorf("%s refused", gvr)
				}
			}
			for _, gvr := range tt.refused {
				if a.allows(gvr) {
					t.Errorf("%s allowed", gvr)
				}
			}
		})
	}
}

// Two condition writes to one pod are at least conditionDamping apart; another
// pod, or the same name with a new uid, is not held back.
func TestDamping(t *testing.T) {
	now := time.Unix(100, 0)
	r := &Reconciler{opts: Options{Now: func() time.Time { return now }}, written: map[types.NamespacedName]writtenCondition{}}
	pod := types.NamespacedName{Namespace: "ns", Name: "p"}
	if w := r.damped(pod, "u1"); w != 0 {
		t.Fatalf("first write held back %s", w)
	}
	r.remember(pod, "u1", "1", corev1.PodCondition{Type: ConditionType, Reason: ReasonWaiting})
	now = now.Add(300 * time.Millisecond)
	if w := r.damped(pod, "u1"); w != 700*time.Millisecond {
		t.Fatalf("second write within the interval: wait %s, want 700ms", w)
	}
	if w := r.damped(pod, "u2"); w != 0 {
		t.Fatalf("a new pod of the same name held back %s", w)
	}
	if w := r.damped(types.NamespacedName{Namespace: "ns", Name: "q"}, "u3"); w != 0 {
		t.Fatalf("another pod held back %s", w)
	}
	now = now.Add(700 * time.Millisecond)
	if w := r.damped(pod, "u1"); w != 0 {
		t.Fatalf("a write after the interval held back %s", w)
	}
}
