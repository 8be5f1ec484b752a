package inject

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

func celItem(expression string) string {
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","name":"api","expression":%q}`, expression)
}

func TestCELAnnotation(t *testing.T) {
	const key = "entrypoint.io/dependency-cel"
	many := make([]string, spec.MaxCELItems+1)
	for i := range many {
		many[i] = celItem("true")
	}
	tests := []struct {
		name  string
		value string
		// wantEnv is DEPENDENCY_CEL_JSON when admitted; otherwise the problems,
		// each at its path with its substring.
		wantEnv  string
		problems []celProblem
	}{
		{
			name:    "admitted, namespace filled in",
			value:   "[" + celItem("object.status.readyReplicas >= 2") + "]",
			wantEnv: `[{"apiVersion":"apps/v1","expression":"object.status.readyReplicas >= 2","kind":"Deployment","name":"api","namespace":"shop"}]`,
		},
		{
			name:  "compile error and non-bool, each at its item",
			value: "[" + celItem("true") + "," + celItem("object.status.readyReplicas >=") + "," + celItem("object.status") + "]",
			problems: []celProblem{
				{"metadata.annotations[" + key + "][1].expression", "item 2 (Deployment apps/v1 shop/api): expression \"object.status.readyReplicas >=\" does not compile"},
				{"metadata.annotations[" + key + "][2].expression", "has type dyn, not bool"},
			},
		},
		{
			name:     "too costly",
			value:    "[" + celItem("object.spec.a.all(x, object.spec.b.all(y, x == y))") + "]",
			problems: []celProblem{{"metadata.annotations[" + key + "][0].expression", "may cost up to"}},
		},
		{
			name:     "too long",
			value:    "[" + celItem(strings.Repeat("true && ", spec.MaxCELExpressionBytes/8)+"true") + "]",
			problems: []celProblem{{"metadata.annotations[" + key + "]", "bytes, more than 2048"}},
		},
		{
			name:     "too many",
			value:    "[" + strings.Join(many, ",") + "]",
			problems: []celProblem{{"metadata.annotations[" + key + "]", "more than 16"}},
		},
		{
			name:     "a Secret",
			value:    `[{"apiVersion":"v1","kind":"Secret","name":"s","expression":"true"}]`,
			problems: []celProblem{{"metadata.annotations[" + key + "]", "use dependency-secret"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := Mutate(context.Background(), simplePod(map[string]string{key: tt.value}), testConfig())
			if tt.problems == nil {
				if err != nil {
					t.Fatalf("Mutate: %v", err)
				}
				env := map[string]string{}
				for _, c := range got.Spec.InitContainers {
					for _, e := range c.Env {
						env[e.Name] = e.Value
					}
				}
				for _, c := range got.Spec.Containers {
					for _, e := range c.Env {
						env[e.Name] = e.Value
					}
				}
				if env[spec.EnvCEL] != tt.wantEnv {
					t.Fatalf("%s = %q, want %q", spec.EnvCEL, env[spec.EnvCEL], tt.wantEnv)
				}
				return
			}
			var denied *DeniedError
			if !errors.As(err, &denied) {
				t.Fatalf("err = %v, want a *DeniedError", err)
			}
			if len(denied.Problems) != len(tt.problems) {
				t.Fatalf("got %d problems, want %d: %v", len(denied.Problems), len(tt.problems), denied.Problems)
			}
			for i, want := range tt.problems {
				p := denied.Problems[i]
				if p.Field != want.path || !strings.Contains(p.Detail, want.detail) {
					t.Errorf("problem %d at %q: %q\nwant at %q with %q", i+1, p.Field, p.Detail, want.path, want.detail)
				}
			}
		})
	}
}

type celProblem struct{ path, detail string }
