package kube_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

func createService(t *testing.T, ns, name string, selector map[string]string) {
	t.Helper()
	_, err := env.Client.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{{Port: 3306}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

type endpoint struct {
	ip          string
	ready       *bool
	terminating *bool
}

func createSlice(t *testing.T, ns, service, name string, eps ...endpoint) {
	t.Helper()
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](3306)}},
	}
	for _, ep := range eps {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{ep.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ep.ready, Terminating: ep.terminating},
		})
	}
	if _, err := env.Client.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestServiceWaitsForAReadyEndpointInAnySlice(t *testing.T) {
	ns := env.Namespace(t)
	createService(t, ns, "mariadb", map[string]string{"app": "mariadb"})
	w := start(t, &kube.Service{Client: newClient(t, kube.Options{}), Ref: spec.ObjectRef{Namespace: ns, Name: "mariadb"}})
	w.blocked(t, "no endpoints")

	// Not ready, and ready but terminating: neither counts.
	createSlice(t, ns, "mariadb", "mariadb-a",
		endpoint{ip: "10.0.0.1", ready: ptr.To(false)},
		endpoint{ip: "10.0.0.2", ready: ptr.To(false), terminating: ptr.To(true)})
	w.blocked(t, "0 of 2 endpoints ready")
	// A second slice, again nothing ready.
	createSlice(t, ns, "mariadb", "mariadb-b", endpoint{ip: "10.0.0.3", ready: ptr.To(false)})
	w.blocked(t, "0 of 3 endpoints ready")
	// A slice of another service does not count.
	createSlice(t, ns, "other", "other-a", endpoint{ip: "10.0.0.9", ready: ptr.To(true)})
	w.stillBlocked(t)
	// The third slice, not the first, has the ready endpoint.
	createSlice(t, ns, "mariadb", "mariadb-c", endpoint{ip: "10.0.0.4", ready: ptr.To(true)})
	w.ready(t)
}

func TestServiceUnsetReadyCountsAsReady(t *testing.T) {
	ns := env.Namespace(t)
	createService(t, ns, "db", nil)
	createSlice(t, ns, "db", "db-a", endpoint{ip: "10.0.0.1"})
	start(t, &kube.Service{Client: newClient(t, kube.Options{}), Ref: spec.ObjectRef{Namespace: ns, Name: "db"}}).ready(t)
}

func TestServiceSelectorlessWithManualSlice(t *testing.T) {
	ns := env.Namespace(t)
	createService(t, ns, "external-db", nil)
	w := start(t, &kube.Service{Client: newClient(t, kube.Options{}), Ref: spec.ObjectRef{Namespace: ns, Name: "external-db"}})
	w.blocked(t, "no endpoints")
	createSlice(t, ns, "external-db", "external-db-manual", endpoint{ip: "192.0.2.10", ready: ptr.To(true)})
	w.ready(t)
}

func TestServiceInAnotherNamespace(t *testing.T) {
	own, other := env.Namespace(t), env.Namespace(t)
	createService(t, other, "keystone-api", nil)
	c := newClient(t, kube.Options{Namespace: own})
	w := start(t, &kube.Service{Client: c, Ref: spec.ObjectRef{Namespace: other, Name: "keystone-api"}})
	w.blocked(t, "no endpoints")
	// The same name in the own namespace must not satisfy it.
	createService(t, own, "keystone-api", nil)
	createSlice(t, own, "keystone-api", "keystone-api-own", endpoint{ip: "10.0.0.1", ready: ptr.To(true)})
	w.stillBlocked(t)
	createSlice(t, other, "keystone-api", "keystone-api-x", endpoint{ip: "10.0.0.2", ready: ptr.To(true)})
	w.ready(t)
}

// A ServiceAccount that may get/list (not watch) endpointslices, as helm-toolkit
// charts grant: the service still resolves, by polling, and the fallback is logged once.
func TestServicePollsWhenWatchIsForbidden(t *testing.T) {
	ns := env.Namespace(t)
	createService(t, ns, "rabbitmq", nil)
	cfg := env.ServiceAccountConfig(t, ns, "get-list-only", []rbacv1.PolicyRule{
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list"}},
	})
	var logs logSink
	c, err := kube.NewClient(cfg, kube.Options{Log: logs.logger(), PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := start(t, &kube.Service{Client: c, Ref: spec.ObjectRef{Namespace: ns, Name: "rabbitmq"}})
	w.blocked(t, "no endpoints")
	createSlice(t, ns, "rabbitmq", "rabbitmq-a", endpoint{ip: "10.0.0.1", ready: ptr.To(true)})
	w.ready(t)
	if n := logs.count("watch not allowed; polling instead"); n != 1 {
		t.Errorf("the polling fallback was logged %d times, want once; logs: %v", n, logs.snapshot())
	}
}

// Without any access to EndpointSlices the Endpoints object is used.
func TestServiceFallsBackToEndpoints(t *testing.T) {
	ns := env.Namespace(t)
	createService(t, ns, "memcached", nil)
	cfg := env.ServiceAccountConfig(t, ns, "endpoints-only", []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"endpoints"}, Verbs: []string{"get", "list", "watch"}},
	})
	var logs logSink
	c, err := kube.NewClient(cfg, kube.Options{Log: logs.logger(), PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	w := start(t, &kube.Service{Client: c, Ref: spec.ObjectRef{Namespace: ns, Name: "memcached"}})
	w.blocked(t, "no Endpoints object")
	ctx := context.Background()
	ep := &corev1.Endpoints{ //nolint:staticcheck // the fallback for clusters where slices cannot be read
		ObjectMeta: metav1.ObjectMeta{Name: "memcached"},
		Subsets: []corev1.EndpointSubset{{ //nolint:staticcheck // the fallback for clusters where slices cannot be read
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}},
			Ports:             []corev1.EndpointPort{{Port: 11211}},
		}},
	}
	created, err := env.Client.CoreV1().Endpoints(ns).Create(ctx, ep, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.blocked(t, "0 of 1 endpoints ready")
	created.Subsets[0].Addresses = []corev1.EndpointAddress{{IP: "10.0.0.2"}}
	if _, err := env.Client.CoreV1().Endpoints(ns).Update(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.ready(t)
	if logs.count("cannot list EndpointSlices; using Endpoints") != 1 {
		t.Errorf("fallback to Endpoints not logged once: %v", logs.snapshot())
	}
}

// A Forbidden on EndpointSlices may pass (a restarted API server answers 403 until
// its RBAC cache is filled): a Service on the Endpoints fallback goes back to its
// slices once they can be read, and resolves by a slice alone, with no Endpoints
// object at all.
func TestServiceLeavesTheEndpointsFallbackWhenSlicesBecomeReadable(t *testing.T) {
	ns := env.Namespace(t)
	createService(t, ns, "galera", nil)
	cfg := env.ServiceAccountConfig(t, ns, "slices-later", []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"endpoints"}, Verbs: []string{"get", "list", "watch"}},
	})
	var logs logSink
	c, err := kube.NewClient(cfg, kube.Options{Log: logs.logger(), PollInterval: time.Hour, SliceRecheckInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := start(t, &kube.Service{Client: c, Ref: spec.ObjectRef{Namespace: ns, Name: "galera"}})
	w.blocked(t, "no Endpoints object")

	ctx := context.Background()
	role, err := env.Client.RbacV1().Roles(ns).Get(ctx, "slices-later", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role.Rules = append(role.Rules, rbacv1.PolicyRule{
		APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"},
	})
	if _, err := env.Client.RbacV1().Roles(ns).Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.blocked(t, "no endpoints")
	createSlice(t, ns, "galera", "galera-a", endpoint{ip: "10.0.0.3", ready: ptr.To(true)})
	w.ready(t)
	if n := logs.count("EndpointSlices are readable again; using them"); n != 1 {
		t.Errorf("the return to EndpointSlices was logged %d times, want once; logs: %v", n, logs.snapshot())
	}
}

// "name#3" waits for three distinct ready endpoints across the Service's slices.
func TestServiceMinimumReadyEndpoints(t *testing.T) {
	ns := env.Namespace(t)
	createService(t, ns, "db", map[string]string{"app": "db"})
	w := start(t, &kube.Service{Client: newClient(t, kube.Options{}), Ref: spec.ObjectRef{Namespace: ns, Name: "db", MinReady: 3}})
	w.blocked(t, "0 of 3 required endpoints ready")
	createSlice(t, ns, "db", "db-a", endpoint{ip: "10.0.0.1", ready: ptr.To(true)}, endpoint{ip: "10.0.0.2", ready: ptr.To(false)})
	w.blocked(t, "1 of 3 required endpoints ready")
	createSlice(t, ns, "db", "db-b", endpoint{ip: "10.0.0.3", ready: ptr.To(true)})
	w.blocked(t, "2 of 3 required endpoints ready")
	w.stillBlocked(t)
	createSlice(t, ns, "db", "db-c", endpoint{ip: "10.0.0.4"}) // ready unset counts
	w.ready(t)
}
