// Package admit checks CEL dependency expressions as the webhook admits them:
// they compile with cel-go's type checker, return a bool, and may not cost more
// than celcheck.CostLimit by estimate. It links cel-go's environment and checker,
// which the resolver does without (package celcheck evaluates).
package admit

import (
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// maxCached bounds a Cache; past it the cache starts over.
const maxCached = 1024

// Compile checks expression and prepares it for evaluation. Its error is a
// message for the one who wrote the expression.
func Compile(expression string) (*celcheck.Program, error) {
	if len(expression) > spec.MaxCELExpressionBytes {
		return nil, fmt.Errorf("is %d bytes long, more than %d", len(expression), spec.MaxCELExpressionBytes)
	}
	env, err := cel.NewEnv(
		cel.Variable(celcheck.Variable, cel.DynType),
		cel.ParserExpressionSizeLimit(spec.MaxCELExpressionBytes),
		cel.ParserRecursionLimit(100),
	)
	if err != nil {
		return nil, fmt.Errorf("building the CEL environment: %w", err)
	}
	ast, issues := env.Compile(expression)
	if issues != nil && issues.Err() != nil {
		return nil, fmt.Errorf("does not compile: %s", celcheck.OneLine(issues.Err().Error()))
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) {
		return nil, fmt.Errorf("has type %s, not bool (compare the field, as in object.spec.paused == true)", t)
	}
	cost, err := env.EstimateCost(ast, sizeEstimator{})
	if err != nil {
		return nil, fmt.Errorf("cannot be estimated: %w", err)
	}
	if cost.Max > celcheck.CostLimit {
		return nil, fmt.Errorf("may cost up to %d, more than %d (assuming fields of %d items or characters): "+
			"avoid loops in loops", cost.Max, celcheck.CostLimit, celcheck.EstimatedSize)
	}
	return celcheck.Prepare(expression)
}

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
	program *celcheck.Program
	err     error
}

// Program compiles expression, or returns it compiled before (or its error).
func (c *Cache) Program(expression string) (*celcheck.Program, error) {
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

// sizeEstimator gives every list, map and string of unknown size
// celcheck.EstimatedSize.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(checker.AstNode) *checker.SizeEstimate {
	return &checker.SizeEstimate{Min: 0, Max: celcheck.EstimatedSize}
}

func (sizeEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}
