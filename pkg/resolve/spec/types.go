// Package spec is the dependency model and the parsers of the environment contract
// (DEPENDENCY_* variables) shared by the resolver and the webhook. It is pure: no
// clients, no I/O beyond the lookup function it is given.
package spec

import (
	"encoding/json"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// Spec is everything a resolver run is asked to do, parsed from its environment.
type Spec struct {
	// Namespace is the pod's namespace (NAMESPACE), "default" when empty.
	Namespace string
	// PodName is the own pod's name (POD_NAME); needed by container, daemonset and
	// same-node pod dependencies.
	PodName string
	// NodeName is the node the pod runs on (NODE_NAME), when the environment sets it;
	// otherwise the resolver reads it from its own pod.
	NodeName string
	// InterfaceName is the NIC whose IP config templates see (INTERFACE_NAME).
	InterfaceName string
	// PodIP is the pod's IP (POD_IP), what templates see when InterfaceName is empty.
	PodIP string
	// Command is the legacy COMMAND split on whitespace; nil when empty or unset.
	Command []string
	// OptionalAfter (ENTRYPOINT_OPTIONAL_AFTER) is how long the dependencies are
	// waited for before the application starts without those still blocking;
	// zero means for ever. The dependency controller reads it to lift the gate.
	OptionalAfter time.Duration

	Services        []ObjectRef
	Jobs            []JobRef
	DaemonSets      []ObjectRef
	Containers      []string
	Pods            []PodRef
	CustomResources []CustomResourceRef
	CEL             []CELRef // objects with a CEL expression each (DEPENDENCY_CEL_JSON)
	Rollouts        []WorkloadRef
	Claims          []ObjectRef // PersistentVolumeClaims
	ConfigMaps      []KeyRef
	Secrets         []KeyRef
	CRDs            []string // CustomResourceDefinition names: plural.group
	Configs         []string // absolute destination paths
	Sockets         []string // absolute paths
	TCP             []string // host:port
	HTTP            []string // http:// or https:// URLs
}

// ObjectRef names a namespaced object; Namespace is always filled in (the pod's
// namespace when the item had no "ns:" prefix).
type ObjectRef struct {
	Namespace string
	Name      string
	// MinReady, for Services only ("name#3"), is how many distinct ready
	// endpoints are required; 0 means one, the original rule.
	MinReady int
}

func (r ObjectRef) String() string { return r.Namespace + "/" + r.Name }

// JobRef selects one Job by name, or every Job matching Labels (all must succeed,
// and at least one must exist). Exactly one of Name and Labels is set.
type JobRef struct {
	Namespace string
	Name      string
	Labels    map[string]string
}

// String is "namespace/name" or "namespace/[key=value,...]".
func (r JobRef) String() string {
	if r.Name != "" {
		return r.Namespace + "/" + r.Name
	}
	return r.Namespace + "/[" + labels.Set(r.Labels).String() + "]"
}

// PodRef selects pods by labels; at least one matching pod must be ready, on this
// node when RequireSameNode is set.
type PodRef struct {
	Namespace       string
	Labels          map[string]string
	RequireSameNode bool
}

// String is "namespace/[key=value,...]", with " on this node" when that is required.
func (r PodRef) String() string {
	s := r.Namespace + "/[" + labels.Set(r.Labels).String() + "]"
	if r.RequireSameNode {
		s += " on this node"
	}
	return s
}

// CustomResourceRef is one object of any kind, core v1 included, that must have every
// listed field value and condition.
type CustomResourceRef struct {
	APIVersion string // "group/version" or "v1"
	Kind       string
	Namespace  string // the pod's namespace when the input left it empty; ignored for cluster-scoped kinds
	Name       string
	Fields     []FieldMatch
	Conditions []ConditionMatch
}

// String is "Kind apiVersion namespace/name": "Connection mariadb.osh.openstack.org/v1alpha1 openstack/nova-db".
func (r CustomResourceRef) String() string {
	return r.Kind + " " + r.APIVersion + " " + r.Namespace + "/" + r.Name
}

// FieldMatch requires the value at a dot-separated Key ("status.phase") to equal
// Value. Value holds JSON: a JSON string matches a string field with that text, and
// also a field whose JSON encoding is that text ("3" matches 3, "true" matches true); any other
// JSON value is compared as JSON.
type FieldMatch struct {
	Key   string
	Value json.RawMessage
}

// ConditionMatch requires a status.conditions entry of Type with Status ("True" when
// the input left it empty).
type ConditionMatch struct {
	Type   string
	Status string
}
