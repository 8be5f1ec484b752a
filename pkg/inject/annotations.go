package inject

import (
	"maps"
	"slices"
	"strings"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// AnnotationPrefix starts every annotation this package reads; others are ignored.
const AnnotationPrefix = "entrypoint.io/"

// The annotations other than the dependency kinds' (spec.Kinds), named without
// AnnotationPrefix (docs/webhook.md: the annotation table).
const (
	keyContainers    = "containers"
	keyCommandPrefix = "command." // + container name
	keyTimeout       = "timeout"
	keyWaitFailed    = "wait-for-failed-jobs"
	keyOptionalAfter = "optional-after"
	keyInject        = "inject"
	keyStatus        = "status"
	keyGate          = "gate"
	keyInjectionMode = "injection-mode"
)

// AnnotationStatus is written by Mutate: what it injected, so a second call can tell.
const AnnotationStatus = AnnotationPrefix + keyStatus

// AnnotationInject set to "false" opts a pod out.
const AnnotationInject = AnnotationPrefix + keyInject

// fixedKeys are the annotations with a fixed name, in the order problems with them
// are reported: the dependency kinds' in the contract's order, then the others.
func fixedKeys() []string {
	kinds := spec.Kinds()
	keys := make([]string, 0, len(kinds)+8)
	for _, k := range kinds {
		keys = append(keys, k.Annotation)
	}
	return append(keys, keyContainers, keyTimeout, keyWaitFailed, keyOptionalAfter, keyInject, keyStatus, keyGate, keyInjectionMode)
}

// annotationOf is the annotation of the dependency kind whose variable is env.
func annotationOf(env string) string {
	k, _ := spec.KindOf(env)
	return k.Annotation
}

// annotationName is how messages name an annotation: "annotation entrypoint.io/timeout".
// A long key (an annotation's name may be 63 bytes after its prefix, but the
// webhook sees it before the API server checks) is cut.
func annotationName(key string) string {
	return "annotation " + AnnotationPrefix + truncate(key, maxQuotedBytes)
}

// ourAnnotations returns this package's annotations by name without the prefix,
// values with blanks around them trimmed; nil when there are none.
func ourAnnotations(all map[string]string) map[string]string {
	var ours map[string]string
	for k, v := range all {
		name, ok := strings.CutPrefix(k, AnnotationPrefix)
		if !ok {
			continue
		}
		if ours == nil {
			ours = make(map[string]string, 4)
		}
		ours[name] = strings.TrimSpace(v)
	}
	return ours
}

// sortedKeys returns the names of ours, sorted, so problems come in a stable order.
func sortedKeys(ours map[string]string) []string {
	return slices.Sorted(maps.Keys(ours))
}

// isKnownKey tells whether key (without the prefix) is an annotation of this
// package; fixed are fixedKeys(), made once by the caller.
func isKnownKey(key string, fixed []string) bool {
	if strings.HasPrefix(key, keyCommandPrefix) {
		return true
	}
	return slices.Contains(fixed, key)
}

// unknownKeyProblem words the problem with an annotation this package does not know:
// most likely a misspelt one, so the closest known name is suggested.
func unknownKeyProblem(key string, containerNames []string) string {
	msg := annotationName(key) + ": unknown annotation"
	if key == "command" || key == "commands" {
		example := "app"
		if len(containerNames) > 0 {
			example = truncate(containerNames[0], maxQuotedBytes)
		}
		return msg + "; expected " + AnnotationPrefix + keyCommandPrefix + "<container>, e.g. " +
			AnnotationPrefix + keyCommandPrefix + example
	}
	candidates := fixedKeys()
	for _, c := range containerNames {
		if len(candidates) == maxSuggestCandidates {
			break
		}
		if len(c) <= maxSuggestKey {
			candidates = append(candidates, keyCommandPrefix+c)
		}
	}
	if best := closest(key, candidates); best != "" {
		return msg + "; did you mean " + AnnotationPrefix + best + "?"
	}
	fixed := fixedKeys()
	known := make([]string, 0, len(fixed)+1)
	for _, k := range fixed {
		known = append(known, AnnotationPrefix+k)
	}
	known = append(known, AnnotationPrefix+keyCommandPrefix+"<container>")
	return msg + "; expected one of " + strings.Join(known, ", ")
}

// Bounds of the "did you mean" search, which costs len(key) × len(candidate) per
// candidate: keys and names longer than maxSuggestKey are no typo of a known name,
// and a pod with more than maxSuggestCandidates containers only gets suggestions
// among the fixed names and its first containers.
const (
	maxSuggestKey        = 64
	maxSuggestCandidates = 32
)

// closest returns the candidate nearest to key by edit distance, compared without
// case and with '_' as '-' (DEPENDENCY_SERVICE is near dependency-service), or ""
// when none is near enough to be a plausible typo. A key longer than maxSuggestKey
// gets none, and candidates after the first maxSuggestCandidates are not
// considered; a candidate much longer than key costs nothing (editDistance's limit).
func closest(key string, candidates []string) string {
	if len(key) > maxSuggestKey {
		return ""
	}
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "-") }
	k := norm(key)
	best, bestDistance := "", max(2, len(k)/4)+1
	for i, c := range candidates {
		if i == maxSuggestCandidates {
			break
		}
		if d := editDistance(k, norm(c), bestDistance); d < bestDistance {
			best, bestDistance = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes, when it is
// below limit; otherwise some number not below limit, found without finishing the
// table once no path can come back under it.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit // every later row is at least this row's minimum
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
