package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

const customResourcesJSONForm = `[{"apiVersion":"v1 or group/version","kind":"...","name":"...","namespace"?:"...",` +
	`"fields"?:[{"key":"a.b","value":...},...],"conditions"?:[{"type":"...","status"?:"True|False|Unknown"},...]},...]`

// customResourceJSON is one item of DEPENDENCY_CUSTOM_RESOURCE, as written and as
// formatted (fields in key order, so the formatted keys are sorted). Fields and
// conditions stay raw so that each is decoded, and its mistakes named, on its own.
type customResourceJSON struct {
	APIVersion string            `json:"apiVersion"`
	Conditions []json.RawMessage `json:"conditions,omitempty"`
	Fields     []json.RawMessage `json:"fields,omitempty"`
	Kind       string            `json:"kind"`
	Name       string            `json:"name"`
	Namespace  string            `json:"namespace"`
}

type fieldJSON struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

type conditionJSON struct {
	Status string `json:"status"`
	Type   string `json:"type"`
}

// customResourceItem is how Kind.Format writes an object to wait for.
func customResourceItem(r CustomResourceRef) any {
	out := customResourceJSON{APIVersion: r.APIVersion, Kind: r.Kind, Name: r.Name, Namespace: r.Namespace}
	for _, c := range r.Conditions {
		out.Conditions = append(out.Conditions, json.RawMessage(encodeJSON(conditionJSON{Status: c.Status, Type: c.Type})))
	}
	for _, f := range r.Fields {
		out.Fields = append(out.Fields, json.RawMessage(encodeJSON(fieldJSON(f))))
	}
	return out
}

// ParseCustomResourcesJSON parses DEPENDENCY_CUSTOM_RESOURCE: a JSON array of objects
// of any kind, core v1 included, each with the field values and conditions it must
// have. A field's value is kept as the raw JSON given; a condition's status defaults
// to "True". The namespace defaults to defaultNamespace.
func ParseCustomResourcesJSON(value, defaultNamespace string) ([]CustomResourceRef, error) {
	return parseJSONArray(value, customResourcesJSONForm, func(item json.RawMessage) (CustomResourceRef, []string) {
		var in customResourceJSON
		if problems := decodeObject(item, &in, ""); problems != nil {
			return CustomResourceRef{}, problems
		}
		problems := objectProblems(in.APIVersion, in.Kind, in.Namespace, in.Name, "")
		ref := CustomResourceRef{
			APIVersion: in.APIVersion,
			Kind:       in.Kind,
			Namespace:  orDefault(in.Namespace, defaultNamespace),
			Name:       in.Name,
		}
		for i, raw := range in.Fields {
			f, fieldProblems := parseFieldMatch(raw, fmt.Sprintf("fields[%d]", i))
			problems = append(problems, fieldProblems...)
			ref.Fields = append(ref.Fields, f)
		}
		for i, raw := range in.Conditions {
			c, conditionProblems := parseConditionMatch(raw, fmt.Sprintf("conditions[%d]", i))
			problems = append(problems, conditionProblems...)
			ref.Conditions = append(ref.Conditions, c)
		}
		return ref, problems
	})
}

func parseFieldMatch(raw json.RawMessage, where string) (FieldMatch, []string) {
	var in fieldJSON
	if problems := decodeObject(raw, &in, where); problems != nil {
		return FieldMatch{}, problems
	}
	var problems []string
	switch {
	case in.Key == "":
		problems = append(problems, "has "+where+` without "key"`)
	case strings.HasPrefix(in.Key, ".") || strings.HasSuffix(in.Key, ".") || strings.Contains(in.Key, ".."):
		problems = append(problems, "has "+where+".key "+quote(in.Key, maxQuotedItem)+
			`, which has an empty segment (expected a dot path such as "status.phase")`)
	}
	if in.Value == nil {
		problems = append(problems, "has "+where+` without "value"`)
	}
	return FieldMatch{Key: in.Key, Value: bytes.TrimSpace(in.Value)}, problems
}

func parseConditionMatch(raw json.RawMessage, where string) (ConditionMatch, []string) {
	var in conditionJSON
	if problems := decodeObject(raw, &in, where); problems != nil {
		return ConditionMatch{}, problems
	}
	var problems []string
	if in.Type == "" {
		problems = append(problems, "has "+where+` without "type"`)
	}
	// Condition statuses are case-sensitive: "true" would never match, so it is
	// refused rather than waited on forever.
	switch in.Status {
	case "":
		in.Status = "True"
	case "True", "False", "Unknown":
	default:
		problems = append(problems, "has "+where+".status "+quote(in.Status, maxQuotedItem)+", which is not True, False or Unknown")
	}
	return ConditionMatch{Type: in.Type, Status: in.Status}, problems
}

// apiVersionProblem checks "v1" (core) or "group/version".
func apiVersionProblem(apiVersion string) string {
	if apiVersion == "" {
		return `has no "apiVersion"`
	}
	group, version, hasGroup := strings.Cut(apiVersion, "/")
	if !hasGroup {
		group, version = "", apiVersion
	}
	if (hasGroup && group == "") || version == "" || strings.Contains(version, "/") {
		return "has apiVersion " + quote(apiVersion, maxQuotedItem) + `, which is not "v1" or "group/version"`
	}
	if p := invalid(group, "an API group (a DNS-1123 subdomain)", validation.IsDNS1123Subdomain); hasGroup && p != "" {
		return "has apiVersion " + quote(apiVersion, maxQuotedItem) + " with group " + p
	}
	if p := invalid(version, "an API version (a DNS-1035 label)", validation.IsDNS1035Label); p != "" {
		return "has apiVersion " + quote(apiVersion, maxQuotedItem) + " with version " + p
	}
	return ""
}

// kindCheck accepts what the API server accepts as a CRD kind: a DNS-1035 label once
// lower-cased ("ConfigMap", "MariaDBConnection").
func kindCheck(kind string) []string {
	msgs := validation.IsDNS1035Label(strings.ToLower(kind))
	for i := range msgs {
		msgs[i] = "once lower-cased, " + msgs[i]
	}
	return msgs
}

// prefixed returns prefix+p, or "" when p is "".
func prefixed(prefix, p string) string {
	if p == "" {
		return ""
	}
	return prefix + p
}

// objectProblems checks the coordinates of the one object an item names: its
// apiVersion, kind (kindRefused, when not "", is why this kind may not be
// named), name and namespace.
func objectProblems(apiVersion, kind, namespace, name, kindRefused string) []string {
	var problems []string
	add := func(p string) {
		if p != "" {
			problems = append(problems, p)
		}
	}
	add(apiVersionProblem(apiVersion))
	switch {
	case kind == "":
		add(`has no "kind"`)
	case kindRefused != "":
		add(kindRefused)
	default:
		add(prefixed("has kind ", invalid(kind, "a kind", kindCheck)))
	}
	if name == "" {
		add(`has no "name"`)
	} else {
		add(prefixed("has name ", invalid(name, dns1123Subdomain, validation.IsDNS1123Subdomain)))
	}
	add(namespaceProblem(namespace))
	return problems
}
