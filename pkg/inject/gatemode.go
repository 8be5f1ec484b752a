package inject

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// controllerChartValue is how the Helm chart turns the dependency controller on;
// messages name it so the fix is one line.
const controllerChartValue = "controller.enabled"

// checkGate accepts "true" and "false" for the gate annotation, and "true" only
// when the dependency controller runs: nothing else would ever remove the gate.
func (pl *planner) checkGate() {
	v, ok := pl.ours[keyGate]
	if !ok || v == "false" {
		return
	}
	if v != "true" {
		pl.invalid(annotationPath(keyGate), (&spec.ValueError{
			Name:    annotationName(keyGate),
			Value:   v,
			Problem: `is neither "true" nor "false"`,
			Expected: `"true" to hold the pod before scheduling until its dependencies read from the API (` + nodeFreeAnnotations() + `) are ready, ` +
				`or "false" to opt out of its namespace's gate mode`,
		}).Error())
		return
	}
	if !pl.cfg.Controller {
		pl.invalid(annotationPath(keyGate), annotationName(keyGate)+`: "true" asks for gate mode, but the webhook runs with `+
			`--controller=false, so nothing would remove the scheduling gate `+SchedulingGate+` and the pod would never be scheduled; `+
			`turn the dependency controller on (chart value `+controllerChartValue+`: true) or remove the annotation`)
	}
}

// gateAsked tells whether gate mode is asked for the pod, and by what (for
// messages). The pod's annotation wins over its namespace and the cluster-wide
// setting; checkGate has rejected values other than "true" and "false".
func (pl *planner) gateAsked() (bool, string) {
	if v, ok := pl.ours[keyGate]; ok {
		return v == "true", "annotation " + AnnotationGate
	}
	switch {
	case pl.cfg.GateAllNamespaces:
		return true, "the webhook's --gate-all-namespaces"
	case pl.cfg.NamespaceGated:
		return true, "namespace label " + NamespaceLabelGate + "=true"
	}
	return false, ""
}

// gate splits the variables of deps into what the containers get and what the
// status annotation keeps for the controller: the variables of the dependencies
// read from the API (on the pod's node or not) move when gate mode is asked and
// possible. A pod without such dependencies is not gated: the gate would have
// nothing to wait for. warnings are why gate mode asked for was not used.
func (pl *planner) gate(deps dependencies) (env, gated []corev1.EnvVar, warnings []string) {
	asked, by := pl.gateAsked()
	if !asked {
		return deps.env, nil, nil
	}
	kept, gated := splitGated(deps.env, pl.cfg.SecretDependencies)
	if len(gated) == 0 {
		return deps.env, nil, nil
	}
	explicit := pl.ours[keyGate] == "true"
	switch {
	case !pl.cfg.Controller:
		if explicit { // the annotation is denied by checkGate
			return deps.env, nil, nil
		}
		return deps.env, nil, []string{by + " asks for gate mode, which is ignored: the webhook runs with --controller=false, " +
			"so nothing would remove the scheduling gate; the pod's resolver waits for all its dependencies instead " +
			"(chart value " + controllerChartValue + ": true turns the controller on)"}
	case pl.pod.Spec.NodeName != "":
		// The API server refuses a pod with both: it bypasses the scheduler.
		msg := "spec.nodeName is set, so the pod is never scheduled and a scheduling gate cannot hold it"
		if explicit {
			pl.invalid(field.NewPath("spec", "nodeName"), annotationName(keyGate)+`: "true" asks for gate mode, but `+msg+
				"; remove the annotation or spec.nodeName")
			return deps.env, nil, nil
		}
		return deps.env, nil, []string{by + " asks for gate mode, which is ignored: " + msg +
			"; the pod's resolver waits for all its dependencies instead"}
	}
	return kept, gated, nil
}

// NamespaceDecidesGate tells whether gate mode for pod depends on its
// namespace's label NamespaceLabelGate, so the caller needs to read it (and set
// Config.NamespaceGated): the pod has annotations of this package but not
// AnnotationGate, and cfg does not gate every namespace anyway.
func NamespaceDecidesGate(pod *corev1.Pod, cfg Config) bool {
	if pod == nil || cfg.GateAllNamespaces {
		return false
	}
	ours := ourAnnotations(pod.Annotations)
	if len(ours) == 0 || ours[keyInject] == "false" {
		return false
	}
	_, annotated := ours[keyGate]
	return !annotated
}

// HasGateableDependencies tells whether deps has any dependency gate mode would
// hold the pod for: those that need no node (services, jobs, pods on any node,
// custom resources...) and, since the controller judges them on the pod's node
// or narrows the pod to the nodes where they are ready, those on the same node
// (DaemonSets, pods with requireSameNode). Secrets are left out: they need the
// operator's opt-in.
func HasGateableDependencies(deps *spec.Spec) bool {
	if deps == nil {
		return false
	}
	for _, k := range spec.Kinds() {
		if (k.NodeFree || k.SameNode) && k.Count(deps) > 0 {
			return true
		}
	}
	return false
}

// isGateable tells whether the controller waits for the dependencies of the
// contract variable name in gate mode: they are judged from the API, without
// the pod's node or on it (spec.Kind.SameNode), and, for a kind that needs the
// operator's opt-in (Secrets), optIn is set. What stays is what only the pod
// itself can check: containers, sockets, TCP, HTTP, config templates.
func isGateable(name string, optIn bool) bool {
	k, ok := spec.KindOf(name)
	return ok && (k.NodeFree || k.SameNode || k.GateOptIn && optIn)
}

// ModeGateOnly is the status annotation's mode of a pod the gate holds for all
// its dependencies: no resolver was injected and no container changed, only the
// scheduling gate, the label LabelManaged and the status annotation were added.
// Its Containers are empty and its Gated are every variable of the plan, so that
// Dependencies reads back what the resolver would have read.
const ModeGateOnly InjectionMode = "gate-only"

// needsResolver tells whether kept, the plan's variables gate mode left in the
// containers, still hold a dependency only the pod can check (a kind of
// spec.Kinds that isGateable refused). The others, the timeout and the like,
// only tell the resolver how to wait; with nothing to wait for, it would exec
// the container's argv at once.
func needsResolver(kept []corev1.EnvVar) bool {
	for _, e := range kept {
		if _, ok := spec.KindOf(e.Name); ok {
			return true
		}
	}
	return false
}

// splitGated splits env, the plan's variables in contract order, into what stays
// in the containers and what gate mode moves to the status annotation. optIn
// moves the kinds that need it (Secrets, with --secret-dependencies) too.
func splitGated(env []corev1.EnvVar, optIn bool) (kept, gated []corev1.EnvVar) {
	for _, e := range env {
		if isGateable(e.Name, optIn) {
			gated = append(gated, e)
		} else {
			kept = append(kept, e)
		}
	}
	return kept, gated
}

// addSchedulingGate adds SchedulingGate to pod unless its author did.
func addSchedulingGate(pod *corev1.Pod) {
	if hasSchedulingGate(pod) {
		return
	}
	pod.Spec.SchedulingGates = append(pod.Spec.SchedulingGates, corev1.PodSchedulingGate{Name: SchedulingGate})
}

func hasSchedulingGate(pod *corev1.Pod) bool {
	for _, g := range pod.Spec.SchedulingGates {
		if g.Name == SchedulingGate {
			return true
		}
	}
	return false
}

// nodeFreeAnnotations lists, from the kinds table, the annotations whose items
// gate mode can hold a pod for (Secrets when the controller watches them).
func nodeFreeAnnotations() string {
	var names []string
	for _, k := range spec.Kinds() {
		if k.NodeFree || k.SameNode || k.GateOptIn {
			names = append(names, k.Annotation)
		}
	}
	return strings.Join(names, ", ")
}
