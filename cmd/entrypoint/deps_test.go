package main_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The resolver evaluates CEL expressions with cel-go's parser and interpreter
// only: its environment and type checker (the webhook's) would take the binary
// past 20 MB.
func TestResolverLinksNoCELChecker(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := make(map[string]bool)
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	tests := []struct {
		pkg  string
		want bool
	}{
		{"github.com/google/cel-go/interpreter", true},
		{"github.com/google/cel-go/cel", false},
		{"github.com/google/cel-go/checker", false},
		{"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck/admit", false},
	}
	for _, tt := range tests {
		if deps[tt.pkg] != tt.want {
			t.Errorf("the resolver links %s: %v, want %v", tt.pkg, deps[tt.pkg], tt.want)
		}
	}
}
