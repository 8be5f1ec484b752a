package celcheck

import (
	"context"
	"strings"
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

func TestCompile(t *testing.T) {
	tests := []struct {
		name, expression string
		wantErr          string // "" when it compiles
	}{
		{"comparison", "object.status.readyReplicas >= 2", ""},
		{"string field", `object.data.mode == "ready"`, ""},
		{"has macro", `has(object.data) && "mode" in object.data`, ""},
		{"optional field", `object.?status.?phase.orValue("") == "Bound"`, ""},
		{"one loop", `object.status.conditions.exists(c, c.type == "Ready" && c.status == "True")`, ""},
		{"syntax error", "object.status.readyReplicas >=", "does not compile"},
		{"undeclared variable", "self.status.ready", "does not compile"},
		{"not a bool", "object.status.readyReplicas + 1", "not bool"},
		{"dyn, not bool", "object.spec.paused", "not bool"},
		{"string result", `"yes"`, "not bool"},
		{"too long", "true || " + strings.Repeat("true || ", spec.MaxCELExpressionBytes/8) + "true", "bytes long"},
		{"loop in a loop", "object.data.all(k, object.data.all(l, k != l || k == l))", "may cost"},
		{"loops three deep", "object.a.all(x, object.b.all(y, object.c.all(z, x == y && y == z)))", "may cost"},
		{"deep nesting", strings.Repeat("(", 150) + "true" + strings.Repeat(")", 150), "does not compile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.expression)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Compile(%q) = %v, want no error", tt.expression, err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Compile(%q) compiled, want an error with %q", tt.expression, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Compile(%q) = %v, want an error with %q", tt.expression, err, tt.wantErr)
			case err == nil && p.Expression() != tt.expression:
				t.Fatalf("Expression() = %q, want %q", p.Expression(), tt.expression)
			}
		})
	}
}

func TestEval(t *testing.T) {
	deployment := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "api", "namespace": "ns"},
		"status": map[string]any{
			"readyReplicas": int64(3),
			"conditions":    []any{map[string]any{"type": "Available", "status": "True"}},
		},
	}
	configMap := map[string]any{"data": map[string]any{"mode": "ready", "n": "7"}}
	long := make([]any, 200_000)
	for i := range long {
		long[i] = int64(i)
	}
	big := map[string]any{"items": long, "text": strings.Repeat("a", 20*CostLimit)}
	tests := []struct {
		name, expression string
		object           map[string]any
		want             bool
		wantErr          string
	}{
		{"true", "object.status.readyReplicas >= 2", deployment, true, ""},
		{"false", "object.status.readyReplicas >= 5", deployment, false, ""},
		{"condition", `object.status.conditions.exists(c, c.type == "Available" && c.status == "True")`, deployment, true, ""},
		{"configmap data", `object.data.mode == "ready" && int(object.data.n) > 5`, configMap, true, ""},
		{"missing field", "object.status.readyReplicas >= 2", configMap, false, "no such key"},
		{"optional missing field", "object.?status.?readyReplicas.orValue(0) >= 2", configMap, false, ""},
		{"conversion error", `int(object.data.mode) > 1`, configMap, false, "evaluating"},
		{"over the cost limit", `object.text.contains("b")`, big, false, "cost limit"},
		{"over the time limit", "object.items.all(i, i >= 0)", big, false, "deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.expression)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tt.expression, err)
			}
			got, err := p.Eval(context.Background(), tt.object)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Eval = %v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Eval = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestEvalStopsWithItsContext(t *testing.T) {
	p, err := Compile("object.items.all(i, i >= 0)")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	items := make([]any, 10_000)
	for i := range items {
		items[i] = int64(i)
	}
	if _, err := p.Eval(ctx, map[string]any{"items": items}); err == nil {
		t.Fatal("Eval with a cancelled context succeeded, want an error")
	}
}

func TestCache(t *testing.T) {
	var c Cache
	tests := []struct {
		name, expression string
		wantErr          bool
	}{
		{"compiles", "object.a == 1", false},
		{"again", "object.a == 1", false},
		{"refused", "object.a", true},
		{"refused again", "object.a", true},
	}
	first := map[string]*Program{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := c.Program(tt.expression)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Program(%q) = %v, want error %v", tt.expression, err, tt.wantErr)
			}
			if prev, ok := first[tt.expression]; ok && prev != p {
				t.Fatalf("Program(%q) compiled again", tt.expression)
			}
			first[tt.expression] = p
		})
	}
}

func TestCheck(t *testing.T) {
	refs := []spec.CELRef{{Expression: "object.a == 1"}, {Expression: "object.a"}, {Expression: "true"}, {Expression: "("}}
	got := Check(refs)
	if len(got) != 2 || got[1] == nil || got[3] == nil {
		t.Fatalf("Check = %v, want problems at 1 and 3", got)
	}
}
