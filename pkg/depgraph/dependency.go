package depgraph

import (
	"strings"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// The first word of a dependency's name; Cycle.Message picks its wording by it.
const (
	kindService   = "service"
	kindJob       = "job"  // one Job by name
	kindJobs      = "jobs" // Jobs by labels
	kindPods      = "pods"
	kindDaemonSet = "daemonset"
)

// dependency is one distinct thing managed pods wait for, and how to recognise the
// managed pods that satisfy it. Its name is what cycles show: "service ns/db",
// "job ns/db-init", "jobs ns/[app=db]", "pods ns/[app=db]", "daemonset ns/agent".
type dependency struct {
	name      string
	namespace string // where the satisfying pods live
	// selector holds labels every satisfying pod carries; empty matches no pod
	// (unless group is set).
	selector map[string]string
	// requireKey is a label key a satisfying pod must carry besides the selector:
	// Jobs selected by labels are approximated by their pods, which carry the
	// job-name label.
	requireKey string
	// group, when set, is the one group that satisfies the dependency
	// (a DaemonSet's pods are its group).
	group string
}

// matches tells whether a pod of group, in namespace, with podLabels, satisfies d.
func (d *dependency) matches(group, namespace string, podLabels map[string]string) bool {
	if d.group != "" {
		return d.group == group
	}
	if namespace != d.namespace || len(d.selector) == 0 {
		return false
	}
	if d.requireKey != "" {
		if _, ok := podLabels[d.requireKey]; !ok {
			return false
		}
	}
	for k, v := range d.selector {
		if got, ok := podLabels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// dependenciesOf lists what p waits for, in its order; a service missing from
// services is a dependency no managed pod satisfies.
func dependenciesOf(p *Pod, services map[spec.ObjectRef]map[string]string) []dependency {
	deps := make([]dependency, 0, len(p.Services)+len(p.Jobs)+len(p.Pods)+len(p.DaemonSets))
	for _, ref := range p.Services {
		deps = append(deps, dependency{
			name:      kindService + " " + ref.String(),
			namespace: ref.Namespace,
			selector:  services[ref],
		})
	}
	for _, ref := range p.Jobs {
		if ref.Name != "" {
			deps = append(deps, dependency{
				name:      kindJob + " " + ref.Namespace + "/" + ref.Name,
				namespace: ref.Namespace,
				selector:  map[string]string{batchv1.JobNameLabel: ref.Name},
			})
			continue
		}
		deps = append(deps, dependency{
			name:       kindJobs + " " + ref.String(),
			namespace:  ref.Namespace,
			selector:   ref.Labels,
			requireKey: batchv1.JobNameLabel,
		})
	}
	for _, ref := range p.Pods {
		// Pods on the same node are matched like any others: the pod waits for
		// them all the same, and which node it lands on is not known here.
		deps = append(deps, dependency{
			name:      kindPods + " " + ref.String(),
			namespace: ref.Namespace,
			selector:  ref.Labels,
		})
	}
	for _, ref := range p.DaemonSets {
		name := kindDaemonSet + " " + ref.String()
		deps = append(deps, dependency{name: name, namespace: ref.Namespace, group: name})
	}
	return deps
}

// connector links a dependency in a message to the group that satisfies it.
func connector(dependencyName string) string {
	kind, _, _ := strings.Cut(dependencyName, " ")
	switch kind {
	case kindService:
		return "served by"
	case kindJob, kindJobs:
		return "run by"
	case kindPods:
		return "found in"
	default:
		return "satisfied by"
	}
}
