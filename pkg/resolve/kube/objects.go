package kube

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// The resources of claim, ConfigMap, Secret and CRD dependencies.
var (
	ClaimsResource      = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
	ConfigMapsResource  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	SecretsResource     = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	CRDsResource        = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	APIServicesResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
)

// Claim is ready when the PersistentVolumeClaim is Bound.
type Claim struct {
	Client *Client
	Ref    spec.ObjectRef
}

func (d *Claim) String() string { return "pvc " + d.Ref.String() }

// Wait waits until the Claim dependency is ready, reporting each change of its status.
func (d *Claim) Wait(ctx context.Context, report func(resolve.Status)) error {
	src := source{resource: ClaimsResource, namespace: d.Ref.Namespace, fieldSelector: "metadata.name=" + d.Ref.Name}
	return d.Client.followOne(ctx, src, report, ClaimReadiness)
}

// ClaimReadiness is the claim rule over the claim named by the dependency (zero
// or one): ready once its phase is Bound. The resolver and the dependency
// controller both decide with it.
func ClaimReadiness(objects []*unstructured.Unstructured) resolve.Status {
	if len(objects) == 0 {
		return resolve.Status{Reason: "not found"}
	}
	pvc := objects[0]
	phase := nestedString(pvc.Object, "status", "phase")
	if phase == "Bound" {
		return resolve.Status{Ready: true}
	}
	if phase == "" {
		phase = "unset"
	}
	return waiting("phase %s, not Bound", phase)
}

// ConfigMap is ready when the ConfigMap exists and has the key asked for.
type ConfigMap struct {
	Client *Client
	Ref    spec.KeyRef
}

func (d *ConfigMap) String() string { return "configmap " + d.Ref.String() }

// Wait waits until the ConfigMap dependency is ready, reporting each change of its status.
func (d *ConfigMap) Wait(ctx context.Context, report func(resolve.Status)) error {
	src := source{resource: ConfigMapsResource, namespace: d.Ref.Namespace, fieldSelector: "metadata.name=" + d.Ref.Name}
	return d.Client.followOne(ctx, src, report, func(objects []*unstructured.Unstructured) resolve.Status {
		return KeyReadiness(objects, d.Ref.Key)
	})
}

// Secret is ready when the Secret exists and has the key asked for. It is read
// with GET of that one Secret only, never listed or watched: a ServiceAccount
// that may list or watch Secrets reads every Secret of the namespace. Its values
// are dropped as soon as it is read.
type Secret struct {
	Client *Client
	Ref    spec.KeyRef
}

func (d *Secret) String() string { return "secret " + d.Ref.String() }

// Wait waits until the Secret dependency is ready, reporting each change of its status.
func (d *Secret) Wait(ctx context.Context, report func(resolve.Status)) error {
	src := source{resource: SecretsResource, namespace: d.Ref.Namespace, fieldSelector: "metadata.name=" + d.Ref.Name, getOnly: true}
	return d.Client.followOne(ctx, src, report, func(objects []*unstructured.Unstructured) resolve.Status {
		return KeyReadiness(objects, d.Ref.Key)
	})
}

// KeyReadiness is the ConfigMap and Secret rule over the object named by the
// dependency (zero or one): ready once it exists and, when key is not "", has
// it in data or binaryData. Only the keys are looked at, so it decides the same
// on an object whose values were dropped (KeysOnly). The resolver and the
// dependency controller both decide with it.
func KeyReadiness(objects []*unstructured.Unstructured, key string) resolve.Status {
	if len(objects) == 0 {
		return resolve.Status{Reason: "not found"}
	}
	if key == "" {
		return resolve.Status{Ready: true}
	}
	for _, field := range []string{"data", "binaryData"} {
		if m, ok := nestedMap(objects[0].Object, field); ok {
			if _, ok := m[key]; ok {
				return resolve.Status{Ready: true}
			}
		}
	}
	return waiting("no key %s", key)
}

// KeysOnly drops the values of a ConfigMap's or Secret's data, stringData and
// binaryData, keeping the keys (with empty values) and the metadata, and the
// last-applied annotation, which holds the values too. Nothing else of the
// object is needed to decide KeyReadiness.
func KeysOnly(obj *unstructured.Unstructured) {
	for _, field := range []string{"data", "stringData", "binaryData"} {
		if m, ok := nestedMap(obj.Object, field); ok {
			for k := range m {
				m[k] = ""
			}
		}
	}
	if ann := obj.GetAnnotations(); ann != nil {
		if _, ok := ann[lastAppliedAnnotation]; ok {
			delete(ann, lastAppliedAnnotation)
			obj.SetAnnotations(ann)
		}
	}
	unstructured.RemoveNestedField(obj.Object, "metadata", "managedFields")
}

// lastAppliedAnnotation is where kubectl apply keeps the whole object, values
// included.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// CRD is ready when the CustomResourceDefinition is Established and every
// APIService of its group is Available.
type CRD struct {
	Client *Client
	Name   string
}

func (d *CRD) String() string { return "crd " + d.Name }

// Wait waits until the CRD dependency is ready, reporting each change of its status.
func (d *CRD) Wait(ctx context.Context, report func(resolve.Status)) error {
	r := reporter{report: report}
	sources := []source{
		{resource: CRDsResource, fieldSelector: "metadata.name=" + d.Name},
		// A cluster has some tens of APIServices; the group is not selectable.
		{resource: APIServicesResource},
	}
	return d.Client.follow(ctx, sources, func(snaps []snapshot) (bool, error) {
		var st resolve.Status
		switch {
		case snaps[0].err != nil:
			st.Reason = "cannot list customresourcedefinitions: " + shortError(snaps[0].err)
		case snaps[1].err != nil && apierrors.IsForbidden(snaps[1].err):
			// RBAC written for the CRD alone (helm-toolkit style): the APIService
			// is an extra the resolver is not allowed to see, so the CRD decides.
			d.Client.logOnce("apiservices forbidden", "cannot read apiservices; judging CRDs by their Established condition alone",
				"error", shortError(snaps[1].err), "hint", "grant get, list and watch on apiservices.apiregistration.k8s.io")
			st = CRDReadiness(snaps[0].objects)
		case snaps[1].err != nil:
			st.Reason = "cannot list apiservices: " + shortError(snaps[1].err)
		default:
			if st = CRDReadiness(snaps[0].objects); st.Ready {
				st = APIServicesReadiness(snaps[1].objects, CRDGroup(d.Name))
			}
		}
		r.set(st)
		return st.Ready, nil
	})
}

// CRDGroup is the API group of the CustomResourceDefinition called name
// (plural.group).
func CRDGroup(name string) string {
	_, group, _ := strings.Cut(name, ".")
	return group
}

// CRDReadiness is the first half of the CRD rule, over the definition named by
// the dependency (zero or one): ready once its condition Established is True.
func CRDReadiness(objects []*unstructured.Unstructured) resolve.Status {
	if len(objects) == 0 {
		return resolve.Status{Reason: "not found"}
	}
	status, reason, message := condition(objects[0].Object, "Established")
	if status == "True" {
		return resolve.Status{Ready: true}
	}
	if status == "" {
		return resolve.Status{Reason: "not established yet"}
	}
	return resolve.Status{Reason: strings.TrimSuffix(fmt.Sprintf("not established: %s: %s", reason, message), ": ")}
}

// APIServicesReadiness is the second half of the CRD rule, over the
// APIServices of the cluster: every one of group is Available (those the API
// server registers for a CRD's versions are once it serves them; one of an
// aggregated server is once that server answers). None of the group is fine.
func APIServicesReadiness(objects []*unstructured.Unstructured, group string) resolve.Status {
	var unavailable []string
	for _, svc := range objects {
		if nestedString(svc.Object, "spec", "group") != group {
			continue
		}
		if status, reason, message := condition(svc.Object, "Available"); status != "True" {
			why := "not available yet"
			if status != "" {
				why = strings.TrimSuffix(fmt.Sprintf("not available: %s: %s", reason, message), ": ")
			}
			unavailable = append(unavailable, "apiservice "+svc.GetName()+" "+why)
		}
	}
	if len(unavailable) > 0 {
		return resolve.Status{Reason: strings.Join(unavailable, "; ")}
	}
	return resolve.Status{Ready: true}
}

// followOne follows a single source and decides with rule.
func (c *Client) followOne(ctx context.Context, src source, report func(resolve.Status), rule func([]*unstructured.Unstructured) resolve.Status) error {
	r := reporter{report: report}
	return c.follow(ctx, []source{src}, func(snaps []snapshot) (bool, error) {
		var st resolve.Status
		if snaps[0].err != nil {
			st.Reason = "cannot read " + src.resource.Resource + ": " + shortError(snaps[0].err)
		} else {
			st = rule(snaps[0].objects)
		}
		r.set(st)
		return st.Ready, nil
	})
}
