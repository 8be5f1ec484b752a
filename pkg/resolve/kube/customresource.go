package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// CustomResource is ready when the object exists and every listed field value and
// condition matches. It works for any kind the API server serves, core v1 included.
type CustomResource struct {
	Client *Client
	Ref    spec.CustomResourceRef
}

func (c *CustomResource) String() string {
	return fmt.Sprintf("%s %s/%s (%s)", strings.ToLower(c.Ref.Kind), c.Ref.Namespace, c.Ref.Name, c.Ref.APIVersion)
}

// Wait waits until the CustomResource dependency is ready, reporting each change of its status.
func (c *CustomResource) Wait(ctx context.Context, report func(resolve.Status)) error {
	return c.Client.followNamed(ctx, c.Ref.APIVersion, c.Ref.Kind, c.Ref.Namespace, c.Ref.Name, report,
		func(objects []*unstructured.Unstructured) resolve.Status {
			return CustomResourceReadiness(objects, c.Ref)
		})
}

// followNamed follows the object name of kind apiVersion/kind (in namespace,
// when the kind is namespaced) until judge finds it ready. The kind may be
// served only later (a CRD installed by another release), so discovery is
// retried rather than failing; an error listing the object is reported, not
// judged.
func (c *Client) followNamed(ctx context.Context, apiVersion, kind, namespace, name string,
	report func(resolve.Status), judge func([]*unstructured.Unstructured) resolve.Status) error {
	r := reporter{report: report}
	for {
		gvr, namespaced, err := c.resourceFor(ctx, apiVersion, kind)
		if err == nil {
			src := source{resource: gvr, fieldSelector: "metadata.name=" + name}
			if namespaced {
				src.namespace = namespace
			}
			return c.follow(ctx, []source{src}, func(snaps []snapshot) (bool, error) {
				var st resolve.Status
				if snaps[0].err != nil {
					st.Reason = "cannot list: " + shortError(snaps[0].err)
				} else {
					st = judge(snaps[0].objects)
				}
				r.set(st)
				return st.Ready, nil
			})
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.set(resolve.Status{Reason: err.Error()})
		sleep(ctx, c.opts.PollInterval)
	}
}

// CustomResourceReadiness is the custom resource rule over the objects of the
// kind named ref.Name (zero or one): ready once it exists and every field and
// condition of ref matches. The resolver and the dependency controller both
// decide with it. Its reasons name the fields and conditions that do not match,
// never a value of the object: they reach conditions, Events and logs that
// others may read, and an actual value would answer what only the object's
// readers may know (a wanted value is the pod author's guess, so it is not
// repeated either).
func CustomResourceReadiness(objects []*unstructured.Unstructured, ref spec.CustomResourceRef) resolve.Status {
	if len(objects) == 0 {
		return resolve.Status{Reason: "not found"}
	}
	obj := objects[0]
	var unmet []string
	for _, f := range ref.Fields {
		if why := fieldMismatch(obj, f); why != "" {
			unmet = append(unmet, why)
		}
	}
	for _, want := range ref.Conditions {
		got, _, _ := condition(obj.Object, want.Type)
		switch {
		case got == "":
			unmet = append(unmet, fmt.Sprintf("condition %s is absent, want %s", want.Type, want.Status))
		case got != want.Status:
			unmet = append(unmet, fmt.Sprintf("condition %s is not %s", want.Type, want.Status))
		}
	}
	if len(unmet) > 0 {
		return resolve.Status{Reason: strings.Join(unmet, "; ")}
	}
	return resolve.Status{Ready: true}
}

// fieldMismatch says why the field does not hold the wanted value, "" when it
// does, naming the field and no value. Values are compared as JSON so numbers
// and booleans work; a wanted JSON string also matches a field whose JSON text
// it is ("3" matches 3, "\"Ready\"" matches Ready).
func fieldMismatch(obj *unstructured.Unstructured, f spec.FieldMatch) string {
	got, found, err := unstructured.NestedFieldNoCopy(obj.Object, strings.Split(f.Key, ".")...)
	if err != nil || !found {
		return fmt.Sprintf("field %s is absent", f.Key)
	}
	gotJSON, err := json.Marshal(got)
	if err != nil {
		return fmt.Sprintf("field %s cannot be read", f.Key)
	}
	var wantText string
	if err := json.Unmarshal(f.Value, &wantText); err == nil {
		if s, ok := got.(string); ok && s == wantText {
			return ""
		}
		if jsonEqual(gotJSON, []byte(wantText)) {
			return ""
		}
	} else if jsonEqual(gotJSON, f.Value) {
		return ""
	}
	return fmt.Sprintf("field %s does not match", f.Key)
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	// Numbers decode to float64 on both sides, so 3, 3.0 and 3e0 are equal.
	return reflect.DeepEqual(x, y)
}
