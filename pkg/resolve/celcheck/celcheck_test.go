package celcheck

import (
	"context"
	"strings"
	"testing"
)

func TestPrepare(t *testing.T) {
	tests := []struct {
		name, expression string
		wantErr          string
	}{
		{"comparison", "object.status.readyReplicas >= 2", ""},
		{"macro", `object.status.conditions.exists(c, c.type == "Ready")`, ""},
		{"syntax error", "object.status.readyReplicas >=", "does not compile"},
		{"too long", strings.Repeat("a", maxCodePoints+1), "does not compile"},
		{"deep nesting", strings.Repeat("(", 150) + "true" + strings.Repeat(")", 150), "does not compile"},
	}
	tests = append(tests, matchesCases...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Prepare(tt.expression)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Prepare(%q) = %v, want error %q", tt.expression, err, tt.wantErr)
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
	big := map[string]any{"items": long}
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
		{"has missing field", "has(object.status) && object.status.readyReplicas >= 2", configMap, false, ""},
		{"conversion error", `int(object.data.mode) > 1`, configMap, false, "evaluating"},
		{"over the time limit", "object.items.all(i, i >= 0)", big, false, "interrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Prepare(tt.expression)
			if err != nil {
				t.Fatalf("Prepare(%q): %v", tt.expression, err)
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
	p, err := Prepare("object.items.all(i, i >= 0)")
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
