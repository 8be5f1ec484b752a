package celcheck

import (
	"context"
	"fmt"

	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/containers"
	"github.com/google/cel-go/common/stdlib"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"
	"github.com/google/cel-go/parser"
)

// Program is an expression prepared for evaluation: parsed and planned with the
// standard library, without cel-go's environment and type checker (package cel),
// which would add about two megabytes to the resolver. Compile checks the types
// first; the evaluation is the same, as object is of any type.
type Program struct {
	expression    string
	interpretable interpreter.InterpretableV2
}

// Expression is the text the program was prepared from.
func (p *Program) Expression() string { return p.expression }

// Prepare parses expression and plans its evaluation under CostLimit. It checks
// no types: the webhook refuses, at admission, what package admit does not
// compile. It refuses the calls of matches that break the rules of
// MaxMatchesCalls, MaxRegexBytes and MaxRegexInstructions, and compiles the
// patterns of the others, once for all evaluations.
func Prepare(expression string) (*Program, error) {
	prs, err := parser.NewParser(
		parser.Macros(parser.AllMacros...),
		parser.MaxRecursionDepth(maxRecursion),
		parser.ExpressionSizeCodePointLimit(maxCodePoints),
	)
	if err != nil {
		return nil, fmt.Errorf("building the CEL parser: %w", err)
	}
	parsed, issues := prs.Parse(common.NewTextSource(expression))
	if issues != nil && len(issues.GetErrors()) > 0 {
		return nil, fmt.Errorf("does not compile: %s", OneLine(issues.ToDisplayString()))
	}
	regexes, err := regexRules(parsed.Expr())
	if err != nil {
		return nil, err
	}
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, fmt.Errorf("building the CEL type registry: %w", err)
	}
	disp := interpreter.NewDispatcher()
	for _, fn := range stdlib.Functions() {
		overloads, err := fn.Bindings()
		if err != nil {
			return nil, fmt.Errorf("binding CEL function %s: %w", fn.Name(), err)
		}
		if err := disp.Add(overloads...); err != nil {
			return nil, fmt.Errorf("binding CEL function %s: %w", fn.Name(), err)
		}
	}
	cont := containers.DefaultContainer
	interp := interpreter.NewInterpreter(disp, cont, reg, reg, interpreter.NewAttributeFactory(cont, reg, reg))
	tracker, err := interpreter.NewCostTracker(regexCost{regexes}, interpreter.CostTrackerLimit(CostLimit))
	if err != nil {
		return nil, fmt.Errorf("building the CEL cost tracker: %w", err)
	}
	interpretable, err := interp.NewInterpretable(parsed,
		interpreter.InterruptableEval(),
		// Before the cost observer, which hides the calls it wraps.
		interpreter.CompileRegexConstants(matchesOnce(regexes)),
		interpreter.CostObserver(interpreter.CostTrackerFactory(tracker.Clone)),
	)
	if err != nil {
		return nil, fmt.Errorf("cannot be prepared: %w", err)
	}
	return &Program{expression: expression, interpretable: interpretable}, nil
}

// Eval evaluates the program over object (an unstructured object's content). An
// error (a missing field: "no such key: readyReplicas", the cost limit reached)
// means the expression cannot tell; the caller reads it as not ready. It stops
// after EvalTimeout.
func (p *Program) Eval(ctx context.Context, object map[string]any) (ready bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, EvalTimeout)
	defer cancel()
	defer func() {
		// The cost limit and the context stop the evaluation with a panic.
		if r := recover(); r != nil {
			ready, err = false, &EvalError{Expression: p.expression, Err: fmt.Errorf("%v", r)}
		}
	}()
	frame, err := interpreter.NewExecutionFrame(map[string]any{Variable: object})
	if err != nil {
		return false, &EvalError{Expression: p.expression, Err: err}
	}
	defer frame.Close()
	if err := frame.SetContext(ctx, interruptEvery); err != nil {
		return false, &EvalError{Expression: p.expression, Err: err}
	}
	out := p.interpretable.Exec(frame)
	if types.IsError(out) {
		return false, &EvalError{Expression: p.expression, Err: out.(*types.Err)}
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
