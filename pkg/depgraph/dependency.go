package depgraph

import (
	"slices"
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
	kindRollout   = "rollout"
	// Objects named by custom-resource and CEL items have names of their own
	// (Object.name); these are their kinds in dependencyKey only.
	kindObject = "object"
	kindCEL    = "cel"
)

// dependency is one distinct thing managed pods wait for, and how to recognise the
// managed pods that satisfy it. Its name is what cycles show: "service ns/db",
// "job ns/db-init", "jobs ns/[app=db]", "pods ns/[app=db]", "daemonset ns/agent",
// "rollout ns/deployment/api", "deployment ns/api (apps/v1)",
// "cel apps/v1 Deployment ns/api", "pod ns/api-0 (v1)".
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
	// (a DaemonSet's pods are its group, a rollout's its workload's).
	group string
	// podName, when set, is the one pod that satisfies it, in namespace (a
	// custom-resource or CEL item naming a pod).
	podName string
}

// matches tells whether the pod namespace/name of group, with podLabels,
// satisfies d.
func (d *dependency) matches(group, namespace, name string, podLabels map[string]string) bool {
	if d.group != "" {
		return d.group == group
	}
	if d.podName != "" {
		return namespace == d.namespace && name == d.podName
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

// dependencyKey tells dependencies apart cheaply, before any name is built.
type dependencyKey struct {
	kind            string
	namespace, name string // services, jobs by name, daemonsets, rollouts, objects
	labels          string // jobs by labels, pods: the selector as canonicalLabels writes it; rollouts: the kind; objects: "apiVersion Kind"
	sameNode        bool
}

// wanted is one dependency as a pod states it: its key and, for the kinds that
// select by labels, those labels.
type wanted struct {
	key    dependencyKey
	labels map[string]string
}

// appendWanted appends what p waits for, in its order, to list.
func appendWanted(list []wanted, p *Pod) []wanted {
	for _, ref := range p.Services {
		list = append(list, wanted{key: dependencyKey{kind: kindService, namespace: ref.Namespace, name: ref.Name}})
	}
	for _, ref := range p.Jobs {
		if ref.Name != "" {
			list = append(list, wanted{key: dependencyKey{kind: kindJob, namespace: ref.Namespace, name: ref.Name}})
		} else {
			list = append(list, wanted{key: dependencyKey{kind: kindJobs, namespace: ref.Namespace, labels: canonicalLabels(ref.Labels)}, labels: ref.Labels})
		}
	}
	for _, ref := range p.Pods {
		// Pods on the same node are matched like any others: the pod waits for
		// them all the same, and which node it lands on is not known here.
		key := dependencyKey{kind: kindPods, namespace: ref.Namespace, labels: canonicalLabels(ref.Labels), sameNode: ref.RequireSameNode}
		list = append(list, wanted{key: key, labels: ref.Labels})
	}
	for _, ref := range p.DaemonSets {
		list = append(list, wanted{key: dependencyKey{kind: kindDaemonSet, namespace: ref.Namespace, name: ref.Name}})
	}
	for _, ref := range p.Rollouts {
		list = append(list, wanted{key: dependencyKey{kind: kindRollout, namespace: ref.Namespace, name: ref.Name, labels: ref.Kind}})
	}
	for _, o := range p.Objects {
		kind := kindObject
		if o.CEL {
			kind = kindCEL
		}
		list = append(list, wanted{key: dependencyKey{kind: kind, namespace: o.Namespace, name: o.Name, labels: o.APIVersion + " " + o.Kind}})
	}
	return list
}

// dependency makes the dependency w names; a service missing from services is
// one no managed pod satisfies.
func (w *wanted) dependency(services map[spec.ObjectRef]map[string]string) dependency {
	k := w.key
	where := k.namespace + "/" + k.name
	switch k.kind {
	case kindService:
		return dependency{name: kindService + " " + where, namespace: k.namespace, selector: services[spec.ObjectRef{Namespace: k.namespace, Name: k.name}]}
	case kindJob:
		return dependency{name: kindJob + " " + where, namespace: k.namespace, selector: map[string]string{batchv1.JobNameLabel: k.name}}
	case kindJobs:
		return dependency{name: kindJobs + " " + k.namespace + "/[" + k.labels + "]", namespace: k.namespace, selector: w.labels, requireKey: batchv1.JobNameLabel}
	case kindPods:
		name := kindPods + " " + k.namespace + "/[" + k.labels + "]"
		if k.sameNode {
			name += " on this node"
		}
		return dependency{name: name, namespace: k.namespace, selector: w.labels}
	case kindRollout: // labels holds the workload's kind, "deployment"
		return dependency{name: kindRollout + " " + k.namespace + "/" + k.labels + "/" + k.name, namespace: k.namespace,
			group: k.labels + " " + where}
	case kindObject, kindCEL: // labels holds "apiVersion Kind"
		apiVersion, kind, _ := strings.Cut(k.labels, " ")
		o := Object{CEL: k.kind == kindCEL, APIVersion: apiVersion, Kind: kind, Namespace: k.namespace, Name: k.name}
		d := dependency{name: o.name(), namespace: k.namespace, group: o.Workload()}
		if o.IsPod() {
			d.podName = k.name
		}
		return d
	default: // kindDaemonSet
		return dependency{name: kindDaemonSet + " " + where, namespace: k.namespace, group: kindDaemonSet + " " + where}
	}
}

// canonicalLabels writes a label set the way spec's String methods do:
// "key=value" items, sorted, joined by commas.
func canonicalLabels(set map[string]string) string {
	if len(set) == 1 {
		for k, v := range set {
			return k + "=" + v
		}
	}
	items := make([]string, 0, len(set))
	for k, v := range set {
		items = append(items, k+"="+v)
	}
	slices.Sort(items)
	return strings.Join(items, ",")
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
	case kindRollout:
		return "rolled out by"
	default:
		return "satisfied by"
	}
}
