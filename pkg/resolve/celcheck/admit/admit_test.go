package admit

import (
	"strings"
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck"
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
	first := map[string]*celcheck.Program{}
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
