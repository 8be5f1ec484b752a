package spec

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/util/validation"
)

const jobsJSONForm = `[{"name":"..."} or {"labels":{"key":"value",...}}, either with "namespace"?:"...",...]`

// jobJSON is one item of DEPENDENCY_JOBS_JSON, as written and as formatted (fields
// in key order, so the formatted keys are sorted).
type jobJSON struct {
	Labels    map[string]string `json:"labels,omitempty"`
	Name      string            `json:"name,omitempty"`
	Namespace string            `json:"namespace"`
}

// jobItem is how Kind.Format writes a job.
func jobItem(r JobRef) any { return jobJSON{Labels: r.Labels, Name: r.Name, Namespace: r.Namespace} }

// ParseJobsJSON parses DEPENDENCY_JOBS_JSON: a JSON array of jobs, each named or
// selected by labels (exactly one of the two), in namespace or defaultNamespace.
func ParseJobsJSON(value, defaultNamespace string) ([]JobRef, error) {
	return parseJSONArray(value, jobsJSONForm, func(item json.RawMessage) (JobRef, []string) {
		var in jobJSON
		if problems := decodeObject(item, &in, ""); problems != nil {
			return JobRef{}, problems
		}
		var problems []string
		switch {
		case in.Name != "" && len(in.Labels) > 0:
			problems = append(problems, `has both "name" and "labels" (give one)`)
		case in.Name == "" && len(in.Labels) == 0:
			problems = append(problems, `has neither "name" nor non-empty "labels"`)
		case in.Name != "":
			if p := invalid(in.Name, dns1123Subdomain, validation.IsDNS1123Subdomain); p != "" {
				problems = append(problems, "has name "+p)
			}
		default:
			problems = append(problems, labelsProblems("labels", in.Labels)...)
		}
		if p := namespaceProblem(in.Namespace); p != "" {
			problems = append(problems, p)
		}
		ref := JobRef{Namespace: orDefault(in.Namespace, defaultNamespace), Name: in.Name}
		if in.Name == "" {
			ref.Labels = in.Labels
		}
		return ref, problems
	})
}
