package spec

import (
	"errors"
	"net"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// The environment variables of the contract (docs/resolver.md: "Environment contract").
const (
	EnvCommand         = "COMMAND"
	EnvNamespace       = "NAMESPACE"
	EnvPodName         = "POD_NAME"
	EnvNodeName        = "NODE_NAME"
	EnvInterfaceName   = "INTERFACE_NAME"
	EnvPodIP           = "POD_IP"
	EnvServices        = "DEPENDENCY_SERVICE"
	EnvJobs            = "DEPENDENCY_JOBS"
	EnvJobsJSON        = "DEPENDENCY_JOBS_JSON"
	EnvDaemonSets      = "DEPENDENCY_DAEMONSET"
	EnvContainers      = "DEPENDENCY_CONTAINER"
	EnvPodsJSON        = "DEPENDENCY_POD_JSON"
	EnvCustomResources = "DEPENDENCY_CUSTOM_RESOURCE"
	EnvRollouts        = "DEPENDENCY_ROLLOUT"
	EnvClaims          = "DEPENDENCY_PVC"
	EnvConfigMaps      = "DEPENDENCY_CONFIGMAP"
	EnvSecrets         = "DEPENDENCY_SECRET"
	EnvCRDs            = "DEPENDENCY_CRD"
	EnvConfigs         = "DEPENDENCY_CONFIG"
	EnvSockets         = "DEPENDENCY_SOCKET"
	EnvTCP             = "DEPENDENCY_TCP"
	EnvHTTP            = "DEPENDENCY_HTTP"
	// EnvTimeout is the default of the resolver's --timeout, a Go duration; the
	// webhook sets it from the entrypoint.io/timeout annotation.
	EnvTimeout = "ENTRYPOINT_TIMEOUT"
	// EnvWaitForFailedJobs set to "true" keeps the resolver waiting on a failed
	// Job (for a re-run) instead of exiting 4; the webhook sets it from the
	// entrypoint.io/wait-for-failed-jobs annotation.
	EnvWaitForFailedJobs = "ENTRYPOINT_WAIT_FOR_FAILED_JOBS"
	// EnvOptionalAfter is the default of the resolver's --optional-after, a Go
	// duration; the webhook sets it from the entrypoint.io/optional-after annotation.
	EnvOptionalAfter    = "ENTRYPOINT_OPTIONAL_AFTER"
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
	kinds := Kinds()
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
	if v := get(EnvOptionalAfter); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			collect(EnvOptionalAfter, &ValueError{Value: v, Problem: "is not a non-negative Go duration",
				Expected: "how long to wait before starting without the dependencies still blocking, such as 5m"})
		}
		s.OptionalAfter = d
	}
	if s.NodeName != "" {
		collect(EnvNodeName, wholeValueProblem(s.NodeName, "the node's name (valueFrom.fieldRef spec.nodeName)", dns1123Subdomain, validation.IsDNS1123Subdomain))
	}

	// Of a kind and the one it supersedes (they fill the same items), exactly one is
	// read: the superseding one when set, as in the original; the other is neither
	// used nor checked.
	skip := make(map[string]bool, 2)
	for _, k := range kinds {
		switch {
		case k.Supersedes == "":
		case get(k.Env) != "":
			skip[k.Supersedes] = true
		default:
			skip[k.Env] = true
		}
	}
	for _, k := range kinds {
		if skip[k.Env] {
			continue
		}
		collect(k.Env, k.Parse(s, get(k.Env)))
		if k.needs != nil { // it reads only the pod's variables, parsed above
			collect(k.Env, k.needs(s, get(k.Env)))
		}
	}

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
