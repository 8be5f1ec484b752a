// Package celcheck compiles and evaluates the CEL expressions of
// DEPENDENCY_CEL_JSON (spec.CELRef): one variable, object, the object as JSON,
// and a bool result. Expressions come from pod annotations, hostile input: the
// webhook refuses at admission what does not compile, is not a bool, or may cost
// more than the limit; the resolver and the controller evaluate under the same
// limit at run time. spec stays free of cel-go; this package is what needs it.
package celcheck

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

const (
	// Variable is the name the expressions read the object by.
	Variable = "object"
	// CostLimit bounds one evaluation and, estimated, one expression at admission,
	// in CEL cost units (about one per operation; Kubernetes allows 1,000,000 per
	// validation expression too).
	CostLimit = 1_000_000
	// estimatedSize is the size the admission estimate assumes for every list,
	// map and string of the object, whose schema it does not know: one loop over
	// a field fits the limit, a loop in a loop does not.
	estimatedSize = 10_000
	// EvalTimeout bounds one evaluation's time as well: cel-go's cost tracking
	// grows with the square of a loop's length, so a loop over a list of a few
	// hundred thousand items stays under CostLimit for a minute.
	EvalTimeout = 100 * time.Millisecond
	// interruptEvery is how many loop iterations pass between checks of the
	// evaluation's context.
	interruptEvery = 100
	// maxCached bounds a Cache; past it the cache starts over.
	maxCached = 1024
)

// Program is a compiled expression.
type Program struct {
	expression string
	program    cel.Program
}

// Expression is the text the program was compiled from.
func (p *Program) Expression() string { return p.expression }

// newEnv is the environment every expression is compiled in: the standard
// library, optional field access (object.?status.?phase.orValue("")) and the
// variable object, of any type.
func newEnv() (*cel.Env, error) {
	env, err := cel.NewEnv(
		cel.Variable(Variable, cel.DynType),
		cel.OptionalTypes(),
		cel.ParserExpressionSizeLimit(spec.MaxCELExpressionBytes),
		cel.ParserRecursionLimit(100),
	)
	if err != nil {
		return nil, fmt.Errorf("building the CEL environment: %w", err)
	}
	return env, nil
}

// Compile compiles expression, checked to return a bool and, estimated, to cost at
// most CostLimit. Its error is a message for the one who wrote the expression.
func Compile(expression string) (*Program, error) {
	if len(expression) > spec.MaxCELExpressionBytes {
		return nil, fmt.Errorf("is %d bytes long, more than %d", len(expression), spec.MaxCELExpressionBytes)
	}
	env, err := newEnv()
	if err != nil {
		return nil, err
	}
	ast, issues := env.Compile(expression)
	if issues != nil && issues.Err() != nil {
		return nil, fmt.Errorf("does not compile: %s", oneLine(issues.Err().Error()))
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) {
		return nil, fmt.Errorf("has type %s, not bool (compare the field, as in object.spec.paused == true)", t)
	}
	cost, err := env.EstimateCost(ast, sizeEstimator{})
	if err != nil {
		return nil, fmt.Errorf("cannot be estimated: %w", err)
	}
	if cost.Max > CostLimit {
		return nil, fmt.Errorf("may cost up to %d, more than %d (assuming fields of %d items or characters): "+
			"avoid loops in loops", cost.Max, CostLimit, estimatedSize)
	}
	prg, err := env.Program(ast,
		cel.CostLimit(CostLimit),
		cel.InterruptCheckFrequency(interruptEvery),
	)
	if err != nil {
		return nil, fmt.Errorf("cannot be prepared: %w", err)
	}
	return &Program{expression: expression, program: prg}, nil
}

// Eval evaluates the program over object (an unstructured object's content). An
// error (a missing field: "no such key: readyReplicas", the cost limit reached)
// means the expression cannot tell; the caller reads it as not ready. It stops
// after EvalTimeout.
func (p *Program) Eval(ctx context.Context, object map[string]any) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, EvalTimeout)
	defer cancel()
	out, _, err := p.program.ContextEval(ctx, map[string]any{Variable: object})
	if err != nil {
		return false, &EvalError{Expression: p.expression, Err: err}
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, &EvalError{Expression: p.expression, Err: fmt.Errorf("got %s, not a bool", out.Type())}
	}
	return b, nil
}

// EvalError is why an expression could not be evaluated.
type EvalError struct {
	Expression string
	Err        error
}

func (e *EvalError) Error() string { return fmt.Sprintf("evaluating %q: %v", e.Expression, e.Err) }

func (e *EvalError) Unwrap() error { return e.Err }

// Check is the admission check of refs: for each item whose expression is
// refused, its index and why.
func Check(refs []spec.CELRef) map[int]error {
	var problems map[int]error
	for i, r := range refs {
		if _, err := Compile(r.Expression); err != nil {
			if problems == nil {
				problems = make(map[int]error)
			}
			problems[i] = err
		}
	}
	return problems
}

// Cache keeps compiled programs by expression, so that an expression many pods
// share is compiled once. It is safe for concurrent use; the zero value is ready.
type Cache struct {
	mu       sync.Mutex
	programs map[string]cached
}

type cached struct {
	program *Program
	err     error
}

// Program compiles expression, or returns it compiled before (or its error).
func (c *Cache) Program(expression string) (*Program, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.programs[expression]; ok {
		return e.program, e.err
	}
	if c.programs == nil || len(c.programs) >= maxCached {
		c.programs = make(map[string]cached)
	}
	p, err := Compile(expression)
	c.programs[expression] = cached{program: p, err: err}
	return p, err
}

// sizeEstimator gives every list, map and string of unknown size estimatedSize.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(checker.AstNode) *checker.SizeEstimate {
	return &checker.SizeEstimate{Min: 0, Max: estimatedSize}
}

func (sizeEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// oneLine folds CEL's multi-line issue text (message, source line, caret).
func oneLine(s string) string {
	s = strings.TrimPrefix(s, "ERROR: <input>:")
	return strings.Join(strings.Fields(s), " ")
}
