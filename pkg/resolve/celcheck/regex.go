package celcheck

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"

	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

// The rules of matches, CEL's regular expression function, which Prepare (and
// so admit.Compile) enforces. Go compiles a regular expression to a program
// whose size a repeat multiplies: (?:abc){1000} is three thousand
// instructions, each tens of bytes, built once more at every compilation. An
// expression may therefore only match against patterns written in it, small
// ones, which Prepare compiles once for all the program's evaluations.
const (
	// MaxMatchesCalls is the most calls of matches, s.matches(re) or
	// matches(s, re), in one expression.
	MaxMatchesCalls = 8
	// MaxRegexBytes is the longest pattern of a call of matches, in bytes. The
	// pattern must be a string literal: not a field, a variable or a
	// concatenation.
	MaxRegexBytes = 256
	// MaxRegexInstructions bounds the programs Go's regexp compiles an
	// expression's patterns to, in instructions: each pattern's and all of
	// them together. The size is estimated from the pattern's parse tree
	// without compiling it (a repeat multiplies its subexpression's size), so
	// that refusing a pattern costs little whatever it is. A compiled program
	// keeps about 45 bytes an instruction.
	MaxRegexInstructions = 1_000
	// regexWorkPerCost is how much matching, in bytes of the string times
	// instructions of the pattern's program, one unit of CostLimit pays for at
	// evaluation: Go's regexp takes up to about 15 ns for such a unit, and
	// cannot be stopped during a match. With 10, CostLimit bounds an
	// evaluation's matching to about 150 ms, and a call that alone would
	// exceed it is refused before it starts.
	regexWorkPerCost = 10
)

// matchesFunction is CEL's regular expression function.
const matchesFunction = "matches"

// regexRules checks the calls of matches of expr under the rules above and
// returns the estimated size of each pattern's program.
func regexRules(expr ast.Expr) (map[string]int, error) {
	var calls []ast.CallExpr
	ast.PostOrderVisit(expr, ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.CallKind {
			return
		}
		// A leading dot (.matches(s, re)) names the same function.
		if call := e.AsCall(); strings.TrimPrefix(call.FunctionName(), ".") == matchesFunction {
			calls = append(calls, call)
		}
	}))
	if len(calls) == 0 {
		return nil, nil
	}
	if len(calls) > MaxMatchesCalls {
		return nil, fmt.Errorf("calls matches %d times, more than %d", len(calls), MaxMatchesCalls)
	}
	sizes := make(map[string]int, len(calls))
	total := 0
	for _, call := range calls {
		pattern, err := literalPattern(call)
		if err != nil {
			return nil, err
		}
		if _, seen := sizes[pattern]; seen {
			continue // compiled once (matchesOnce), counted once
		}
		size, err := regexSize(pattern)
		if err != nil {
			return nil, err
		}
		sizes[pattern] = size
		if total += size; total > MaxRegexInstructions {
			return nil, fmt.Errorf("has regular expressions of ~%s instructions together, more than %s",
				thousands(total), thousands(MaxRegexInstructions))
		}
	}
	return sizes, nil
}

// literalPattern is the pattern of a call of matches, a string literal.
func literalPattern(call ast.CallExpr) (string, error) {
	args := call.Args()
	var pattern ast.Expr
	switch {
	case call.IsMemberFunction() && len(args) == 1:
		pattern = args[0]
	case !call.IsMemberFunction() && len(args) == 2:
		pattern = args[1]
	default:
		n := len(args)
		if call.IsMemberFunction() {
			n++
		}
		return "", fmt.Errorf(`calls matches with %d arguments, not a string and a pattern (s.matches("^v[0-9]+$"))`, n)
	}
	if pattern.Kind() == ast.LiteralKind {
		if s, ok := pattern.AsLiteral().(types.String); ok {
			return string(s), nil
		}
	}
	return "", fmt.Errorf(`calls matches with a pattern that is not a string literal (write it in the expression, as in s.matches("^v[0-9]+$"))`)
}

// regexSize checks pattern against MaxRegexBytes and MaxRegexInstructions and
// returns the estimated size of its program.
func regexSize(pattern string) (int, error) {
	if len(pattern) > MaxRegexBytes {
		return 0, fmt.Errorf("has a regular expression of %s bytes, more than %d", thousands(len(pattern)), MaxRegexBytes)
	}
	// The flags of regexp.Compile, which matches uses.
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		code := err.Error()
		var e *syntax.Error
		if errors.As(err, &e) {
			code = e.Code.String()
		}
		return 0, fmt.Errorf("has a regular expression that does not parse (%s): %s", code, shownPattern(pattern))
	}
	// Besides re's, a program has two instructions: its first, which fails,
	// and the match.
	size, complete := instructions(re, MaxRegexInstructions-2)
	size += 2
	switch {
	case !complete:
		return 0, fmt.Errorf("has a regular expression of over %s instructions, more than %s: %s",
			thousands(size), thousands(MaxRegexInstructions), shownPattern(pattern))
	case size > MaxRegexInstructions:
		return 0, fmt.Errorf("has a regular expression of ~%s instructions, more than %s: %s",
			thousands(size), thousands(MaxRegexInstructions), shownPattern(pattern))
	}
	return size, nil
}

// instructions estimates the instructions regexp/syntax compiles re to, after
// Simplify, which writes out repeats (x{3,5} is xxx(x(x)?)?). It stops, and says
// so, as soon as the count passes limit: it then returns what it had counted, at
// least limit+1. Without stopping, the counts of nested repeats could overflow.
func instructions(re *syntax.Regexp, limit int) (n int, complete bool) {
	switch re.Op {
	case syntax.OpLiteral:
		n = max(len(re.Rune), 1)
	case syntax.OpCapture:
		sub, ok := instructions(re.Sub[0], limit)
		if !ok {
			return sub, false
		}
		n = sub + 2
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		sub, ok := instructions(re.Sub[0], limit)
		if !ok {
			return sub, false
		}
		n = sub + 1
		if re.Op == syntax.OpStar {
			n++ // a star over what may match nothing is (x+)?
		}
	case syntax.OpConcat, syntax.OpAlternate:
		if len(re.Sub) == 0 {
			return 1, true
		}
		if re.Op == syntax.OpAlternate {
			n = len(re.Sub) - 1 // one split between two alternatives
		}
		for _, s := range re.Sub {
			sub, ok := instructions(s, limit)
			n += sub
			if !ok || n > limit {
				return n, false
			}
		}
	case syntax.OpRepeat:
		if re.Max == 0 {
			return 1, true
		}
		sub, ok := instructions(re.Sub[0], limit)
		if !ok {
			return sub, false
		}
		switch {
		case re.Max < 0 && re.Min == 0: // x*
			n = sub + 2
		case re.Max < 0: // x{n,}: n-1 copies of x, then x+
			n = re.Min*sub + 1
		default: // x{n,m}: n copies of x, then m-n nested (x...)?
			n = re.Min*sub + (re.Max-re.Min)*(sub+1)
		}
	default:
		// Character classes, any character, empty-width assertions, no match:
		// one instruction each.
		n = 1
	}
	return n, n <= limit
}

// shownPattern quotes a pattern for a message, escaped and cut.
func shownPattern(pattern string) string {
	const maxShown = 48
	if r := []rune(pattern); len(r) > maxShown {
		return strconv.Quote(string(r[:maxShown])) + "…"
	}
	return strconv.Quote(pattern)
}

// thousands writes n with commas between groups of three digits.
func thousands(n int) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// matchesOnce compiles, when a program is planned, each pattern of its calls of
// matches (all string literals, checked by regexRules) once, instead of at every
// call. A call then refuses a string too long for its pattern's program, before
// matching (see regexWorkPerCost).
func matchesOnce(sizes map[string]int) *interpreter.RegexOptimization {
	compiled := make(map[string]*regexp.Regexp, len(sizes))
	return &interpreter.RegexOptimization{
		Function:   matchesFunction,
		RegexIndex: 1, // of the call's arguments, the receiver first
		Factory: func(call interpreter.InterpretableCall, pattern string) (interpreter.InterpretableCall, error) {
			size, ok := sizes[pattern]
			if !ok {
				// regexRules saw every call of matches: this one is not CEL's.
				return nil, fmt.Errorf("calls matches with a pattern not checked: %s", shownPattern(pattern))
			}
			re := compiled[pattern]
			if re == nil {
				var err error
				if re, err = regexp.Compile(pattern); err != nil {
					return nil, err
				}
				compiled[pattern] = re
			}
			return interpreter.NewCall(call.ID(), call.Function(), call.OverloadID(), call.Args(), func(args ...ref.Val) ref.Val {
				if len(args) != 2 {
					return types.NoSuchOverloadErr()
				}
				s, ok := args[0].Value().(string)
				if !ok {
					return types.MaybeNoSuchOverloadErr(args[0])
				}
				if work := uint64(len(s)+1) * uint64(size); work > CostLimit*regexWorkPerCost {
					return types.NewErr("a string of %d bytes is too long for regular expression %s (of ~%d instructions)",
						len(s), shownPattern(pattern), size)
				}
				return types.Bool(re.MatchString(s))
			}), nil
		},
	}
}

// regexCost charges a call of matches by its work at evaluation: the cost
// tracker's default is one unit, as the program is not type-checked.
type regexCost struct{ sizes map[string]int }

func (c regexCost) CallCost(function, _ string, args []ref.Val, result ref.Val) *uint64 {
	if strings.TrimPrefix(function, ".") != matchesFunction || len(args) != 2 || types.IsError(result) {
		// A refused call (a string too long) matched nothing: one unit.
		return nil
	}
	s, ok := args[0].Value().(string)
	pattern, ok2 := args[1].Value().(string)
	if !ok || !ok2 {
		return nil
	}
	cost := (uint64(len(s)+1)*uint64(c.sizes[pattern]) + regexWorkPerCost - 1) / regexWorkPerCost
	return &cost
}
