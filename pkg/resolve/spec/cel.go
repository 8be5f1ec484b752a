package spec

import (
	"encoding/json"
	"fmt"
	"strings"
)

// EnvCEL is the variable of the CEL dependencies (docs/resolver.md: "Environment contract").
const EnvCEL = "DEPENDENCY_CEL_JSON"

// CELRef is one object of any kind but v1 Secret that is ready when Expression, a
// CEL expression over the variable object (the object as JSON), is true.
type CELRef struct {
	APIVersion string // "group/version" or "v1"
	Kind       string
	Namespace  string // the pod's namespace when the input left it empty; ignored for cluster-scoped kinds
	Name       string
	Expression string
}

// String is "Kind apiVersion namespace/name".
func (r CELRef) String() string {
	return r.Kind + " " + r.APIVersion + " " + r.Namespace + "/" + r.Name
}

// Bounds of DEPENDENCY_CEL_JSON: the webhook reads it from annotations anyone who
// may create a pod writes, so neither an expression nor the list may be large.
const (
	// MaxCELExpressionBytes is the longest expression accepted.
	MaxCELExpressionBytes = 2048
	// MaxCELItems is the most CEL dependencies of one pod.
	MaxCELItems = 16
)

const celJSONForm = `[{"apiVersion":"v1 or group/version","kind":"...","name":"...","namespace"?:"...",` +
	`"expression":"a CEL expression over object, such as object.status.readyReplicas >= 2"},...]`

// celJSON is one item of DEPENDENCY_CEL_JSON, as written and as formatted (fields
// in key order, so the formatted keys are sorted).
type celJSON struct {
	APIVersion string `json:"apiVersion"`
	Expression string `json:"expression"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace"`
}

// celItem is how Kind.Format writes a CEL dependency.
func celItem(r CELRef) any {
	return celJSON{APIVersion: r.APIVersion, Expression: r.Expression, Kind: r.Kind, Name: r.Name, Namespace: r.Namespace}
}

// ParseCELJSON parses DEPENDENCY_CEL_JSON: a JSON array of objects of any kind but
// Secrets, each with a CEL expression over it. It checks the object's coordinates
// and the expression's presence and length only; compiling it is the resolver's
// and the webhook's (package celcheck), so that this parser stays light. The
// namespace defaults to defaultNamespace.
func ParseCELJSON(value, defaultNamespace string) ([]CELRef, error) {
	refs, err := parseJSONArray(value, celJSONForm, func(item json.RawMessage) (CELRef, []string) {
		var in celJSON
		if problems := decodeObject(item, &in, ""); problems != nil {
			return CELRef{}, problems
		}
		refused := ""
		if in.APIVersion == "v1" && in.Kind == "Secret" {
			// An expression's truth would tell a Secret's values apart, and the
			// controller keeps no values of Secrets.
			refused = `has kind Secret of v1, which a CEL dependency may not read (use dependency-secret to wait for a key)`
		}
		problems := objectProblems(in.APIVersion, in.Kind, in.Namespace, in.Name, refused)
		add := func(p string) { problems = append(problems, p) }
		switch {
		case strings.TrimSpace(in.Expression) == "":
			add(`has no "expression"`)
		case len(in.Expression) > MaxCELExpressionBytes:
			add(fmt.Sprintf("has an expression of %d bytes, more than %d", len(in.Expression), MaxCELExpressionBytes))
		}
		return CELRef{
			APIVersion: in.APIVersion,
			Kind:       in.Kind,
			Namespace:  orDefault(in.Namespace, defaultNamespace),
			Name:       in.Name,
			Expression: in.Expression,
		}, problems
	})
	if err != nil {
		return nil, err
	}
	if len(refs) > MaxCELItems {
		return nil, &ValueError{Value: value, Problem: fmt.Sprintf("has %d items, more than %d", len(refs), MaxCELItems), Expected: celJSONForm}
	}
	return refs, nil
}
