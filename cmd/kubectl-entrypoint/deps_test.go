package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// The plugin runs on users' machines and reads what the webhook and the
// controller publish; it links neither of them, nor their framework. The same
// rule is depguard's in .golangci.yml, for direct imports; this test catches an
// indirect one too.
func TestPluginLinksNoServer(t *testing.T) {
	const module = "github.com/kubernetes-entrypoint/kubernetes-entrypoint/"
	forbidden := []string{
		module + "pkg/webhook",
		module + "pkg/controller",
		"sigs.k8s.io/controller-runtime",
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		var stderr string
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("kubectl-entrypoint links %s (go list -deps ./cmd/kubectl-entrypoint)", dep)
			}
		}
	}
}
