package kube

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

var (
	endpointSlicesResource = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
	endpointsResource      = schema.GroupVersionResource{Version: "v1", Resource: "endpoints"}
)

// Service is ready when the EndpointSlices of the service (all of them, not the
// first) hold an endpoint whose ready condition is true or unset, or Ref.MinReady
// distinct such endpoints. Where the
// EndpointSlice API cannot be read, it falls back to the Endpoints object, and goes
// back to the slices once they can be read again.
type Service struct {
	Client *Client
	Ref    spec.ObjectRef
}

func (s *Service) String() string { return "service " + s.Ref.String() }

// DefaultSliceRecheckInterval is how often a Service on the Endpoints fallback looks
// whether EndpointSlices became readable. A Forbidden may be passing (an API server
// that just restarted answers 403 until its RBAC cache is filled), but where RBAC
// never grants them (helm-toolkit grants endpoints only) the look costs one request
// a minute.
const DefaultSliceRecheckInterval = time.Minute

// Wait waits until the Service dependency is ready, reporting each change of its status.
func (s *Service) Wait(ctx context.Context, report func(resolve.Status)) error {
	r := reporter{report: report}
	for {
		fallback, err := s.waitSlices(ctx, &r)
		if err != nil || !fallback {
			return err
		}
		s.Client.logOnce("endpoints fallback "+s.Ref.Namespace, "cannot list EndpointSlices; using Endpoints",
			"namespace", s.Ref.Namespace, "hint", "grant list/watch on endpointslices.discovery.k8s.io")
		back, err := s.waitEndpoints(ctx, &r)
		if err != nil || !back {
			return err
		}
		s.Client.opts.Log.Info("EndpointSlices are readable again; using them", "service", s.Ref.String())
	}
}

// waitSlices follows the Service's EndpointSlices until one has a ready endpoint, or
// until they cannot be read (fallback).
func (s *Service) waitSlices(ctx context.Context, r *reporter) (fallback bool, err error) {
	slices := source{
		resource:      endpointSlicesResource,
		namespace:     s.Ref.Namespace,
		labelSelector: "kubernetes.io/service-name=" + s.Ref.Name,
	}
	err = s.Client.follow(ctx, []source{slices}, func(snaps []snapshot) (bool, error) {
		if err := snaps[0].err; err != nil {
			if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
				fallback = true
				return true, nil
			}
			r.set(resolve.Status{Reason: "cannot list EndpointSlices: " + shortError(err)})
			return false, nil
		}
		st := ServiceReadiness(snaps[0].objects, s.Ref.MinReady)
		r.set(st)
		return st.Ready, nil
	})
	return fallback, err
}

// waitEndpoints follows the Service's Endpoints object until it has a ready address,
// and meanwhile looks every SliceRecheckInterval whether EndpointSlices can be read
// again (back), so that a passing Forbidden does not leave it on Endpoints for good.
func (s *Service) waitEndpoints(ctx context.Context, r *reporter) (back bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readable := make(chan struct{})
	go func() {
		slices := s.Client.dynamic.Resource(endpointSlicesResource).Namespace(s.Ref.Namespace)
		opts := metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + s.Ref.Name, Limit: 1}
		for {
			sleep(ctx, s.Client.opts.SliceRecheckInterval)
			if ctx.Err() != nil {
				return
			}
			if _, err := slices.List(ctx, opts); err == nil {
				close(readable)
				cancel()
				return
			}
		}
	}()
	endpoints := source{resource: endpointsResource, namespace: s.Ref.Namespace, fieldSelector: "metadata.name=" + s.Ref.Name}
	err = s.Client.follow(ctx, []source{endpoints}, func(snaps []snapshot) (bool, error) {
		if err := snaps[0].err; err != nil {
			r.set(resolve.Status{Reason: "cannot list EndpointSlices or Endpoints: " + shortError(err)})
			return false, nil
		}
		st := endpointsStatus(snaps[0], s.Ref.MinReady)
		r.set(st)
		return st.Ready, nil
	})
	if err == nil { // ready by its Endpoints
		return false, nil
	}
	select {
	case <-readable:
		return true, nil
	default:
		return false, err
	}
}

// ServiceReadiness is the Service rule over all of its EndpointSlices: ready once
// minReady (at least one) distinct endpoints have a ready condition true or unset.
// An endpoint is told apart by its targetRef (a dual-stack pod in an IPv4 and an
// IPv6 slice is one), else by its addresses. The resolver and the dependency
// controller both decide with it.
func ServiceReadiness(slices []*unstructured.Unstructured, minReady int) resolve.Status {
	all, ready := map[string]bool{}, map[string]bool{}
	for _, slice := range slices {
		for _, ep := range nestedSlice(slice.Object, "endpoints") {
			m, ok := ep.(map[string]any)
			if !ok {
				continue
			}
			key := endpointKey(m)
			all[key] = true
			// Unset ready means ready, as the EndpointSlice API defines it.
			conditions, _ := m["conditions"].(map[string]any)
			if r, found := conditions["ready"]; !found || r == nil || r == true {
				ready[key] = true
			}
		}
	}
	return endpointCount(len(ready), len(all), minReady)
}

// endpointKey identifies an endpoint of a slice: its target, else its addresses.
func endpointKey(ep map[string]any) string {
	if ref, ok := ep["targetRef"].(map[string]any); ok {
		kind, _ := ref["kind"].(string)
		ns, _ := ref["namespace"].(string)
		name, _ := ref["name"].(string)
		if name != "" {
			return "ref:" + kind + "/" + ns + "/" + name
		}
	}
	addrs, _ := ep["addresses"].([]any)
	key := "addr:"
	for _, a := range addrs {
		s, _ := a.(string)
		key += s + ","
	}
	return key
}

// endpointCount words the Service rule: ready with minReady (at least one) of
// total endpoints ready.
func endpointCount(ready, total, minReady int) resolve.Status {
	minReady = max(minReady, 1)
	switch {
	case ready >= minReady:
		return resolve.Status{Ready: true}
	case minReady > 1:
		return resolve.Status{Reason: fmt.Sprintf("%d of %d required endpoints ready", ready, minReady)}
	case total == 0:
		return resolve.Status{Reason: "no endpoints"}
	default:
		return resolve.Status{Reason: fmt.Sprintf("0 of %d endpoints ready", total)}
	}
}

// endpointsStatus is the Service rule over its Endpoints object, where slices
// cannot be read: distinct ready addresses.
func endpointsStatus(snap snapshot, minReady int) resolve.Status {
	if len(snap.objects) == 0 {
		return resolve.Status{Reason: "no Endpoints object"}
	}
	ready, all := map[string]bool{}, map[string]bool{}
	for _, subset := range nestedSlice(snap.objects[0].Object, "subsets") {
		m, _ := subset.(map[string]any)
		a, _ := m["addresses"].([]any)
		n, _ := m["notReadyAddresses"].([]any)
		for _, addr := range a {
			am, _ := addr.(map[string]any)
			ip, _ := am["ip"].(string)
			ready[ip], all[ip] = true, true
		}
		for _, addr := range n {
			am, _ := addr.(map[string]any)
			ip, _ := am["ip"].(string)
			all[ip] = true
		}
	}
	return endpointCount(len(ready), len(all), minReady)
}

// reporter passes a status on only when it changed.
type reporter struct {
	report func(resolve.Status)
	last   resolve.Status
	sent   bool
}

func (r *reporter) set(s resolve.Status) {
	if r.sent && r.last == s {
		return
	}
	r.last, r.sent = s, true
	if r.report != nil {
		r.report(s)
	}
}

// shortError is an API error's message without the client's request details.
func shortError(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok {
		return string(s.Status().Reason) + ": " + s.Status().Message
	}
	return err.Error()
}
