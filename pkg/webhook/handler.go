// Package webhook is the thin HTTP side of the injector: it decodes admission
// requests, hands the pod to pkg/inject, and turns the result into a JSON patch, a
// denial or an allow, counting each decision.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// Path is where the API server sends pod admission reviews.
const Path = "/mutate-v1-pod"

// reasonNamespaceMismatch: the pod names another namespace than the request.
const reasonNamespaceMismatch = "namespace-mismatch"

// reasonAdoptNotJudged: the dependency controller would not judge some of an
// adopted pod's gated dependencies (PodInjector.Unjudged), so it is not adopted.
const reasonAdoptNotJudged = "adopt-not-judged"

// maxLoggedName bounds the pod name in log lines: a valid one is at most 253 bytes.
const maxLoggedName = 253

// PodInjector is the admission handler for pod CREATE.
type PodInjector struct {
	Config  inject.Config
	Decoder admission.Decoder
	Log     logr.Logger
	Metrics *Metrics
	// Namespaces reads the labels of a pod's namespace, for its gate mode
	// (inject.NamespaceLabelGate) and adoption (inject.NamespaceLabelAdopt);
	// nil ignores namespace labels.
	Namespaces NamespaceLabels
	// Warn, when set, is asked for admission warnings about each injected pod,
	// as mutated. It runs under the request's context, bounded by warnTimeout;
	// a panic or a late answer costs the warnings, never the pod, and at most
	// maxHookWarnings of them are shown, each cut to maxWarningBytes.
	Warn func(ctx context.Context, pod *corev1.Pod) []string
	// Unjudged, when set, is asked about each adopted pod, as mutated: which of
	// its gated dependencies the dependency controller would not judge (a kind
	// not on its allow-list). A pod with any, or without an answer within
	// warnTimeout, is left as it was, with a warning: its init container still
	// judges them, where the gate would hold it until its operator acts.
	Unjudged func(ctx context.Context, pod *corev1.Pod) []string
	// Modes, when set, decides the injection mode of each request
	// (--injection-mode=auto), overriding Config.InjectionMode and setting
	// Config.ImageVolumeCaveat; nil keeps Config's.
	Modes InjectionModeSource
}

// NamespaceLabels reads a namespace's labels.
type NamespaceLabels interface {
	NamespaceLabels(ctx context.Context, name string) (map[string]string, error)
}

// Bounds of what the handler adds to a response and how long it waits for it.
const (
	// namespaceTimeout bounds the namespace lookup, well inside the API server's
	// webhook timeout (10 s by default).
	namespaceTimeout = 2 * time.Second
	// warnTimeout bounds the Warn hook.
	warnTimeout = 2 * time.Second
	// maxHookWarnings is how many of the Warn hook's warnings are shown; one
	// line more counts the others.
	maxHookWarnings = 3
	// maxWarningBytes cuts each warning: the API server may drop or cut longer
	// ones (its advice is 120 characters), and kubectl prints every one.
	maxWarningBytes = 256
)

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
	name = safetext.Truncate(name, maxLoggedName) // not validated yet: it may be 100 kB
	log := p.Log.WithValues("pod", pod.Namespace+"/"+name, "uid", string(req.UID))

	cfg := p.Config
	if p.Modes != nil {
		cfg.InjectionMode, cfg.ImageVolumeCaveat = p.Modes.InjectionMode()
		// A RuntimeClass's handler (Kata, gVisor ...) may not mount image
		// volumes whatever the node's runtime can: auto leaves such pods to
		// init-container, unless they ask otherwise.
		if rc := pod.Spec.RuntimeClassName; rc != nil && *rc != "" && cfg.InjectionMode == inject.ModeImageVolume {
			cfg.InjectionMode = inject.ModeInitContainer
			cfg.ImageVolumeCaveat = "its runtimeClassName " + safetext.Truncate(*rc, maxLoggedName) + " may not support image volumes"
		}
	}
	var warnings []string
	namespaceUnread := false
	decidesGate := inject.NamespaceDecidesGate(pod, cfg)
	decidesAdoption := inject.NamespaceDecidesAdoption(pod, cfg)
	if p.Namespaces != nil && (decidesGate || decidesAdoption) {
		labels, err := p.namespaceLabels(ctx, pod.Namespace)
		if err != nil {
			// Never deny a pod for this: it runs as if not gated (not
			// adopted), its resolver (its own init container) waiting for
			// everything.
			log.Info("could not read the namespace's labels; the pod is neither gated nor adopted by them", "error", err.Error())
			namespaceUnread = decidesGate
			if decidesAdoption {
				warnings = append(warnings, "the labels of namespace "+safetext.Truncate(pod.Namespace, maxLoggedName)+" could not be read, so its "+
					inject.NamespaceLabelAdopt+" label was not honoured: the pod is not adopted, and its init container waits for all its dependencies")
			}
		}
		cfg.NamespaceGated = labels[inject.NamespaceLabelGate] == "true"
		cfg.NamespaceAdopted = labels[inject.NamespaceLabelAdopt] == "true"
	}

	mutated, outcome, err := inject.Mutate(ctx, pod, cfg)
	if outcome.Reason == inject.ReasonAdopted && p.Unjudged != nil {
		outcome = p.checkAdopted(ctx, mutated, outcome, log)
	}
	p.Metrics.observe(outcome.Result, outcome.Reason)
	switch outcome.Result {
	case inject.ResultDenied:
		log.Info("denied", "reason", outcome.Reason, "message", err.Error())
		resp := admission.Denied(err.Error())
		// Each problem also as a cause at its field path, for clients that read them.
		var denied *inject.DeniedError
		if errors.As(err, &denied) && resp.Result != nil {
			resp.Result.Details = denied.StatusDetails(pod.Name)
		}
		return resp
	case inject.ResultSkipped:
		// A pod adoption leaves as it was may carry warnings: why not.
		warnings = append(warnings, outcome.Warnings...)
		for i, w := range warnings {
			warnings[i] = cleanWarning(w)
		}
		log.Info("skipped", "reason", outcome.Reason, "message", outcome.Message, "warnings", warnings)
		resp := admission.Allowed(outcome.Message)
		resp.Warnings = warnings
		return resp
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
	if namespaceUnread {
		if deps, _, err := inject.Dependencies(mutated); err == nil && inject.HasGateableDependencies(deps) {
			warnings = append(warnings, "the labels of namespace "+safetext.Truncate(pod.Namespace, maxLoggedName)+" could not be read, so its "+
				inject.NamespaceLabelGate+" label was not honoured: the pod is not gated, and its resolver waits for all its dependencies")
		}
	}
	warnings = append(warnings, outcome.Warnings...)
	warnings = append(warnings, p.hookWarnings(ctx, mutated, log)...)
	for i, w := range warnings {
		warnings[i] = cleanWarning(w)
	}
	verb := "injected"
	if outcome.Reason == inject.ReasonAdopted {
		verb = "adopted"
	}
	log.Info(verb, "message", outcome.Message, "warnings", warnings)
	resp := admission.Patched(outcome.Message, patch...)
	resp.Warnings = warnings
	return resp
}

// namespaceLabels reads the labels of namespace, for inject.NamespaceLabelGate
// and inject.NamespaceLabelAdopt, within namespaceTimeout.
func (p *PodInjector) namespaceLabels(ctx context.Context, namespace string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, namespaceTimeout)
	defer cancel()
	return p.Namespaces.NamespaceLabels(ctx, namespace)
}

// checkAdopted asks the Unjudged hook about an adopted pod: outcome as it is
// when the controller would judge all its gated dependencies, else a skip with
// a warning saying why (no answer in time counts as a no: adoption fails open).
func (p *PodInjector) checkAdopted(ctx context.Context, adopted *corev1.Pod, outcome inject.Outcome, log logr.Logger) inject.Outcome {
	unjudged, answered := p.callHook(ctx, adopted, p.Unjudged, log, "the adoption check")
	if !answered {
		unjudged = []string{"what the dependency controller would judge could not be checked in time"}
	}
	if len(unjudged) == 0 {
		return outcome
	}
	message := "the dependency controller would not judge " + strings.Join(unjudged, "; ") +
		"; the init container keeps waiting for all its dependencies itself"
	return inject.Outcome{Result: inject.ResultSkipped, Reason: reasonAdoptNotJudged, Message: message, Warnings: []string{"not adopted: " + message}}
}

// hookWarnings asks the Warn hook about pod, bounded in time and in what it
// returns, and safe from its panics.
func (p *PodInjector) hookWarnings(ctx context.Context, pod *corev1.Pod, log logr.Logger) []string {
	if p.Warn == nil {
		return nil
	}
	warnings, _ := p.callHook(ctx, pod, p.Warn, log, "the admission warning hook")
	var shown []string
	more := 0
	for _, w := range warnings {
		switch {
		case strings.TrimSpace(w) == "":
		case len(shown) < maxHookWarnings:
			shown = append(shown, w)
		default:
			more++
		}
	}
	if more > 0 {
		shown = append(shown, fmt.Sprintf("... and %d more warnings", more))
	}
	return shown
}

// callHook asks hook about pod within warnTimeout, on its own copy (it may
// still run after a timeout, while the response is encoded), safe from its
// panics; answered is false when it panicked or did not answer in time.
func (p *PodInjector) callHook(ctx context.Context, pod *corev1.Pod, hook func(context.Context, *corev1.Pod) []string,
	log logr.Logger, what string) (answer []string, answered bool) {
	ctx, cancel := context.WithTimeout(ctx, warnTimeout)
	defer cancel()
	pod = pod.DeepCopy()
	type result struct {
		answer []string
		ok     bool
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				log.Error(fmt.Errorf("%v", r), what+" panicked; the pod gets no answer from it")
				done <- result{}
			}
		}()
		done <- result{hook(ctx, pod), true}
	}()
	select {
	case r := <-done:
		return r.answer, r.ok
	case <-ctx.Done():
		log.Info(what+" did not answer in time; the pod gets no answer from it", "timeout", warnTimeout.String())
		return nil, false
	}
}

// cleanWarning makes w fit an HTTP header line, as admission warnings travel:
// control characters and invalid UTF-8 become spaces, and it is cut to
// maxWarningBytes.
func cleanWarning(w string) string {
	if len(w) > 4*maxWarningBytes { // only what can be shown is cleaned
		w = w[:4*maxWarningBytes] + "..."
	}
	w = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(w, " "))
	return safetext.Truncate(strings.TrimSpace(w), maxWarningBytes)
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
