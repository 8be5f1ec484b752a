package kube

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

var (
	endpointSlicesResource = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
	endpointsResource      = schema.GroupVersionResource{Version: "v1", Resource: "endpoints"}
)

// Service is ready when any EndpointSlice of the service (all of them, not the
// first) holds an endpoint whose ready condition is true or unset. Where the
// EndpointSlice API cannot be read, it falls back to the Endpoints object.
type Service struct {
	Client *Client
	Ref    spec.ObjectRef
}

func (s *Service) String() string { return "service " + s.Ref.String() }

func (s *Service) Wait(ctx context.Context, report func(resolve.Status)) error {
	r := reporter{report: report}
	slices := source{
		resource:      endpointSlicesResource,
		namespace:     s.Ref.Namespace,
		labelSelector: "kubernetes.io/service-name=" + s.Ref.Name,
	}
	fallback := false
	err := s.Client.follow(ctx, []source{slices}, func(snaps []snapshot) (bool, error) {
		if err := snaps[0].err; err != nil {
			if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
				fallback = true
				return true, nil
			}
			r.set(resolve.Status{Reason: "cannot list EndpointSlices: " + shortError(err)})
			return false, nil
		}
		st := sliceStatus(snaps[0])
		r.set(st)
		return st.Ready, nil
	})
	if err != nil || !fallback {
		return err
	}
	s.Client.logOnce("endpoints fallback "+s.Ref.Namespace, "cannot list EndpointSlices; using Endpoints",
		"namespace", s.Ref.Namespace, "hint", "grant list/watch on endpointslices.discovery.k8s.io")
	endpoints := source{resource: endpointsResource, namespace: s.Ref.Namespace, fieldSelector: "metadata.name=" + s.Ref.Name}
	return s.Client.follow(ctx, []source{endpoints}, func(snaps []snapshot) (bool, error) {
		if err := snaps[0].err; err != nil {
			r.set(resolve.Status{Reason: "cannot list EndpointSlices or Endpoints: " + shortError(err)})
			return false, nil
		}
		st := endpointsStatus(snaps[0])
		r.set(st)
		return st.Ready, nil
	})
}

func sliceStatus(snap snapshot) resolve.Status {
	total, ready := 0, 0
	for _, slice := range snap.objects {
		for _, ep := range nestedSlice(slice.Object, "endpoints") {
			m, ok := ep.(map[string]any)
			if !ok {
				continue
			}
			total++
			// Unset ready means ready, as the EndpointSlice API defines it.
			conditions, _ := m["conditions"].(map[string]any)
			if r, found := conditions["ready"]; !found || r == nil || r == true {
				ready++
			}
		}
	}
	if ready > 0 {
		return resolve.Status{Ready: true}
	}
	if total == 0 {
		return resolve.Status{Reason: "no endpoints"}
	}
	return resolve.Status{Reason: fmt.Sprintf("0 of %d endpoints ready", total)}
}

func endpointsStatus(snap snapshot) resolve.Status {
	if len(snap.objects) == 0 {
		return resolve.Status{Reason: "no Endpoints object"}
	}
	ready, notReady := 0, 0
	for _, subset := range nestedSlice(snap.objects[0].Object, "subsets") {
		m, _ := subset.(map[string]any)
		a, _ := m["addresses"].([]any)
		n, _ := m["notReadyAddresses"].([]any)
		ready += len(a)
		notReady += len(n)
	}
	if ready > 0 {
		return resolve.Status{Ready: true}
	}
	if notReady == 0 {
		return resolve.Status{Reason: "no endpoints"}
	}
	return resolve.Status{Reason: fmt.Sprintf("0 of %d endpoints ready", notReady)}
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
