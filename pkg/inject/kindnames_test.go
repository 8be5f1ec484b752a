package inject

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// The kinds that messages name come from the table: every kind gate mode can
// hold a pod for is named, and a gated pod's message names its own kinds.
func TestKindNamesComeFromTheTable(t *testing.T) {
	all := nodeFreeAnnotations()
	for _, k := range spec.Kinds() {
		if (k.NodeFree || k.SameNode || k.GateOptIn) && !strings.Contains(all, k.Annotation) {
			t.Errorf("the gate annotation's help does not name %s: %s", k.Annotation, all)
		}
	}
	tests := []struct {
		gated []string
		want  string
	}{
		{nil, "its node-free dependencies"},
		{[]string{spec.EnvServices}, "entrypoint.io/dependency-service"},
		{[]string{spec.EnvJobs, spec.EnvServices}, "entrypoint.io/dependency-service and entrypoint.io/dependency-job"},
		{[]string{spec.EnvCEL, spec.EnvServices, spec.EnvCRDs}, "entrypoint.io/dependency-service, entrypoint.io/dependency-cel and entrypoint.io/dependency-crd"},
	}
	for _, tt := range tests {
		var env []corev1.EnvVar
		for _, name := range tt.gated {
			env = append(env, corev1.EnvVar{Name: name, Value: "x"})
		}
		if got := gatedAnnotations(env); got != tt.want {
			t.Errorf("gatedAnnotations(%v) = %q, want %q", tt.gated, got, tt.want)
		}
	}
}
