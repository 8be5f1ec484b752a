// Package webhook is the thin HTTP side of the injector: it decodes admission
// requests, hands the pod to pkg/inject, and turns the result into a JSON patch, a
// denial or an allow, counting each decision.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// Path is where the API server sends pod admission reviews.
const Path = "/mutate-v1-pod"

// reasonNamespaceMismatch: the pod names another namespace than the request.
const reasonNamespaceMismatch = "namespace-mismatch"

// maxLoggedName bounds the pod name in log lines: a valid one is at most 253 bytes.
const maxLoggedName = 253

// PodInjector is the admission handler for pod CREATE.
type PodInjector struct {
	Config  inject.Config
	Decoder admission.Decoder
	Log     logr.Logger
	Metrics *Metrics
}

var _ admission.Handler = (*PodInjector)(nil)

// Handle mutates one pod.
func (p *PodInjector) Handle(ctx context.Context, req admission.Request) admission.Response {
	pod := &corev1.Pod{}
	if err := p.Decoder.Decode(req, pod); err != nil {
		p.Metrics.observe("error", "decode")
		return admission.Errored(http.StatusBadRequest, err)
	}
	// The request's namespace is the pod's for everything: dependencies without a
	// namespace, and whose pull secrets and ServiceAccount a registry lookup reads.
	// The object's own may be empty (a pod from a template) but must not differ: the
	// API server never sends that, so it comes from someone calling the webhook
	// directly to make it read another namespace's secrets.
	if req.Namespace == "" || (pod.Namespace != "" && pod.Namespace != req.Namespace) {
		p.Metrics.observe(inject.ResultDenied, reasonNamespaceMismatch)
		msg := fmt.Sprintf("metadata.namespace: the pod's namespace %.100q is not the namespace of the admission request %.100q", pod.Namespace, req.Namespace)
		p.Log.Info("denied", "reason", reasonNamespaceMismatch, "message", msg, "uid", string(req.UID))
		return admission.Denied(msg)
	}
	pod.Namespace = req.Namespace
	name := pod.Name
	if name == "" {
		name = pod.GenerateName + "<generated>"
	}
	if len(name) > maxLoggedName { // not validated yet: it may be 100 kB
		name = name[:maxLoggedName] + "..."
	}
	log := p.Log.WithValues("pod", pod.Namespace+"/"+name, "uid", string(req.UID))

	mutated, outcome, err := inject.Mutate(ctx, pod, p.Config)
	p.Metrics.observe(outcome.Result, outcome.Reason)
	switch outcome.Result {
	case inject.ResultDenied:
		log.Info("denied", "reason", outcome.Reason, "message", err.Error())
		return admission.Denied(err.Error())
	case inject.ResultSkipped:
		log.Info("skipped", "reason", outcome.Reason, "message", outcome.Message)
		return admission.Allowed(outcome.Message)
	}
	if err != nil {
		log.Error(err, "mutation failed")
		return admission.Errored(http.StatusInternalServerError, err)
	}
	patch, err := podPatch(pod, mutated)
	if err != nil {
		log.Error(err, "mutation failed")
		return admission.Errored(http.StatusInternalServerError, err)
	}
	log.Info("injected", "message", outcome.Message)
	return admission.Patched(outcome.Message, patch...)
}

// Metrics counts the webhook's decisions.
type Metrics struct {
	injections *prometheus.CounterVec
}

// NewMetrics registers the webhook's metrics with reg (controller-runtime's
// metrics.Registry in the server).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{injections: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubernetes_entrypoint_injections_total",
		Help: "Pod admission decisions of the entrypoint webhook, by result (injected, skipped, denied, error) and reason.",
	}, []string{"result", "reason"})}
	if err := reg.Register(m.injections); err != nil {
		// A second webhook in the same process (tests) shares the counter.
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			return nil, err
		}
		m.injections = already.ExistingCollector.(*prometheus.CounterVec)
	}
	return m, nil
}

func (m *Metrics) observe(result, reason string) {
	if m != nil {
		m.injections.WithLabelValues(result, reason).Inc()
	}
}
