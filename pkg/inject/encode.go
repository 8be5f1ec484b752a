package inject

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// The encoders below write parsed dependencies back in the environment contract's
// form, normalized: every namespace spelled out, JSON compact with sorted keys (the
// struct fields are in key order), so what `kubectl describe pod` shows is exactly
// what the resolver will wait for.

// joinObjectRefs writes "namespace:name,...".
func joinObjectRefs(refs []spec.ObjectRef) string {
	var b strings.Builder
	for i, r := range refs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.Namespace)
		b.WriteByte(':')
		b.WriteString(r.Name)
	}
	return b.String()
}

type jobOut struct {
	Labels    map[string]string `json:"labels,omitempty"`
	Name      string            `json:"name,omitempty"`
	Namespace string            `json:"namespace"`
}

func encodeJobs(jobs []spec.JobRef) string {
	if len(jobs) == 0 {
		return ""
	}
	out := make([]jobOut, len(jobs))
	for i, j := range jobs {
		out[i] = jobOut{Labels: j.Labels, Name: j.Name, Namespace: j.Namespace}
	}
	return encodeJSON(out)
}

type podOut struct {
	Labels          map[string]string `json:"labels"`
	Namespace       string            `json:"namespace"`
	RequireSameNode bool              `json:"requireSameNode,omitempty"`
}

func encodePods(pods []spec.PodRef) string {
	if len(pods) == 0 {
		return ""
	}
	out := make([]podOut, len(pods))
	for i, p := range pods {
		out[i] = podOut{Labels: p.Labels, Namespace: p.Namespace, RequireSameNode: p.RequireSameNode}
	}
	return encodeJSON(out)
}

type customResourceOut struct {
	APIVersion string         `json:"apiVersion"`
	Conditions []conditionOut `json:"conditions,omitempty"`
	Fields     []fieldOut     `json:"fields,omitempty"`
	Kind       string         `json:"kind"`
	Name       string         `json:"name"`
	Namespace  string         `json:"namespace"`
}

type conditionOut struct {
	Status string `json:"status"`
	Type   string `json:"type"`
}

type fieldOut struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

func encodeCustomResources(refs []spec.CustomResourceRef) string {
	if len(refs) == 0 {
		return ""
	}
	out := make([]customResourceOut, len(refs))
	for i, r := range refs {
		o := customResourceOut{APIVersion: r.APIVersion, Kind: r.Kind, Name: r.Name, Namespace: r.Namespace}
		for _, c := range r.Conditions {
			o.Conditions = append(o.Conditions, conditionOut{Status: c.Status, Type: c.Type})
		}
		for _, f := range r.Fields {
			o.Fields = append(o.Fields, fieldOut{Key: f.Key, Value: f.Value})
		}
		out[i] = o
	}
	return encodeJSON(out)
}

// encodeJSON encodes v compactly, without HTML escaping (a URL's "&" stays "&").
func encodeJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // strings, maps of strings, and JSON a parser checked
		panic("inject: encoding a parsed dependency: " + err.Error())
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// maxQuotedBytes bounds a name or image that a message repeats from the pod: the
// webhook sees the pod before the API server validates it, so a container name may
// be 100 kB long.
const maxQuotedBytes = 100

// quoted is s in double quotes, for messages; a long s is cut and says how long it was.
func quoted(s string) string {
	if len(s) > maxQuotedBytes {
		return strconv.Quote(prefix(s, maxQuotedBytes)) + "... (" + strconv.Itoa(len(s)) + " bytes in all)"
	}
	return strconv.Quote(s)
}

// joinErrors is errors.Join, except that a single error is returned as itself.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
