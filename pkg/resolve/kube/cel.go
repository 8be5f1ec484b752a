package kube

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// maxShownExpression is how much of an expression a reason quotes.
const maxShownExpression = 120

// CEL is ready when the object exists and the CEL expression over it is true. It
// finds the object's resource as CustomResource does (discovery, retried until the
// kind is served) and follows it the same way: watched, polled where it may not be.
type CEL struct {
	Client *Client
	Ref    spec.CELRef
}

func (c *CEL) String() string {
	return fmt.Sprintf("cel %s %s %s/%s", c.Ref.APIVersion, c.Ref.Kind, c.Ref.Namespace, c.Ref.Name)
}

// Wait waits until the CEL dependency is ready, reporting each change of its status.
func (c *CEL) Wait(ctx context.Context, report func(resolve.Status)) error {
	program, err := celcheck.Prepare(c.Ref.Expression)
	if err != nil {
		// The webhook refuses such an expression; set by hand, it never becomes true.
		return fmt.Errorf("%s: expression %s %w", c, ShownExpression(c.Ref.Expression), err)
	}
	return c.Client.followNamed(ctx, c.Ref.APIVersion, c.Ref.Kind, c.Ref.Namespace, c.Ref.Name, report,
		func(objects []*unstructured.Unstructured) resolve.Status { return CELReadiness(ctx, objects, program) })
}

// CELReadiness is the CEL rule over the objects of the kind named by the
// dependency (zero or one): ready once it exists and program is true over it. An
// evaluation error (a missing field) is not ready, with its text. The resolver
// decides with it; it is CELReadinessWith without an Evaluator.
func CELReadiness(ctx context.Context, objects []*unstructured.Unstructured, program *celcheck.Program) resolve.Status {
	return CELReadinessWith(ctx, objects, program, nil)
}

// CELReadinessWith is CELReadiness evaluating through eval (nil evaluates
// directly), which keeps the result by the object's uid and resourceVersion:
// the dependency controller decides with it.
func CELReadinessWith(ctx context.Context, objects []*unstructured.Unstructured, program *celcheck.Program, eval *celcheck.Evaluator) resolve.Status {
	if len(objects) == 0 {
		return resolve.Status{Reason: "not found"}
	}
	ok, err := eval.Eval(ctx, program, objectVersion(objects[0]), objects[0].Object)
	switch {
	case err != nil:
		return resolve.Status{Reason: ShownExpression(program.Expression()) + " cannot be evaluated: " + unwrapEval(err)}
	case !ok:
		return resolve.Status{Reason: ShownExpression(program.Expression()) + " is false"}
	}
	return resolve.Status{Ready: true}
}

// objectVersion identifies the content of obj, "uid/resourceVersion", or is ""
// when obj lacks either.
func objectVersion(obj *unstructured.Unstructured) string {
	uid, rv := string(obj.GetUID()), obj.GetResourceVersion()
	if uid == "" || rv == "" {
		return ""
	}
	return uid + "/" + rv
}

// ShownExpression quotes an expression for a reason, a long one cut.
func ShownExpression(expression string) string {
	if r := []rune(expression); len(r) > maxShownExpression {
		expression = string(r[:maxShownExpression]) + "…"
	}
	return strconv.Quote(expression)
}

// unwrapEval is the evaluation's error as a reason may show it: without the
// "evaluating <expression>: " of celcheck's error (the reason quotes the
// expression already), and never a value of the object. An error can quote one
// (object.data[object.data.password] fails with "no such key: <the password>"),
// and reasons reach conditions, Events and logs that others read, so only the
// errors known to name nothing but types and the expression's own words are
// shown as they are.
func unwrapEval(err error) string {
	expression, msg := "", err.Error()
	if e, ok := errors.AsType[*celcheck.EvalError](err); ok {
		expression, msg = e.Expression, e.Err.Error()
	}
	switch {
	case strings.HasPrefix(msg, "no such key: "):
		if key := strings.TrimPrefix(msg, "no such key: "); key != "" && strings.Contains(expression, key) {
			return msg
		}
		return "no such key (one the expression computes; not shown, as it may be a value)"
	case strings.HasPrefix(msg, "no such overload"), strings.HasPrefix(msg, "type conversion error from"),
		strings.HasPrefix(msg, "no such attribute"):
		return msg
	case strings.Contains(msg, "cost limit"), strings.Contains(msg, "actual cost limit exceeded"):
		return "it exceeds the cost limit"
	case strings.Contains(msg, "interrupted"), strings.Contains(msg, "deadline"):
		return fmt.Sprintf("it takes longer than %s", celcheck.EvalTimeout)
	}
	return "an error (not shown, as it may hold a value of the object)"
}
