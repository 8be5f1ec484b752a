package offline

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/manifest"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject/options"
)

// workload is a manifest of kind with the given spec fields (indented for its
// spec) and pod template annotations.
func workload(kind, name, specFields, annotations string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: %s
metadata:
  name: %s
  namespace: ns
spec:
%s  selector:
    matchLabels: {app: %s}
  template:
    metadata:
      labels: {app: %s}
      annotations:
%s    spec:
      containers:
      - name: app
        image: registry.example/app:1.0
        command: [/app]
`, kind, name, specFields, name, name, annotations)
}

func jobManifest(name, specFields string) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  name: %s
  namespace: ns
spec:
%s  template:
    spec:
      restartPolicy: Never
      containers:
      - name: m
        image: registry.example/app:1.0
        command: [/migrate]
`, name, specFields)
}

func TestProgressDeadlineWarning(t *testing.T) {
	const (
		waitsForMigrate = "        entrypoint.io/dependency-job: migrate\n"
		waitsForService = "        entrypoint.io/dependency-service: db\n"
	)
	tests := []struct {
		name string
		docs []string
		// want is the line and what the message says after the deadline, or
		// "" for no warning.
		want string
	}{
		{name: "optional-after beyond the default deadline",
			docs: []string{workload("Deployment", "web", "", waitsForService+"        entrypoint.io/optional-after: 15m\n")},
			want: "1: (600s, the default, as spec.progressDeadlineSeconds is not set): its optional-after is 15m0s; " +
				"the Deployment controller then marks the rollout failed (ProgressDeadlineExceeded), and Argo CD and kubectl rollout status report the Deployment as failed while its pods only wait: set spec.progressDeadlineSeconds to more than 900 (the longest wait above), or shorten the wait"},
		{name: "optional-after within a longer deadline",
			docs: []string{workload("Deployment", "web", "  progressDeadlineSeconds: 1200\n", waitsForService+"        entrypoint.io/optional-after: 15m\n")}},
		{name: "timeout beyond the deadline",
			docs: []string{workload("Deployment", "web", "  progressDeadlineSeconds: 300\n", waitsForService+"        entrypoint.io/timeout: 20m\n")},
			want: "7: (300s, spec.progressDeadlineSeconds): its timeout is 20m0s; "},
		{name: "timeout beyond, optional-after within",
			docs: []string{workload("Deployment", "web", "", waitsForService+"        entrypoint.io/timeout: 20m\n        entrypoint.io/optional-after: 5m\n")}},
		{name: "a Job of the manifests that may run longer",
			docs: []string{workload("Deployment", "web", "  progressDeadlineSeconds: 900\n", waitsForMigrate), jobManifest("migrate", "  activeDeadlineSeconds: 3600\n")},
			want: "7: (900s, spec.progressDeadlineSeconds): it waits for Job ns/migrate (activeDeadlineSeconds 3600) of these manifests, which may run that long: its whole run counts against the deadline; "},
		{name: "a Job of the manifests within the deadline",
			docs: []string{workload("Deployment", "web", "", waitsForMigrate), jobManifest("migrate", "  activeDeadlineSeconds: 300\n")}},
		{name: "a Job without activeDeadlineSeconds",
			docs: []string{workload("Deployment", "web", "", waitsForMigrate), jobManifest("migrate", "")}},
		{name: "a Job of other manifests",
			docs: []string{workload("Deployment", "web", "", waitsForMigrate)}},
		{name: "a StatefulSet has no progress deadline",
			docs: []string{workload("StatefulSet", "db", "", waitsForService+"        entrypoint.io/optional-after: 1h\n")}},
		{name: "not injected",
			docs: []string{workload("Deployment", "web", "", "        example.com/other: x\n")}},
	}
	opts := options.Default()
	cfg, err := opts.InjectConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := manifest.Parse("m.yaml", []byte(strings.Join(tt.docs, "---\n")))
			if err != nil {
				t.Fatal(err)
			}
			results, err := Lint(context.Background(), docs, Options{Config: cfg, Namespace: "default"})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range Findings(results) {
				if f.Severity == SeverityError {
					t.Fatalf("unexpected problem: %s", f)
				}
				if f.Severity == SeverityWarning {
					got = append(got, fmt.Sprintf("%d: %s", f.Line, strings.TrimPrefix(f.Message, "its pods may wait for their dependencies longer than its progress deadline ")))
				}
			}
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("warned: %q", got)
			case tt.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tt.want)):
				t.Errorf("got %q, want one warning starting %q", got, tt.want)
			}
			if Failed(results) {
				t.Errorf("a warning failed the lint")
			}
		})
	}
}
