package commands

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from what the commands print now")

// run runs kubectl-entrypoint with args and stdin, as main does, with the
// registry of pkg/inject's golden tests, and returns its output and exit status.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	// No kubeconfig: lint and inject need none.
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	code = execute(newRoot(streams, "test", env{registry: goldenRegistry{}}), streams, args)
	return out.String(), errOut.String(), code
}

// goldenRegistry answers as pkg/inject's golden test registry (helpers_test.go
// there), on which its golden outputs depend.
type goldenRegistry struct{}

func (goldenRegistry) ImageConfig(_ context.Context, ref inject.ImageRef) (inject.ImageConfig, error) {
	switch ref.Image {
	case "registry.example/app:1.0":
		return inject.ImageConfig{Entrypoint: []string{"/usr/bin/app"}, Cmd: []string{"serve", "--port=8080"}}, nil
	case "registry.example/cmd-only:1.0":
		return inject.ImageConfig{Cmd: []string{"/bin/server", "-v"}}, nil
	case "registry.example/dollar:1.0":
		return inject.ImageConfig{Entrypoint: []string{"/bin/app"}, Cmd: []string{"--home=$(HOME)", "--price=$5"}}, nil
	case "registry.example/empty:1.0":
		return inject.ImageConfig{}, nil
	}
	return inject.ImageConfig{}, errors.New("manifest unknown")
}

const goldenImage = "registry.example/kubernetes-entrypoint:v0.1.0"

// goldenDir holds the webhook's golden cases (pkg/inject/testdata).
const goldenDir = "../../inject/testdata"

// goldenInputs are the input pods of the webhook's golden cases.
func goldenInputs(t *testing.T) []string {
	t.Helper()
	inputs, err := filepath.Glob(filepath.Join(goldenDir, "*.in.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden cases in %s (err %v)", goldenDir, err)
	}
	return inputs
}

// TestWebhookGoldenCasesThroughTheCommandLine runs each of the webhook's golden
// cases (pkg/inject/testdata) through kubectl-entrypoint itself, with the
// webhook's config as flags: inject prints the golden pod byte for byte, and
// lint finds nothing.
func TestWebhookGoldenCasesThroughTheCommandLine(t *testing.T) {
	const dir = goldenDir
	for _, in := range goldenInputs(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			flags := []string{"-f", in, "--image", goldenImage, "--registry-lookup"}
			if b, err := os.ReadFile(filepath.Join(dir, name+".config.yaml")); err == nil {
				cfg := inject.Config{Controller: true}
				if err := sigsyaml.UnmarshalStrict(b, &cfg); err != nil {
					t.Fatal(err)
				}
				flags = append(flags, "--controller="+boolString(cfg.Controller),
					"--gate-all-namespaces="+boolString(cfg.GateAllNamespaces), "--namespace-gated="+boolString(cfg.NamespaceGated),
					"--secret-dependencies="+boolString(cfg.SecretDependencies))
				if cfg.InjectionMode != "" {
					flags = append(flags, "--injection-mode="+string(cfg.InjectionMode))
				}
			}
			want, err := os.ReadFile(filepath.Join(dir, name+".out.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			out, errOut, code := run(t, "", append([]string{"inject"}, flags...)...)
			if code != 0 || out != string(want) {
				t.Errorf("inject: exit %d, stderr %q, stdout:\n%s\nwant the golden pod:\n%s", code, errOut, out, want)
			}
			// Lint reports no problem; its only notes are the webhook's warnings.
			out, errOut, code = run(t, "", append([]string{"lint"}, flags...)...)
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if line != "" && !strings.Contains(line, ": note: ") {
					t.Errorf("lint reports %q", line)
				}
			}
			if code != 0 {
				t.Errorf("lint: exit %d, stdout %q, stderr %q; want no problem", code, out, errOut)
			}
		})
	}
}

// TestEveryGoldenCaseInBothModes runs each of the webhook's golden cases through
// kubectl-entrypoint inject with --injection-mode set to each mode, and wants
// exactly what the webhook's mutation (inject.Mutate, with the case's config in
// that mode) makes of the pod.
func TestEveryGoldenCaseInBothModes(t *testing.T) {
	const dir = goldenDir
	for _, in := range goldenInputs(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		for _, mode := range inject.InjectionModes() {
			t.Run(name+"/"+string(mode), func(t *testing.T) {
				cfg := inject.Config{Image: goldenImage, ImageConfig: goldenRegistry{}, Controller: true}
				if b, err := os.ReadFile(filepath.Join(dir, name+".config.yaml")); err == nil {
					if err := sigsyaml.UnmarshalStrict(b, &cfg); err != nil {
						t.Fatal(err)
					}
				}
				cfg.InjectionMode = mode
				b, err := os.ReadFile(in)
				if err != nil {
					t.Fatal(err)
				}
				var pod corev1.Pod
				if err := sigsyaml.UnmarshalStrict(b, &pod); err != nil {
					t.Fatal(err)
				}
				mutated, _, err := inject.Mutate(context.Background(), &pod, cfg)
				if err != nil {
					t.Fatal(err)
				}
				want, err := sigsyaml.Marshal(mutated)
				if err != nil {
					t.Fatal(err)
				}
				out, errOut, code := run(t, "", "inject", "-f", in, "--image", goldenImage, "--registry-lookup",
					"--controller="+boolString(cfg.Controller), "--gate-all-namespaces="+boolString(cfg.GateAllNamespaces),
					"--namespace-gated="+boolString(cfg.NamespaceGated), "--secret-dependencies="+boolString(cfg.SecretDependencies),
					"--injection-mode="+string(mode))
				if code != 0 || out != string(want) {
					t.Errorf("inject: exit %d, stderr %q, stdout:\n%s\nwant the webhook's pod:\n%s", code, errOut, out, want)
				}
			})
		}
	}
}

// The webhook's already-injected cases (pkg/inject/testdata/already-injected):
// inject in either mode prints each pod unchanged, as the webhook skips it.
func TestAlreadyInjectedInBothModes(t *testing.T) {
	files, err := filepath.Glob("../../inject/testdata/already-injected/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no already-injected cases (err %v)", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var pod corev1.Pod
		if err := sigsyaml.UnmarshalStrict(b, &pod); err != nil {
			t.Fatal(err)
		}
		want, err := sigsyaml.Marshal(&pod)
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range inject.InjectionModes() {
			out, errOut, code := run(t, "", "inject", "-f", file, "--image", goldenImage, "--injection-mode="+string(mode))
			if code != 0 || out != string(want) {
				t.Errorf("%s, --injection-mode=%s: exit %d, stderr %q, stdout:\n%s\nwant the pod unchanged:\n%s", file, mode, code, errOut, out, want)
			}
		}
	}
}

// --injection-mode takes the two modes; auto, which only the webhook can decide,
// and anything else are refused before any file is read.
func TestInjectionModeFlag(t *testing.T) {
	for value, want := range map[string]string{
		"auto":           "the webhook decides auto from the cluster's nodes",
		"emptydir":       "--injection-mode=emptydir: want init-container or image-volume",
		"Init-Container": "want init-container or image-volume",
	} {
		_, errOut, code := run(t, "", "inject", "-f", "testdata/lint-clean.yaml", "--injection-mode="+value)
		if code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("--injection-mode=%s: exit %d, stderr %q; want 2 and %q", value, code, errOut, want)
		}
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// TestCommands runs the commands on testdata and compares what they print with
// testdata/<name>.golden (stdout, then a line "--- stderr", then stderr).
func TestCommands(t *testing.T) {
	problems, err := os.ReadFile("testdata/lint-problems.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{name: "lint-clean", args: []string{"lint", "-f", "testdata/lint-clean.yaml"}, code: 0},
		{name: "lint-problems", args: []string{"lint", "-f", "testdata/lint-problems.yaml"}, code: 1},
		{name: "lint-deadline", args: []string{"lint", "-f", "testdata/lint-deadline.yaml"}, code: 0},
		{name: "lint-stdin", stdin: string(problems), args: []string{"lint", "-f", "-"}, code: 1},
		{name: "lint-json", args: []string{"lint", "-f", "testdata/lint-problems.yaml", "-o", "json"}, code: 1},
		{name: "lint-registry", args: []string{"lint", "-f", "testdata/lint-problems.yaml", "--registry-lookup"}, code: 1},
		{name: "inject-deployment", args: []string{"inject", "-f", "testdata/lint-clean.yaml", "--image", goldenImage}, code: 0},
		{name: "inject-denied", args: []string{"inject", "-f", "testdata/lint-problems.yaml", "--image", goldenImage, "-n", "apps"}, code: 1},
		{name: "inject-json", args: []string{"inject", "-f", "testdata/lint-clean.yaml", "--image", goldenImage, "-o", "json"}, code: 0},
		{name: "bad-flag", args: []string{"lint", "-f", "testdata/lint-clean.yaml", "--run-as-user", "0"}, code: 2},
		{name: "missing-file", args: []string{"lint", "-f", "testdata/nothing.yaml"}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
			got := out + "--- stderr\n" + errOut
			file := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs (go test -update rewrites it); got:\n%s", file, got)
			}
		})
	}
}
