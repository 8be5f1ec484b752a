package inject

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// Dependencies reads what an injected pod waits for, as the resolver and the
// controller together see it: the variables of the pod's first wrapped container
// (those with a value; the downward API ones are the pod's own) and those gate
// mode kept in the status annotation, parsed by spec.FromEnv with NAMESPACE and
// POD_NAME the pod's, exactly as the resolver parses its environment. gated tells
// whether the pod is held before scheduling: its status lists gated variables, or
// it carries SchedulingGate (its author may have set it). A pod injected in
// ModeGateOnly has no wrapped container: its status annotation holds all.
//
// A pod the webhook did not inject, or whose status annotation is not the
// webhook's, is an error.
func Dependencies(pod *corev1.Pod) (deps *spec.Spec, gated bool, err error) {
	if pod == nil {
		return nil, false, errors.New("reading a pod's dependencies: no pod")
	}
	name := pod.Namespace + "/" + pod.Name
	raw, ok := pod.Annotations[AnnotationStatus]
	if !ok {
		return nil, false, fmt.Errorf("pod %s was not injected by the entrypoint webhook: it has no %s annotation", name, AnnotationStatus)
	}
	var status injectionStatus
	if err := json.Unmarshal([]byte(raw), &status); err != nil {
		return nil, false, fmt.Errorf("pod %s: its %s annotation is not the webhook's: %w", name, AnnotationStatus, err)
	}
	if status.Mode == ModeGateOnly {
		return gateOnlyDependencies(pod, status)
	}
	if status.Version != statusVersion || len(status.Containers) == 0 {
		return nil, false, fmt.Errorf("pod %s: its %s annotation is not the webhook's: version %d with %d containers, want version %d with at least one",
			name, AnnotationStatus, status.Version, len(status.Containers), statusVersion)
	}
	gated = len(status.Gated) > 0 || hasSchedulingGate(pod)

	first := status.Containers[0]
	c := findContainer(pod, first)
	if c == nil {
		return nil, gated, fmt.Errorf("pod %s: its %s annotation names wrapped container %s, which the pod does not have", name, AnnotationStatus, quoted(first))
	}
	env := make(map[string]string, len(c.Env)+len(status.Gated)+2)
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value // the last of equal names wins, as in the container
		}
	}
	for _, g := range status.Gated {
		// An adopted container's emptied variable ("" is none) joins nothing.
		if kept, ok := env[g.Name]; ok && strings.TrimSpace(kept) != "" && g.Name == spec.EnvPodsJSON {
			merged, err := joinJSONArrays(kept, g.Value)
			if err != nil {
				return nil, gated, fmt.Errorf("pod %s: %s of container %s and of its %s annotation: %w", name, g.Name, quoted(first), AnnotationStatus, err)
			}
			env[g.Name] = merged
			continue
		}
		env[g.Name] = g.Value
	}
	deps, err = fromPodEnv(pod, env)
	if err != nil {
		return nil, gated, fmt.Errorf("pod %s: reading its dependencies: %w", name, err)
	}
	return deps, gated, nil
}

// gateOnlyDependencies is Dependencies of a pod injected in ModeGateOnly: its
// status annotation holds every variable, and no container any.
func gateOnlyDependencies(pod *corev1.Pod, status injectionStatus) (*spec.Spec, bool, error) {
	name := pod.Namespace + "/" + pod.Name
	if status.Version != statusVersion || len(status.Gated) == 0 || len(status.Containers) > 0 {
		return nil, false, fmt.Errorf("pod %s: its %s annotation is not the webhook's: version %d in mode %s with %d gated variables and %d containers, want version %d with at least one gated variable and no container",
			name, AnnotationStatus, status.Version, ModeGateOnly, len(status.Gated), len(status.Containers), statusVersion)
	}
	deps, err := fromPodEnv(pod, gatedEnv(status))
	if err != nil {
		return nil, true, fmt.Errorf("pod %s: reading its dependencies: %w", name, err)
	}
	return deps, true, nil
}

// gatedEnv is the variables status keeps, by name.
func gatedEnv(status injectionStatus) map[string]string {
	env := make(map[string]string, len(status.Gated)+2)
	for _, g := range status.Gated {
		env[g.Name] = g.Value
	}
	return env
}

// GateOnly tells whether pod was injected in ModeGateOnly: the scheduling gate
// holds it for all its dependencies, and no resolver runs in it.
func GateOnly(pod *corev1.Pod) bool {
	if pod == nil {
		return false
	}
	var s injectionStatus
	return json.Unmarshal([]byte(pod.Annotations[AnnotationStatus]), &s) == nil && s.Mode == ModeGateOnly
}

// GatedDependencies reads only what the scheduling gate holds an injected or
// adopted pod for: the variables its status annotation keeps, parsed as
// Dependencies parses them; nil for a pod gate mode kept nothing of. The rest
// of Dependencies is left to the pod's own containers.
func GatedDependencies(pod *corev1.Pod) (*spec.Spec, error) {
	if pod == nil {
		return nil, errors.New("reading a pod's gated dependencies: no pod")
	}
	var status injectionStatus
	if err := json.Unmarshal([]byte(pod.Annotations[AnnotationStatus]), &status); err != nil {
		return nil, fmt.Errorf("pod %s/%s: its %s annotation is not the webhook's: %w", pod.Namespace, pod.Name, AnnotationStatus, err)
	}
	if len(status.Gated) == 0 {
		return nil, nil
	}
	deps, err := fromPodEnv(pod, gatedEnv(status))
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: reading what its gate holds it for: %w", pod.Namespace, pod.Name, err)
	}
	return deps, nil
}

// unnamedPod stands in for the name of a pod being admitted from a template
// (generateName): the webhook reads its dependencies before the API server names
// it, and the same-node kinds need POD_NAME set, which only tells the resolver its
// own pod.
const unnamedPod = "pod-being-admitted"

// fromPodEnv parses env, contract variables, as the resolver in pod would read
// them: with NAMESPACE and POD_NAME the pod's (env is changed).
func fromPodEnv(pod *corev1.Pod, env map[string]string) (*spec.Spec, error) {
	env[spec.EnvNamespace] = pod.Namespace
	env[spec.EnvPodName] = podNameOrPlaceholder(pod)
	return spec.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func podNameOrPlaceholder(pod *corev1.Pod) string {
	if pod.Name == "" {
		return unnamedPod
	}
	return pod.Name
}

// findContainer is the regular container or native sidecar called name, or nil.
func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// joinJSONArrays is the items of JSON array a, then those of b, as one array: the
// same-node items of DEPENDENCY_POD_JSON stay in the containers, the others are gated.
func joinJSONArrays(a, b string) (string, error) {
	var items, more []json.RawMessage
	if err := json.Unmarshal([]byte(a), &items); err != nil {
		return "", fmt.Errorf("not a JSON array: %w", err)
	}
	if err := json.Unmarshal([]byte(b), &more); err != nil {
		return "", fmt.Errorf("not a JSON array: %w", err)
	}
	joined, err := json.Marshal(append(items, more...)) // the items are valid JSON: this cannot fail
	if err != nil {
		return "", fmt.Errorf("joining JSON arrays: %w", err)
	}
	return string(joined), nil
}
