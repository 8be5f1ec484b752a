package inject

import (
	"fmt"
	"strconv"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck/admit"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// maxCELProblemBytes is how much of why an expression is refused a denial shows:
// CEL's messages quote the expression's line.
const maxCELProblemBytes = 400

// checkCEL compiles the CEL expressions of the annotation key, already parsed
// into refs, and reports, at each refused item's expression, one that does not
// compile, is not a bool, is too long or may cost too much; and a list longer
// than spec.MaxCELItems (a long value is parsed in chunks, each within it). It
// tells whether there were no problems.
func (pl *planner) checkCEL(key string, refs []spec.CELRef) bool {
	path := annotationPath(key)
	if len(refs) > spec.MaxCELItems {
		pl.invalid(path, fmt.Sprintf("annotation %s: has %d items, more than %d", annotationName(key), len(refs), spec.MaxCELItems))
		return false
	}
	good := true
	for i, r := range refs {
		if pl.ctx.Err() != nil {
			return false // newPlan reports why
		}
		if _, err := admit.Compile(r.Expression); err != nil {
			good = false
			pl.invalid(path.Index(i).Child("expression"), fmt.Sprintf("annotation %s: item %d (%s): expression %s %s",
				annotationName(key), i+1, r, strconv.Quote(truncate(r.Expression, maxQuotedBytes)), truncate(err.Error(), maxCELProblemBytes)))
		}
	}
	return good
}
