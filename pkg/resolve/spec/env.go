package spec

import (
	"errors"
	"net"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// The environment variables of the contract (README: "Environment contract").
const (
	EnvCommand          = "COMMAND"
	EnvNamespace        = "NAMESPACE"
	EnvPodName          = "POD_NAME"
	EnvNodeName         = "NODE_NAME"
	EnvInterfaceName    = "INTERFACE_NAME"
	EnvPodIP            = "POD_IP"
	EnvServices         = "DEPENDENCY_SERVICE"
	EnvJobs             = "DEPENDENCY_JOBS"
	EnvJobsJSON         = "DEPENDENCY_JOBS_JSON"
	EnvDaemonSets       = "DEPENDENCY_DAEMONSET"
	EnvContainers       = "DEPENDENCY_CONTAINER"
	EnvPodsJSON         = "DEPENDENCY_POD_JSON"
	EnvCustomResources  = "DEPENDENCY_CUSTOM_RESOURCE"
	EnvConfigs          = "DEPENDENCY_CONFIG"
	EnvSockets          = "DEPENDENCY_SOCKET"
	EnvTCP              = "DEPENDENCY_TCP"
	EnvHTTP             = "DEPENDENCY_HTTP"
	defaultNamespace    = "default"
	podNameFromFieldRef = "the pod's name (valueFrom.fieldRef metadata.name)"
)

// FromEnv parses the whole contract from lookup (os.LookupEnv in production). An
// unset variable means the same as an empty or blank one: nothing of that kind. Every
// problem found is reported, joined, each a *ValueError naming its variable (see
// ValueErrors); the Spec is nil then.
func FromEnv(lookup func(string) (string, bool)) (*Spec, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	var errs []error
	// collect parses one variable, keeping what it got and naming its problems.
	collect := func(name string, err error) {
		if err != nil {
			errs = append(errs, WithName(name, err))
		}
	}

	s := &Spec{
		Namespace:     orDefault(get(EnvNamespace), defaultNamespace),
		PodName:       get(EnvPodName),
		NodeName:      get(EnvNodeName),
		InterfaceName: get(EnvInterfaceName),
		PodIP:         get(EnvPodIP),
		Command:       SplitCommand(get(EnvCommand)),
	}
	collect(EnvNamespace, wholeValueProblem(s.Namespace, "a namespace name ("+dns1123Label+")", dns1123Label, validation.IsDNS1123Label))
	if s.PodName != "" {
		collect(EnvPodName, wholeValueProblem(s.PodName, podNameFromFieldRef, dns1123Subdomain, validation.IsDNS1123Subdomain))
	}
	if s.PodIP != "" && net.ParseIP(s.PodIP) == nil {
		collect(EnvPodIP, &ValueError{Value: s.PodIP, Problem: "is not an IP address", Expected: "the pod's IP (valueFrom.fieldRef status.podIP)"})
	}
	if s.NodeName != "" {
		collect(EnvNodeName, wholeValueProblem(s.NodeName, "the node's name (valueFrom.fieldRef spec.nodeName)", dns1123Subdomain, validation.IsDNS1123Subdomain))
	}

	var err error
	s.Services, err = ParseServiceList(get(EnvServices), s.Namespace)
	collect(EnvServices, err)

	// As in the original, a non-empty DEPENDENCY_JOBS_JSON replaces DEPENDENCY_JOBS,
	// which is then neither used nor checked.
	if jobsJSON := get(EnvJobsJSON); jobsJSON != "" {
		s.Jobs, err = ParseJobsJSON(jobsJSON, s.Namespace)
		collect(EnvJobsJSON, err)
	} else {
		var refs []ObjectRef
		refs, err = ParseObjectList(get(EnvJobs), s.Namespace)
		collect(EnvJobs, err)
		for _, r := range refs {
			s.Jobs = append(s.Jobs, JobRef{Namespace: r.Namespace, Name: r.Name})
		}
	}

	daemonSets := get(EnvDaemonSets)
	s.DaemonSets, err = ParseObjectList(daemonSets, s.Namespace)
	collect(EnvDaemonSets, err)
	// The resolver finds this node through its own pod unless NODE_NAME says it.
	if len(s.DaemonSets) > 0 && s.PodName == "" && s.NodeName == "" {
		collect(EnvDaemonSets, needsProblem(daemonSets, "POD_NAME or NODE_NAME, both empty or unset",
			"POD_NAME set to "+podNameFromFieldRef+", or NODE_NAME"))
	}

	containers := get(EnvContainers)
	s.Containers, err = ParseNames(containers)
	collect(EnvContainers, err)
	if len(s.Containers) > 0 && s.PodName == "" {
		collect(EnvContainers, needsProblem(containers, "POD_NAME, which is empty or unset", "POD_NAME set to "+podNameFromFieldRef))
	}

	pods := get(EnvPodsJSON)
	s.Pods, err = ParsePodsJSON(pods, s.Namespace)
	collect(EnvPodsJSON, err)
	for i, p := range s.Pods {
		if p.RequireSameNode && s.PodName == "" && s.NodeName == "" {
			collect(EnvPodsJSON, &ValueError{
				Value:    pods,
				Item:     i + 1,
				Problem:  `has "requireSameNode":true, which needs POD_NAME or NODE_NAME, both empty or unset`,
				Expected: "POD_NAME set to " + podNameFromFieldRef + ", or NODE_NAME",
			})
		}
	}

	s.CustomResources, err = ParseCustomResourcesJSON(get(EnvCustomResources), s.Namespace)
	collect(EnvCustomResources, err)
	s.Configs, err = ParsePaths(get(EnvConfigs))
	collect(EnvConfigs, err)
	s.Sockets, err = ParsePaths(get(EnvSockets))
	collect(EnvSockets, err)
	s.TCP, err = ParseTCP(get(EnvTCP))
	collect(EnvTCP, err)
	s.HTTP, err = ParseHTTP(get(EnvHTTP))
	collect(EnvHTTP, err)

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// wholeValueProblem checks a single-valued variable.
func wholeValueProblem(value, expected, form string, ok check) error {
	if p := notA(value, form, ok); p != "" {
		return &ValueError{Value: value, Problem: p, Expected: expected}
	}
	return nil
}

// needsProblem reports a dependency that cannot be resolved without another variable.
func needsProblem(value, needs, expected string) error {
	return &ValueError{Value: value, Problem: "needs " + needs, Expected: expected}
}
