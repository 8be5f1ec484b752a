package spec

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseCELJSON(t *testing.T) {
	item := func(expression string) string {
		return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","name":"api","expression":%q}`, expression)
	}
	many := make([]string, MaxCELItems+1)
	for i := range many {
		many[i] = item("true")
	}
	tests := []struct {
		name, value string
		want        []CELRef
		wantErr     string
	}{
		{"empty", "", nil, ""},
		{"namespace filled in", "[" + item("object.status.readyReplicas >= 2") + "]",
			[]CELRef{{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "ns", Name: "api", Expression: "object.status.readyReplicas >= 2"}}, ""},
		{"own namespace", `[{"apiVersion":"v1","kind":"ConfigMap","namespace":"other","name":"c","expression":"true"}]`,
			[]CELRef{{APIVersion: "v1", Kind: "ConfigMap", Namespace: "other", Name: "c", Expression: "true"}}, ""},
		{"no expression", `[{"apiVersion":"v1","kind":"ConfigMap","name":"c"}]`, nil, `has no "expression"`},
		{"blank expression", `[{"apiVersion":"v1","kind":"ConfigMap","name":"c","expression":"  "}]`, nil, `has no "expression"`},
		{"too long", "[" + item(strings.Repeat("a", MaxCELExpressionBytes+1)) + "]", nil, "bytes, more than 2048"},
		{"too many", "[" + strings.Join(many, ",") + "]", nil, "has 17 items, more than 16"},
		{"a Secret", `[{"apiVersion":"v1","kind":"Secret","name":"s","expression":"true"}]`, nil, "use dependency-secret"},
		{"no kind", `[{"apiVersion":"v1","name":"s","expression":"true"}]`, nil, `has no "kind"`},
		{"misspelt key", `[{"apiVersion":"v1","kind":"ConfigMap","name":"s","Expression":"true"}]`, nil, `unknown field "Expression"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCELJSON(tt.value, "ns")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseCELJSON = %v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseCELJSON = %+v, %v; want %+v", got, err, tt.want)
			}
			k, _ := KindOf(EnvCEL)
			s := &Spec{CEL: got}
			again := &Spec{Namespace: "elsewhere"}
			if err := k.Parse(again, k.Format(s)); err != nil || !reflect.DeepEqual(again.CEL, got) {
				t.Fatalf("Parse(Format) = %+v, %v; want %+v", again.CEL, err, got)
			}
		})
	}
}
