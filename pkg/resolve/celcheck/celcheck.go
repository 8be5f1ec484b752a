// Package celcheck compiles and evaluates the CEL expressions of
// DEPENDENCY_CEL_JSON (spec.CELRef): one variable, object, the object as JSON,
// and a bool result. Expressions come from pod annotations, hostile input: the
// webhook refuses at admission what does not compile, is not a bool, breaks the
// rules of matches (MaxRegexInstructions) or may cost more than the limit; the
// resolver and the controller refuse the same calls of matches, and evaluate
// under the same limit at run time, the controller through an Evaluator. spec
// stays free of cel-go. This package parses and evaluates with cel-go's
// parser and interpreter only, light enough for the resolver; package admit
// type-checks and estimates the cost, for the webhook and the controller.
package celcheck

import (
	"strings"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

const (
	// Variable is the name the expressions read the object by.
	Variable = "object"
	// CostLimit bounds one evaluation and, estimated, one expression at admission,
	// in CEL cost units (about one per operation; Kubernetes allows 1,000,000 per
	// validation expression too).
	CostLimit = 1_000_000
	// EstimatedSize is the size the admission estimate assumes for every list,
	// map and string of the object, whose schema it does not know: one loop over
	// a field fits the limit, a loop in a loop does not.
	EstimatedSize = 10_000
	// EvalTimeout bounds one evaluation's time as well: cel-go's cost tracking
	// grows with the square of a loop's length, so a loop over a list of a few
	// hundred thousand items stays under CostLimit for a minute.
	EvalTimeout = 100 * time.Millisecond
	// interruptEvery is how many loop iterations pass between checks of the
	// evaluation's context.
	interruptEvery = 100
	// maxRecursion bounds the parser's nesting.
	maxRecursion = 100
	// maxCodePoints bounds an expression's length in characters too.
	maxCodePoints = spec.MaxCELExpressionBytes
)

// OneLine folds CEL's multi-line issue text (message, source line, caret).
func OneLine(s string) string {
	s = strings.TrimPrefix(s, "ERROR: <input>:")
	return strings.Join(strings.Fields(s), " ")
}
