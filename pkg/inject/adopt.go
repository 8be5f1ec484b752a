package inject

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck/admit"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Adoption takes over pods whose charts run the original kubernetes-entrypoint
// image as an init container configured by DEPENDENCY_* variables (openstack-helm),
// with no change to the chart: the dependencies the controller can judge (those
// that need no node, and the same-node ones, see splitGated) move from that
// container's env to the scheduling gate, which the dependency controller removes.
// The container, its image and its command stay, so that whatever goes wrong
// (the webhook down, the pod not adopted) it still waits for everything: adoption
// fails open, and a pod it cannot take over exactly is left as it was.

// NamespaceLabelAdopt set to "true" on a namespace asks for adoption of the pods
// created in it (see Config.NamespaceAdopted).
const NamespaceLabelAdopt = AnnotationPrefix + "adopt"

// ModeAdopted is the status annotation's mode of an adopted pod: no resolver was
// injected, and Containers[0] is the init container whose env the gate took over.
const ModeAdopted InjectionMode = "adopted"

// Reasons of Mutate's results for pods without annotations when adoption is asked.
const (
	// ReasonAdopted: the pod was adopted (Result ResultInjected).
	ReasonAdopted = "adopted"
	// ReasonAdoptNoController: the dependency controller does not run, so
	// nothing would remove the gate.
	ReasonAdoptNoController = "adopt-no-controller"
	// ReasonAdoptSeveral: more than one init container carries the contract.
	ReasonAdoptSeveral = "adopt-several-containers"
	// ReasonAdoptNodeName: spec.nodeName is set, so no gate can hold the pod.
	ReasonAdoptNodeName = "adopt-node-name"
	// ReasonAdoptNothingToGate: the container waits for nothing the gate can hold
	// the pod for (only for what the pod alone can check).
	ReasonAdoptNothingToGate = "adopt-nothing-to-gate"
	// ReasonAdoptUnreadable: the container's variables do not parse, or are
	// not literal where they must be.
	ReasonAdoptUnreadable = "adopt-unreadable"
	// ReasonAdoptTooMany: the variables hold more than a pod may have
	// (spec.MaxItems, spec.MaxSelectorItems, spec.MaxCELItems).
	ReasonAdoptTooMany = "adopt-too-many"
)

// AdoptedContainer is the init container whose env an adopted pod's gate took
// over, as its status annotation says (mode ModeAdopted); ok is false for a pod
// that was not adopted.
func AdoptedContainer(pod *corev1.Pod) (name string, ok bool) {
	if pod == nil {
		return "", false
	}
	var s injectionStatus
	if json.Unmarshal([]byte(pod.Annotations[AnnotationStatus]), &s) != nil || s.Mode != ModeAdopted || len(s.Containers) == 0 {
		return "", false
	}
	return s.Containers[0], true
}

// adoptionAsked tells whether cfg asks for the adoption of a pod without
// annotations.
func adoptionAsked(cfg Config) bool {
	return cfg.AdoptAllNamespaces || cfg.NamespaceAdopted
}

// NamespaceDecidesAdoption tells whether adopting pod depends on its namespace's
// label NamespaceLabelAdopt, so the caller needs to read it (and set
// Config.NamespaceAdopted): the pod has no annotations of this package and an
// init container carrying the contract, and cfg does not adopt everywhere.
func NamespaceDecidesAdoption(pod *corev1.Pod, cfg Config) bool {
	if pod == nil || cfg.AdoptAllNamespaces || len(ourAnnotations(pod.Annotations)) > 0 {
		return false
	}
	return len(contractContainers(pod)) > 0
}

// contractContainers are the indexes of pod's init containers that carry the
// original image's contract: an env entry DEPENDENCY_SERVICE, which its charts
// always set, if only to "" (the webhook configuration's matchCondition tests the
// same).
func contractContainers(pod *corev1.Pod) []int {
	var out []int
	for i := range pod.Spec.InitContainers {
		for _, e := range pod.Spec.InitContainers[i].Env {
			if e.Name == spec.EnvServices {
				out = append(out, i)
				break
			}
		}
	}
	return out
}

// adopt is Mutate for a pod without annotations when cfg asks for adoption. It
// never denies: a pod it cannot adopt exactly comes back unchanged, with a
// warning when its author or operator may want to know why.
func adopt(pod *corev1.Pod, cfg Config) (*corev1.Pod, Outcome) {
	unchanged := func(reason, message string, warn bool) (*corev1.Pod, Outcome) {
		o := Outcome{Result: ResultSkipped, Reason: reason, Message: message}
		if warn {
			o.Warnings = []string{"not adopted: " + message}
		}
		return pod.DeepCopy(), o
	}
	if hasKey(pod.Annotations, annotationMirror) {
		return unchanged(ReasonMirrorPod, "mirror pods (static pods) cannot be changed", false)
	}
	found := contractContainers(pod)
	switch {
	case len(found) == 0:
		return unchanged(ReasonNoAnnotations, "the pod has no "+AnnotationPrefix+" annotations and no init container with "+spec.EnvServices+" in its env", false)
	case len(found) > 1:
		// Each would have to be gated on its own items and blanked, and the
		// status names one container: rare enough to leave to its resolvers.
		return unchanged(ReasonAdoptSeveral, fmt.Sprintf("%d init containers (%s) carry %s; adoption takes over exactly one, so each keeps waiting for all its dependencies itself",
			len(found), listNames(initContainerNames(pod, found)), spec.EnvServices), true)
	case !cfg.Controller:
		return unchanged(ReasonAdoptNoController, "the webhook runs with --controller=false, so nothing would remove the scheduling gate "+SchedulingGate+
			"; init container "+quoted(pod.Spec.InitContainers[found[0]].Name)+" keeps waiting for all its dependencies (chart value "+controllerChartValue+": true turns the controller on)", true)
	case pod.Spec.NodeName != "":
		return unchanged(ReasonAdoptNodeName, "spec.nodeName is set, so the pod is never scheduled and a scheduling gate cannot hold it", true)
	}
	index := found[0]
	c := &pod.Spec.InitContainers[index]
	env, reason, problem := adoptedEnv(pod, c)
	if problem != "" {
		return unchanged(reason, "init container "+quoted(c.Name)+": "+problem+"; it keeps waiting for all its dependencies itself", true)
	}
	kept, gated := splitGated(env, cfg.SecretDependencies)
	if len(gated) == 0 {
		return unchanged(ReasonAdoptNothingToGate, "init container "+quoted(c.Name)+" waits for nothing the controller can judge from outside the pod, so a scheduling gate would hold the pod for nothing", false)
	}

	out := pod.DeepCopy()
	blankMoved(&out.Spec.InitContainers[index], kept, gated)
	markManaged(out, injectionStatus{Version: statusVersion, Mode: ModeAdopted, Containers: []string{c.Name}}, gated)

	message := "adopted init container " + quoted(c.Name) + ": the scheduling gate " + SchedulingGate + " holds the pod for " +
		describeVariables(gated, pod.Namespace) + " (moved from its env to the " + AnnotationStatus + " annotation)"
	if len(kept) > 0 {
		message += "; the container still waits for " + describeVariables(kept, pod.Namespace)
	}
	return out, Outcome{Result: ResultInjected, Reason: ReasonAdopted, Message: message}
}

// describeVariables names each contract variable of env with its number of
// items: "DEPENDENCY_SERVICE (2 items), DEPENDENCY_JOBS (1 item)".
func describeVariables(env []corev1.EnvVar, namespace string) string {
	parts := make([]string, 0, len(env))
	for _, e := range env {
		n := 0
		if k, ok := spec.KindOf(e.Name); ok {
			s := &spec.Spec{Namespace: namespace}
			if k.Parse(s, e.Value) == nil { // formatted by its kind: it parses
				n = k.Count(s)
			}
		}
		unit := " items)"
		if n == 1 {
			unit = " item)"
		}
		parts = append(parts, e.Name+" ("+strconv.Itoa(n)+unit)
	}
	return strings.Join(parts, ", ")
}

func initContainerNames(pod *corev1.Pod, indexes []int) []string {
	names := make([]string, len(indexes))
	for i, index := range indexes {
		names[i] = pod.Spec.InitContainers[index].Name
	}
	return names
}

// adoptedEnv parses the contract of init container c as the resolver would read
// it, and as Dependencies reads it back: its literal variables (the last of equal
// names, as in the container), NAMESPACE and POD_NAME the pod's. It returns the
// dependency variables set, in the contract's order, each formatted by its kind
// (every namespace spelled out); or why the
// container cannot be adopted exactly, and the reason for the outcome.
func adoptedEnv(pod *corev1.Pod, c *corev1.Container) (env []corev1.EnvVar, reason, problem string) {
	literal := make(map[string]string, len(c.Env))
	fromAPI := make(map[string]bool)
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			delete(literal, e.Name)
			fromAPI[e.Name] = true
			continue
		}
		literal[e.Name] = e.Value
		delete(fromAPI, e.Name)
	}
	kinds := spec.Kinds()
	for _, k := range kinds {
		v := literal[k.Env]
		if strings.Contains(v, "$(") {
			// The kubelet expands $(VAR) references: the value read here would
			// not be the one the container reads.
			return nil, ReasonAdoptUnreadable, k.Env + " refers to other variables with $(...), which only the kubelet expands"
		}
		// Of a kind and the one it supersedes, the container reads the superseding
		// one when set: with one of them from the API, which is not known here.
		if k.Supersedes != "" && (fromAPI[k.Env] && literal[k.Supersedes] != "" || fromAPI[k.Supersedes] && v != "") {
			return nil, ReasonAdoptUnreadable, k.Env + " and " + k.Supersedes + " are both set, one of them with valueFrom, so which one the container reads is not known before it runs"
		}
	}
	namespace := pod.Namespace
	if namespace == "" {
		namespace = "default"
	}
	if v, ok := literal[spec.EnvNamespace]; ok && strings.TrimSpace(v) != namespace {
		return nil, ReasonAdoptUnreadable, fmt.Sprintf("%s is set to %s, not to the pod's namespace %s, so its dependencies without a namespace are in another namespace",
			spec.EnvNamespace, quoted(v), quoted(namespace))
	}
	podName := pod.Name
	if podName == "" {
		// A pod from a template gets its name after admission; the name only
		// tells the resolver its own pod, which splitting does not need.
		podName = "adopted-pod"
	}
	deps, err := spec.FromEnv(func(name string) (string, bool) {
		switch name {
		case spec.EnvNamespace:
			return namespace, true
		case spec.EnvPodName:
			return podName, true
		}
		v, ok := literal[name]
		return v, ok
	})
	if err != nil {
		return nil, ReasonAdoptUnreadable, "its variables do not parse: " + truncate(err.Error(), maxQuotedBytes*4)
	}
	if err := spec.CheckLimits(deps); err != nil {
		return nil, ReasonAdoptTooMany, "its variables hold " + err.Error() + ", the most a pod may have"
	}
	if len(deps.CEL) > spec.MaxCELItems {
		return nil, ReasonAdoptTooMany, fmt.Sprintf("%s has %d items, more than %d", spec.EnvCEL, len(deps.CEL), spec.MaxCELItems)
	}
	for i, r := range deps.CEL {
		if _, err := admit.Compile(r.Expression); err != nil {
			return nil, ReasonAdoptUnreadable, fmt.Sprintf("%s item %d: %s", spec.EnvCEL, i+1, truncate(err.Error(), maxCELProblemBytes))
		}
	}
	for _, k := range kinds {
		if strings.TrimSpace(literal[k.Env]) == "" || superseded(kinds, k, literal) {
			continue
		}
		if v := k.Format(deps); v != "" {
			env = append(env, corev1.EnvVar{Name: k.Env, Value: v})
		}
	}
	return env, "", ""
}

// superseded tells whether the container sets a kind that supersedes k, which it
// then neither reads nor checks.
func superseded(kinds []spec.Kind, k spec.Kind, literal map[string]string) bool {
	for _, by := range kinds {
		if by.Supersedes == k.Env && strings.TrimSpace(literal[by.Env]) != "" {
			return true
		}
	}
	return false
}

// blankMoved empties, in c's env, the literal variables gated took over ("" is
// none, to the original image and to the resolver alike); one that kept holds a
// part of (the same-node items of DEPENDENCY_POD_JSON) gets that part. The
// variable a moved one supersedes is emptied too: the container never read it,
// and must not start reading it now that the superseding one is empty.
func blankMoved(c *corev1.Container, kept, gated []corev1.EnvVar) {
	value := make(map[string]string, len(gated)+1)
	for _, g := range gated {
		value[g.Name] = ""
		if k, ok := spec.KindOf(g.Name); ok && k.Supersedes != "" {
			value[k.Supersedes] = ""
		}
	}
	for _, e := range kept {
		if _, ok := value[e.Name]; ok {
			value[e.Name] = e.Value
		}
	}
	for i := range c.Env {
		e := &c.Env[i]
		if v, ok := value[e.Name]; ok && e.ValueFrom == nil {
			e.Value = v
		}
	}
}
