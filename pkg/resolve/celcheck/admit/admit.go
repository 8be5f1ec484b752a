// Package admit checks CEL dependency expressions as the webhook admits them:
// they compile with cel-go's type checker, return a bool, follow the rules of
// matches (celcheck.MaxMatchesCalls, MaxRegexBytes, MaxRegexInstructions), and
// may not cost more than celcheck.CostLimit by estimate. It links cel-go's
// environment and checker, which the resolver does without (package celcheck
// evaluates).
package admit

import (
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"
	"golang.org/x/sync/singleflight"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/lru"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// maxCached bounds a Cache: it forgets the least recently used expression
// past it.
const maxCached = 1024

// Compile checks expression and prepares it for evaluation. It refuses what
// celcheck.Prepare refuses too, such as a call of matches whose pattern is not a
// small string literal (celcheck.MaxRegexInstructions). Its error is a message
// for the one who wrote the expression.
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
	// Before the cost estimate, whose error would hide its more precise ones
	// (the rules of matches).
	program, err := celcheck.Prepare(expression)
	if err != nil {
		return nil, err
	}
	cost, err := env.EstimateCost(ast, sizeEstimator{})
	if err != nil {
		return nil, fmt.Errorf("cannot be estimated: %w", err)
	}
	if cost.Max > celcheck.CostLimit {
		return nil, fmt.Errorf("may cost up to %d, more than %d (assuming fields of %d items or characters): "+
			"avoid loops in loops", cost.Max, celcheck.CostLimit, celcheck.EstimatedSize)
	}
	return program, nil
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
// share is compiled once: the last maxCached expressions used, refused ones
// too, with their errors. Compilations run outside its lock, each expression's
// once however many ask for it at the same time. It is safe for concurrent use;
// the zero value is ready.
type Cache struct {
	mu       sync.Mutex
	programs *lru.Cache[string, cached] // made at first use
	flights  singleflight.Group

	// size and compile are maxCached and Compile; tests change them.
	size    int
	compile func(string) (*celcheck.Program, error)
}

type cached struct {
	program *celcheck.Program
	err     error
}

// Program compiles expression, or returns it compiled before (or its error).
func (c *Cache) Program(expression string) (*celcheck.Program, error) {
	if e, ok := c.get(expression); ok {
		return e.program, e.err
	}
	v, _, _ := c.flights.Do(expression, func() (any, error) {
		// A flight that ended since the look-up above may have left it.
		if e, ok := c.get(expression); ok {
			return e, nil
		}
		compile := c.compile
		if compile == nil {
			compile = Compile
		}
		p, err := compile(expression)
		e := cached{program: p, err: err}
		c.mu.Lock()
		c.programs.Add(expression, e)
		c.mu.Unlock()
		return e, nil
	})
	e := v.(cached)
	return e.program, e.err
}

func (c *Cache) get(expression string) (cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.programs == nil {
		size := c.size
		if size <= 0 {
			size = maxCached
		}
		c.programs = lru.New[string, cached](size)
	}
	return c.programs.Get(expression)
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
