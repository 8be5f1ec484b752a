package spec

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// The forms of the comma-separated variables, as told to the person who got one wrong.
const (
	objectListForm = "[namespace:]name,..."
	serviceForm    = "[namespace:]name[#n],..."
	namesForm      = "name,..."
	pathsForm      = "/absolute/path,..."
	tcpForm        = "host:port,..."
	httpForm       = "http(s)://host[:port][/path],..."
)

// ParseServiceList parses "[namespace:]name[#n],..." naming Services: names are
// DNS-1035 labels, as Service names must be. Items without a namespace get
// defaultNamespace. The optional "#n" (n ≥ 1) asks for n distinct ready endpoints;
// '#' is in no Service name, so no value the original accepted means anything else.
func ParseServiceList(value, defaultNamespace string) ([]ObjectRef, error) {
	ref := objectRefParser(defaultNamespace, dns1035Label, validation.IsDNS1035Label)
	return parseList(value, serviceForm, func(item string) (ObjectRef, []string) {
		item, count, hasCount := strings.Cut(item, "#")
		r, problems := ref(item)
		if !hasCount {
			return r, problems
		}
		n, err := strconv.Atoi(count)
		switch {
		case err != nil || strings.HasPrefix(count, "+"):
			problems = append(problems, "has minimum "+strconv.Quote(count)+" after '#', not a whole number")
		case n < 1:
			problems = append(problems, "has minimum "+count+" after '#', not at least 1")
		case n > 1:
			r.MinReady = n // #1 is the default rule, written without it
		}
		return r, problems
	})
}

// ParseObjectList parses "[namespace:]name,..." naming Jobs or DaemonSets: names are
// DNS-1123 subdomains. Items without a namespace get defaultNamespace; duplicates
// are dropped, the first kept.
func ParseObjectList(value, defaultNamespace string) ([]ObjectRef, error) {
	return parseList(value, objectListForm, objectRefParser(defaultNamespace, dns1123Subdomain, validation.IsDNS1123Subdomain))
}

// ParseNames parses "name,..." of containers of this pod: DNS-1123 labels.
func ParseNames(value string) ([]string, error) {
	return parseList(value, namesForm, func(item string) (string, []string) {
		if p := notA(item, dns1123Label, validation.IsDNS1123Label); p != "" {
			return "", []string{p}
		}
		return item, nil
	})
}

// SplitCommand splits the legacy COMMAND on whitespace, as the original did; nil when
// value is blank. Items are never empty.
func SplitCommand(value string) []string {
	argv := strings.Fields(value)
	if len(argv) == 0 {
		return nil
	}
	return argv
}

// parseList splits value on commas, trims blanks around each item and parses each
// with parseItem, which returns the problems of an item it rejects. A blank value is
// no items; an empty item is an error. Every problem of every item is reported.
// Duplicates are dropped, the first kept, so that order stays as written.
func parseList[T comparable](value, expected string, parseItem func(item string) (T, []string)) ([]T, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, nil
	}
	items := strings.Split(value, ",")
	var (
		out      []T
		seen     = make(map[T]bool, len(items))
		problems []error
	)
	for i, item := range items {
		item = strings.TrimSpace(item)
		report := func(problem string) {
			problems = append(problems, &ValueError{
				Value:    value,
				Item:     i + 1,
				ItemText: shownItem(item, len(items)),
				Problem:  problem,
				Expected: expected,
			})
		}
		if item == "" {
			report("is empty")
			continue
		}
		v, itemProblems := parseItem(item)
		for _, p := range itemProblems {
			report(p)
		}
		if len(itemProblems) == 0 && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	if len(problems) > 0 {
		return nil, joinErrors(problems)
	}
	return out, nil
}

// shownItem is the item to quote beside "item N": only when there is more than one
// item, since a single item is the value itself.
func shownItem(item string, count int) string {
	if count < 2 {
		return ""
	}
	return item
}

// objectRefParser parses one "[namespace:]name" item.
func objectRefParser(defaultNamespace, nameForm string, nameOK check) func(string) (ObjectRef, []string) {
	return func(item string) (ObjectRef, []string) {
		ns, name, hasNamespace := strings.Cut(item, ":")
		if !hasNamespace {
			ns, name = defaultNamespace, item
		}
		if strings.Contains(name, ":") {
			return ObjectRef{}, []string{"has more than one ':'"}
		}
		var problems []string
		switch {
		case !hasNamespace:
		case ns == "":
			problems = append(problems, "has an empty namespace before ':'")
		default:
			if p := invalid(ns, dns1123Label, validation.IsDNS1123Label); p != "" {
				problems = append(problems, "has namespace "+p)
			}
		}
		if name == "" {
			problems = append(problems, "has an empty name after ':'")
		} else if p := invalid(name, nameForm, nameOK); p != "" {
			problems = append(problems, "has name "+p)
		}
		return ObjectRef{Namespace: ns, Name: name}, problems
	}
}
