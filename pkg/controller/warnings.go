package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/access"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck/admit"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// AccessWarner tells, at admission, which of a pod's dependencies outside its
// namespace the controller will not judge because the pod's ServiceAccount may
// not read them: the pod would wait until its operator grants that. It uses the
// controller's own lookups and access rule, so that the warning and the
// condition agree.
type AccessWarner struct {
	access       *access.Checker
	mapper       meta.RESTMapper
	dependencies DependenciesFunc
	// secrets and allowed are the controller's settings.
	secrets  bool
	allowed  allowList
	programs admit.Cache
}

// NewAccessWarner makes the warner of a webhook whose controller runs with
// secrets (--secret-dependencies) and allowedResources
// (--allowed-custom-resources); the allow-list is parsed once, here, not at
// every admission.
func NewAccessWarner(checker *access.Checker, mapper meta.RESTMapper, dependencies DependenciesFunc,
	secrets bool, allowedResources []string) (*AccessWarner, error) {
	allowed, err := newAllowList(allowedResources, secrets)
	if err != nil {
		return nil, err
	}
	return &AccessWarner{access: checker, mapper: mapper, dependencies: dependencies, secrets: secrets, allowed: allowed}, nil
}

// maxAccessChecks bounds the reviews one admission asks for.
const maxAccessChecks = 8

// Warnings implements the webhook's warning hook for pod (already mutated).
func (w *AccessWarner) Warnings(ctx context.Context, pod *corev1.Pod) []string {
	deps, _, err := w.dependencies(pod)
	if err != nil || spec.CheckLimits(deps) != nil {
		return nil
	}
	var out []string
	checks := 0
	c := lookupConfig{mapper: w.mapper, secrets: w.secrets, programs: &w.programs, allowed: w.allowed}
	list := nodeFree(deps, c)
	if gateIndex(pod) >= 0 {
		// The gate holds the same-node dependencies too (node-aware gates).
		list = append(list, c.onNode(deps, "")...)
	}
	for _, d := range list {
		if d.problem != "" || d.public || d.namespace == pod.Namespace {
			continue
		}
		if checks++; checks > maxAccessChecks {
			break
		}
		req := access.Request{PodNamespace: pod.Namespace, ServiceAccount: serviceAccountOf(pod), Verb: d.verb(), Resource: d.gvr, Namespace: d.namespace}
		if req.Verb == "get" {
			req.Name = d.name
		}
		if ok, err := w.access.Allowed(ctx, req); err == nil && !ok {
			out = append(out, fmt.Sprintf("%s: not judged until granted: %s", d.text, req.Denied()))
		}
	}
	return out
}
