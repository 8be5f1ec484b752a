package controller

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// allowList is which kinds custom-resource and CEL dependencies may make the
// controller read: the contract's own kinds (what its other rows read), and
// the resources its operator allowed (Options.AllowedResources). Anything
// else, Nodes and Namespaces included, a pod cannot make the controller watch
// or judge, whatever its annotations or env say.
type allowList struct {
	resources map[schema.GroupResource]bool
	groups    map[string]bool // "*.group"
}

// contractResources are the kinds the contract's rows read, and Services (the
// cycle detector's).
func contractResources(secrets bool) []schema.GroupResource {
	out := []schema.GroupResource{
		endpointSlicesResource.GroupResource(), jobsResource.GroupResource(), podsResource.GroupResource(),
		{Resource: "services"},
		kube.WorkloadResource(spec.WorkloadDeployment).GroupResource(),
		kube.WorkloadResource(spec.WorkloadStatefulSet).GroupResource(),
		kube.WorkloadResource(spec.WorkloadDaemonSet).GroupResource(),
		kube.ClaimsResource.GroupResource(), kube.ConfigMapsResource.GroupResource(),
		kube.CRDsResource.GroupResource(), kube.APIServicesResource.GroupResource(),
	}
	if secrets {
		out = append(out, kube.SecretsResource.GroupResource())
	}
	return out
}

// newAllowList parses the operator's list: "plural.group" or "*.group" each.
func newAllowList(extra []string, secrets bool) (allowList, error) {
	a := allowList{resources: map[schema.GroupResource]bool{}, groups: map[string]bool{}}
	for _, gr := range contractResources(secrets) {
		a.resources[gr] = true
	}
	var bad []string
	for _, item := range extra {
		item = strings.TrimSpace(item)
		resource, group, ok := strings.Cut(item, ".")
		switch {
		case item == "":
		case !ok || resource == "" || group == "" || strings.ContainsAny(item, " /,"):
			bad = append(bad, fmt.Sprintf("%q", item))
		case resource == "*":
			a.groups[group] = true
		default:
			a.resources[schema.GroupResource{Group: group, Resource: resource}] = true
		}
	}
	if len(bad) > 0 {
		return a, fmt.Errorf("allowed custom resources: %s: want plural.group (as RBAC names them, e.g. connections.mariadb.osh.openstack.org) or *.group",
			strings.Join(bad, ", "))
	}
	return a, nil
}

func (a allowList) allows(gvr schema.GroupVersionResource) bool {
	return a.resources[gvr.GroupResource()] || (gvr.Group != "" && a.groups[gvr.Group])
}

// refusal says why a kind is not read, and who can change that.
func refusal(kind string, gvr schema.GroupVersionResource) string {
	return fmt.Sprintf("kind %s (%s) is not one the dependency controller may read: its operator allows custom resources with "+
		"--allowed-custom-resources (chart: controller.customResourceRules); the contract's own kinds need no allowing", kind, resourceName(gvr))
}

// check returns problem when there is one already (the kind is not served),
// else the refusal of a kind that is not allowed, else "".
func (a allowList) check(kind string, gvr schema.GroupVersionResource, problem string) string {
	if problem != "" || a.allows(gvr) {
		return problem
	}
	return refusal(kind, gvr)
}
