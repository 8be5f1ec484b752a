package inject

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const testImage = "registry.example/kubernetes-entrypoint:v0.1.0"

// fakeRegistry serves the configs of a few made-up images and records what it was
// asked for.
type fakeRegistry struct {
	mu    sync.Mutex
	asked []ImageRef
}

func (r *fakeRegistry) ImageConfig(_ context.Context, ref ImageRef) (ImageConfig, error) {
	r.mu.Lock()
	r.asked = append(r.asked, ref)
	r.mu.Unlock()
	switch ref.Image {
	case "registry.example/app:1.0":
		return ImageConfig{Entrypoint: []string{"/usr/bin/app"}, Cmd: []string{"serve", "--port=8080"}}, nil
	case "registry.example/cmd-only:1.0":
		return ImageConfig{Cmd: []string{"/bin/server", "-v"}}, nil
	case "registry.example/dollar:1.0":
		return ImageConfig{Entrypoint: []string{"/bin/app"}, Cmd: []string{"--home=$(HOME)", "--price=$5"}}, nil
	case "registry.example/empty:1.0":
		return ImageConfig{}, nil
	}
	return ImageConfig{}, errors.New("manifest unknown")
}

func (r *fakeRegistry) requests() []ImageRef {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ImageRef(nil), r.asked...)
}

// testConfig is the webhook's config in tests: defaults (the dependency
// controller runs, as by default), and the fake registry.
func testConfig() Config {
	return Config{Image: testImage, ImageConfig: &fakeRegistry{}, Controller: true}
}

// goldenConfig is testConfig changed by testdata/<name>.config.yaml when there
// is one: Config's fields by name, such as "gateAllNamespaces: true".
func goldenConfig(t testing.TB, name string) Config {
	t.Helper()
	cfg := testConfig()
	b, err := os.ReadFile(filepath.Join("testdata", name+".config.yaml"))
	if errors.Is(err, os.ErrNotExist) {
		return cfg
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		t.Fatalf("testdata/%s.config.yaml: %v", name, err)
	}
	return cfg
}

func readPod(t testing.TB, file string) *corev1.Pod {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(b, &pod); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return &pod
}

// simplePod is a pod in namespace shop with one container app running /usr/bin/app,
// and the given annotations.
func simplePod(annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "registry.example/app:1.0", Command: []string{"/usr/bin/app"}},
		}},
	}
}
