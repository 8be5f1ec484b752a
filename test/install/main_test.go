// Package install tests the ways to install kubernetes-entrypoint: the Helm chart
// (lint, schema, golden renders), the kustomize configs, their agreement, a
// server-side dry-run of both on a real kube-apiserver, the webhook process running
// with the chart's flags, and the image build (Dockerfile and make agree).
//
// Regenerate the golden files with `go test ./test/install/ -run Golden -update`.
package install

import (
	"flag"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// repoRoot is the repository's top directory.
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}()

var (
	chartDir     = filepath.Join(repoRoot, "charts", "kubernetes-entrypoint")
	kustomizeDir = filepath.Join(repoRoot, "config", "default")
)

// One control plane serves every test that needs one; started on first use.
var (
	envOnce sync.Once
	envErr  error
	shared  *testenv.Env
)

func controlPlane(t *testing.T) *testenv.Env {
	t.Helper()
	testenv.SkipWithoutAssets(t)
	envOnce.Do(func() { shared, envErr = testenv.Start(envtest.Environment{}) })
	if envErr != nil {
		t.Fatal(envErr)
	}
	return shared
}

func TestMain(m *testing.M) {
	flag.Parse()
	// Helm's template engine logs each `fail` through the standard logger; the tests
	// check the errors themselves.
	log.SetOutput(io.Discard)
	code := m.Run()
	if shared != nil {
		_ = shared.Stop()
	}
	if makeDir != "" {
		_ = os.RemoveAll(makeDir)
	}
	os.Exit(code)
}
