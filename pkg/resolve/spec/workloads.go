package spec

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// The forms of the variables of rollout, claim, ConfigMap, Secret and CRD
// dependencies, as told to the person who got one wrong.
const (
	rolloutForm = "[namespace:]deployment|statefulset|daemonset/name,..."
	keyRefForm  = "[namespace:]name[/key],..."
	crdForm     = "plural.group,... (a CustomResourceDefinition's name)"
)

// Workload kinds a rollout dependency names, as kubectl spells them.
const (
	WorkloadDeployment  = "deployment"
	WorkloadStatefulSet = "statefulset"
	WorkloadDaemonSet   = "daemonset"
)

// WorkloadRef names a Deployment, StatefulSet or DaemonSet whose rollout must be
// complete. Kind is one of the Workload* constants.
type WorkloadRef struct {
	Namespace string
	Kind      string
	Name      string
}

// String is "namespace/kind/name": "openstack/deployment/api".
func (r WorkloadRef) String() string { return r.Namespace + "/" + r.Kind + "/" + r.Name }

// KeyRef names a ConfigMap or Secret and, optionally, one key it must have.
type KeyRef struct {
	Namespace string
	Name      string
	Key       string // "" when any content will do
}

// String is "namespace/name", with "/key" when a key is asked for.
func (r KeyRef) String() string {
	if r.Key == "" {
		return r.Namespace + "/" + r.Name
	}
	return r.Namespace + "/" + r.Name + "/" + r.Key
}

// ParseRollouts parses "[namespace:]kind/name,..." of DEPENDENCY_ROLLOUT; the kind
// is deployment, statefulset or daemonset, as kubectl rollout status takes it.
func ParseRollouts(value, defaultNamespace string) ([]WorkloadRef, error) {
	return parseList(value, rolloutForm, func(item string) (WorkloadRef, []string) {
		ns, rest, problems := splitNamespace(item, defaultNamespace)
		kind, name, ok := strings.Cut(rest, "/")
		if !ok {
			return WorkloadRef{}, append(problems, "has no kind: write deployment/"+rest+", statefulset/"+rest+" or daemonset/"+rest)
		}
		switch kind {
		case WorkloadDeployment, WorkloadStatefulSet, WorkloadDaemonSet:
		default:
			problems = append(problems, "has kind "+quote(kind, maxQuotedItem)+", which is not deployment, statefulset or daemonset")
		}
		if name == "" {
			problems = append(problems, "has an empty name after '/'")
		} else if p := invalid(name, dns1123Subdomain, validation.IsDNS1123Subdomain); p != "" {
			problems = append(problems, "has name "+p)
		}
		return WorkloadRef{Namespace: ns, Kind: kind, Name: name}, problems
	})
}

// ParseKeyRefs parses "[namespace:]name[/key],..." of DEPENDENCY_CONFIGMAP and
// DEPENDENCY_SECRET: names are DNS-1123 subdomains, keys what a ConfigMap or
// Secret key may be.
func ParseKeyRefs(value, defaultNamespace string) ([]KeyRef, error) {
	return parseList(value, keyRefForm, func(item string) (KeyRef, []string) {
		ns, rest, problems := splitNamespace(item, defaultNamespace)
		name, key, hasKey := strings.Cut(rest, "/")
		if name == "" {
			problems = append(problems, "has an empty name")
		} else if p := invalid(name, dns1123Subdomain, validation.IsDNS1123Subdomain); p != "" {
			problems = append(problems, "has name "+p)
		}
		if hasKey {
			if key == "" {
				problems = append(problems, "has an empty key after '/'")
			} else if p := invalid(key, "a ConfigMap or Secret key", validation.IsConfigMapKey); p != "" {
				problems = append(problems, "has key "+p)
			}
		}
		return KeyRef{Namespace: ns, Name: name, Key: key}, problems
	})
}

// ParseCRDs parses "plural.group,..." of DEPENDENCY_CRD: CustomResourceDefinition
// names, which are cluster-wide and always have a group.
func ParseCRDs(value string) ([]string, error) {
	return parseList(value, crdForm, func(item string) (string, []string) {
		if p := notA(item, dns1123Subdomain, validation.IsDNS1123Subdomain); p != "" {
			return "", []string{p}
		}
		if !strings.Contains(item, ".") {
			return "", []string{"has no group: a CustomResourceDefinition is named plural.group, as certificates.cert-manager.io"}
		}
		return item, nil
	})
}

// splitNamespace splits "[namespace:]rest", checking the namespace when given.
func splitNamespace(item, defaultNamespace string) (ns, rest string, problems []string) {
	ns, rest, hasNamespace := strings.Cut(item, ":")
	if !hasNamespace {
		return defaultNamespace, item, nil
	}
	if strings.Contains(rest, ":") {
		problems = append(problems, "has more than one ':'")
	}
	switch ns {
	case "":
		problems = append(problems, "has an empty namespace before ':'")
	default:
		if p := invalid(ns, dns1123Label, validation.IsDNS1123Label); p != "" {
			problems = append(problems, "has namespace "+p)
		}
	}
	return ns, rest, problems
}
