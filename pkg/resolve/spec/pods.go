package spec

import "encoding/json"

const podsJSONForm = `[{"labels":{"key":"value",...},"namespace"?:"...","requireSameNode"?:true|false},...]`

// podJSON is one item of DEPENDENCY_POD_JSON, as written and as formatted (fields
// in key order, so the formatted keys are sorted).
type podJSON struct {
	Labels          map[string]string `json:"labels"`
	Namespace       string            `json:"namespace"`
	RequireSameNode bool              `json:"requireSameNode,omitempty"`
}

// podItem is how Kind.Format writes a pod selector.
func podItem(r PodRef) any {
	return podJSON{Labels: r.Labels, Namespace: r.Namespace, RequireSameNode: r.RequireSameNode}
}

// ParsePodsJSON parses DEPENDENCY_POD_JSON: a JSON array of label selectors, each in
// namespace or defaultNamespace. Labels are required: an empty selector would match
// every pod, and so resolve on any ready pod at all.
func ParsePodsJSON(value, defaultNamespace string) ([]PodRef, error) {
	return parseJSONArray(value, podsJSONForm, func(item json.RawMessage) (PodRef, []string) {
		var in podJSON
		if problems := decodeObject(item, &in, ""); problems != nil {
			return PodRef{}, problems
		}
		var problems []string
		if len(in.Labels) == 0 {
			problems = append(problems, `has no "labels" (an empty selector would match every pod)`)
		}
		problems = append(problems, labelsProblems("labels", in.Labels)...)
		if p := namespaceProblem(in.Namespace); p != "" {
			problems = append(problems, p)
		}
		return PodRef{
			Namespace:       orDefault(in.Namespace, defaultNamespace),
			Labels:          in.Labels,
			RequireSameNode: in.RequireSameNode,
		}, problems
	})
}
