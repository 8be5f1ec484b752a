package offline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/cli/manifest"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// goldenDir holds the webhook's golden cases: pods in, mutated pods out, and the
// webhook's config where it differs from the default.
const goldenDir = "../../inject/testdata"

// registry answers as pkg/inject's golden test registry does (helpers_test.go
// there): the golden outputs of images without command depend on these answers.
type registry struct{}

func (registry) ImageConfig(_ context.Context, ref inject.ImageRef) (inject.ImageConfig, error) {
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

// goldenOptions are the options the CLI gets for golden case name: the
// webhook's test config, changed by <name>.config.yaml.
func goldenOptions(t *testing.T, name string) Options {
	t.Helper()
	cfg := inject.Config{Image: "registry.example/kubernetes-entrypoint:v0.1.0", ImageConfig: registry{}, Controller: true}
	b, err := os.ReadFile(filepath.Join(goldenDir, name+".config.yaml"))
	if err == nil {
		if err := sigsyaml.UnmarshalStrict(b, &cfg); err != nil {
			t.Fatalf("%s.config.yaml: %v", name, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return Options{Config: cfg, Namespace: "default"}
}

func goldenCases(t *testing.T) []string {
	t.Helper()
	inputs, err := filepath.Glob(filepath.Join(goldenDir, "*.in.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden cases in %s (err %v)", goldenDir, err)
	}
	var names []string
	for _, in := range inputs {
		names = append(names, strings.TrimSuffix(filepath.Base(in), ".in.yaml"))
	}
	return names
}

// TestInjectAgreesWithWebhookGolden runs every golden case of the webhook through
// the CLI's path (file -> documents -> Inject -> YAML) and wants the golden
// output byte for byte; and again with the pod as a Deployment's template, whose
// template must come out as the golden pod's metadata and spec.
func TestInjectAgreesWithWebhookGolden(t *testing.T) {
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			opts := goldenOptions(t, name)
			in, err := os.ReadFile(filepath.Join(goldenDir, name+".in.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(goldenDir, name+".out.yaml"))
			if err != nil {
				t.Fatal(err)
			}

			docs, err := manifest.Parse(name+".in.yaml", in)
			if err != nil {
				t.Fatal(err)
			}
			results, err := Inject(context.Background(), docs, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(results) != 1 || results[0].Outcome.Result != inject.ResultInjected || Failed(results) {
				t.Fatalf("outcome %+v, findings %v; want one injected pod without errors", results[0].Outcome, Findings(results))
			}
			// The webhook's admission warnings are the only notes.
			var notes []string
			for _, f := range Findings(results) {
				notes = append(notes, strings.TrimPrefix(f.Message, "the webhook would warn: "))
			}
			if !slices.Equal(notes, results[0].Outcome.Warnings) {
				t.Errorf("notes %q, want the webhook's warnings %q", notes, results[0].Outcome.Warnings)
			}
			var got bytes.Buffer
			if err := manifest.Write(&got, docs); err != nil {
				t.Fatal(err)
			}
			if got.String() != string(want) {
				t.Errorf("inject of %s.in.yaml differs from %s.out.yaml:\n got: %s\nwant: %s", name, name, got.String(), want)
			}

			// The same pod as a Deployment's template.
			var pod, wantPod corev1.Pod
			if err := sigsyaml.Unmarshal(in, &pod); err != nil {
				t.Fatal(err)
			}
			if err := sigsyaml.Unmarshal(want, &wantPod); err != nil {
				t.Fatal(err)
			}
			deployment := map[string]any{
				"apiVersion": "apps/v1", "kind": "Deployment",
				"metadata": map[string]any{"name": "d", "namespace": pod.Namespace},
				"spec":     map[string]any{"template": corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}},
			}
			b, err := sigsyaml.Marshal(deployment)
			if err != nil {
				t.Fatal(err)
			}
			docs, err = manifest.Parse("deployment.yaml", b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Inject(context.Background(), docs, opts); err != nil {
				t.Fatal(err)
			}
			tmpl, _, err := docs[0].Pod()
			if err != nil {
				t.Fatal(err)
			}
			wantTmpl := corev1.PodTemplateSpec{ObjectMeta: wantPod.ObjectMeta, Spec: wantPod.Spec}
			wantTmpl.Namespace = pod.Namespace
			gotTmpl := corev1.PodTemplateSpec{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
			if !reflect.DeepEqual(gotTmpl, wantTmpl) {
				g, _ := sigsyaml.Marshal(gotTmpl)
				w, _ := sigsyaml.Marshal(wantTmpl)
				t.Errorf("Deployment template differs from the golden pod:\n got: %s\nwant: %s", g, w)
			}
		})
	}
}

// TestLintAgreesWithWebhookGolden: the webhook injects every golden case, so
// lint finds no error in any, with the registry or without.
func TestLintAgreesWithWebhookGolden(t *testing.T) {
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			for _, lookup := range []bool{true, false} {
				opts := goldenOptions(t, name)
				if !lookup {
					opts.Config.ImageConfig = nil
				}
				docs, err := manifest.Read([]string{filepath.Join(goldenDir, name+".in.yaml")}, nil)
				if err != nil {
					t.Fatal(err)
				}
				results, err := Lint(context.Background(), docs, opts)
				if err != nil {
					t.Fatal(err)
				}
				if Failed(results) {
					t.Errorf("registry lookup %v: lint reports %v; the webhook injects this pod", lookup, Findings(results))
				}
			}
		})
	}
}

// TestLintDenialsAreTheWebhooks: for pods the webhook denies, lint reports
// exactly its problems (message and field), each at the line of that field.
func TestLintDenialsAreTheWebhooks(t *testing.T) {
	base := func(annotations map[string]string, mutate func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Annotations: annotations},
			Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "app", Image: "registry.example/app:1.0", Command: []string{"/usr/bin/app"}},
			}},
		}
		if mutate != nil {
			mutate(p)
		}
		return p
	}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		noLookup bool
		// key is the text on the line each problem must be reported at.
		key []string
	}{
		{name: "empty list item", pod: base(map[string]string{"entrypoint.io/dependency-service": "a,,b"}, nil),
			key: []string{"entrypoint.io/dependency-service:"}},
		{name: "service name", pod: base(map[string]string{"entrypoint.io/dependency-service": "openstack:MariaDB"}, nil),
			key: []string{"entrypoint.io/dependency-service:"}},
		{name: "unknown annotation", pod: base(map[string]string{"entrypoint.io/dependency-services": "db"}, nil),
			key: []string{"entrypoint.io/dependency-services:"}},
		{name: "two problems", pod: base(map[string]string{
			"entrypoint.io/dependency-job":    "db_migrate",
			"entrypoint.io/dependency-socket": "relative/path",
		}, nil), key: []string{"entrypoint.io/dependency-job:", "entrypoint.io/dependency-socket:"}},
		{name: "container waits for itself", pod: base(map[string]string{"entrypoint.io/dependency-container": "app"}, nil),
			key: []string{"entrypoint.io/dependency-container:"}},
		{name: "no command, registry off", noLookup: true,
			pod: base(map[string]string{"entrypoint.io/dependency-service": "db"}, func(p *corev1.Pod) { p.Spec.Containers[0].Command = nil }),
			key: []string{"- image: registry.example/"}},
		{name: "no command, image unknown",
			pod: base(map[string]string{"entrypoint.io/dependency-service": "db"}, func(p *corev1.Pod) {
				p.Spec.Containers[0].Command = nil
				p.Spec.Containers[0].Image = "registry.example/nothing:1"
			}),
			key: []string{"- image: registry.example/"}},
		{name: "env conflict", pod: base(map[string]string{"entrypoint.io/dependency-service": "db"}, func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DEPENDENCY_SERVICE", Value: "x"}}
		}), key: []string{"- name: DEPENDENCY_SERVICE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := inject.Config{Image: "registry.example/kubernetes-entrypoint:v0.1.0", ImageConfig: registry{}, Controller: true}
			if tt.noLookup {
				cfg.ImageConfig = nil
			}
			_, _, err := inject.Mutate(context.Background(), tt.pod, cfg)
			var denied *inject.DeniedError
			if !errors.As(err, &denied) {
				t.Fatalf("the webhook does not deny this pod: %v", err)
			}

			file := encodeWithLeadingDocument(t, tt.pod)
			docs, err := manifest.Parse("pods.yaml", file)
			if err != nil {
				t.Fatal(err)
			}
			// Lint with the webhook's lookup where it has one; without, Inject
			// (which denies like the webhook with --registry-lookup=false).
			run := Lint
			if tt.noLookup {
				run = Inject
			}
			results, err := run(context.Background(), docs, Options{Config: cfg, Namespace: "default"})
			if err != nil {
				t.Fatal(err)
			}
			var errs []Finding
			for _, f := range Findings(results) {
				if f.Severity == SeverityError {
					errs = append(errs, f)
				}
			}
			if len(errs) != len(denied.Problems) {
				t.Fatalf("lint found %v, the webhook %v", errs, denied.Problems)
			}
			lines := strings.Split(string(file), "\n")
			for i, p := range denied.Problems {
				if errs[i].Message != p.Detail || errs[i].Field != p.Field {
					t.Errorf("problem %d: lint %q at %s, webhook %q at %s", i, errs[i].Message, errs[i].Field, p.Detail, p.Field)
				}
				if l := errs[i].Line; l < 1 || l > len(lines) || !strings.Contains(lines[l-1], tt.key[i]) {
					t.Errorf("problem %d reported at line %d, want the line of %q in:\n%s", i, l, tt.key[i], file)
				}
			}
		})
	}
}

// encodeWithLeadingDocument is a ConfigMap, then pod, as one multi-document
// file, so that line numbers are not those of a file of its own.
func encodeWithLeadingDocument(t *testing.T, pod *corev1.Pod) []byte {
	t.Helper()
	b, err := sigsyaml.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte("# unrelated\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n---\n"), b...)
}
