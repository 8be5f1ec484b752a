package spec

import (
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"
)

// A check returns nil when the value is fine, or Kubernetes' reasons why it is not.
type check func(string) []string

// The names Kubernetes gives these formats, as used in its own messages.
const (
	dns1123Label     = "a DNS-1123 label"
	dns1123Subdomain = "a DNS-1123 subdomain"
	dns1035Label     = "a DNS-1035 label"
)

// invalid returns "" when ok accepts v, else the rest of a sentence that began with
// what v is ("has namespace "): `"Foo", which is not a DNS-1123 label (reasons)`.
func invalid(v, form string, ok check) string {
	msgs := ok(v)
	if len(msgs) == 0 {
		return ""
	}
	return quote(v, maxQuotedItem) + ", which is not " + form + " (" + strings.Join(msgs, "; ") + ")"
}

// labelsProblems checks a label selector's keys and values; what names the selector
// in the messages ("labels"). Keys are visited sorted so messages are stable.
func labelsProblems(what string, labels map[string]string) []string {
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if p := invalid(k, "a label key", content.IsLabelKey); p != "" {
			problems = append(problems, "has "+what+" key "+p)
		}
		if p := invalid(labels[k], "a label value", content.IsLabelValue); p != "" {
			problems = append(problems, "has "+what+"["+quote(k, maxQuotedItem)+"] "+p)
		}
	}
	return problems
}

// namespaceProblem checks a namespace given in a JSON item; empty means "the pod's".
func namespaceProblem(ns string) string {
	if ns == "" {
		return ""
	}
	if p := invalid(ns, dns1123Label, validation.IsDNS1123Label); p != "" {
		return "has namespace " + p
	}
	return ""
}

// orDefault returns ns, or def when ns is empty.
func orDefault(ns, def string) string {
	if ns == "" {
		return def
	}
	return ns
}

// notA returns "" when ok accepts v, else "is not <form> (reasons)", for items that
// are themselves the name being checked.
func notA(v, form string, ok check) string {
	msgs := ok(v)
	if len(msgs) == 0 {
		return ""
	}
	return "is not " + form + " (" + strings.Join(msgs, "; ") + ")"
}
