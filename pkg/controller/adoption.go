package controller

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// maxUnjudged bounds what Unjudged lists: one is enough to leave a pod alone.
const maxUnjudged = 3

// Unjudged lists the node-free dependencies of pod (as mutated) that the
// controller would not judge, each with why: a kind not on its allow-list, or
// not served (yet). The webhook does not adopt such a pod: the gate would hold
// it until its operator acts, where the init container it has judges them
// itself, as before. It uses the controller's own lookups and allow-list, so
// that adoption and the condition agree.
func (w *AccessWarner) Unjudged(pod *corev1.Pod) []string {
	deps, _, err := w.dependencies(pod)
	if err != nil {
		return []string{"its dependencies do not read back: " + err.Error()}
	}
	if err := spec.CheckLimits(deps); err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, d := range nodeFree(deps, lookupConfig{mapper: w.mapper, secrets: w.secrets, programs: &w.programs, allowed: w.allowed}) {
		if d.problem == "" {
			continue
		}
		if out = append(out, d.text+": "+d.problem); len(out) == maxUnjudged {
			break
		}
	}
	return out
}
