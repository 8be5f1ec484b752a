package bench

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
)

const module = "github.com/kubernetes-entrypoint/kubernetes-entrypoint"

var (
	env      *testenv.Env // the control plane, started once for all benchmarks
	binary   string       // the resolver under test: ENTRYPOINT_BINARY or built here
	stampApp string       // the application the resolver execs (./stamp)
)

func TestMain(m *testing.M) {
	flag.Parse()
	// Plain `go test ./...` runs no benchmark: no control plane, no builds.
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	os.Exit(runBenchmarks(m))
}

func runBenchmarks(m *testing.M) int {
	dir, err := os.MkdirTemp("", "entrypoint-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)

	binary = os.Getenv("ENTRYPOINT_BINARY")
	if binary == "" {
		// The Makefile's flags: static, reproducible, stripped.
		binary = filepath.Join(dir, "kubernetes-entrypoint")
		if err := goBuild(binary, module+"/cmd/entrypoint", "-trimpath", "-ldflags", "-s -w"); err != nil {
			fmt.Fprintln(os.Stderr, "building the resolver:", err)
			return 1
		}
	} else if _, err := os.Stat(binary); err != nil {
		fmt.Fprintln(os.Stderr, "ENTRYPOINT_BINARY:", err)
		return 1
	}
	stampApp = filepath.Join(dir, "stamp")
	if err := goBuild(stampApp, module+"/test/bench/stamp", "-trimpath"); err != nil {
		fmt.Fprintln(os.Stderr, "building the stamp application:", err)
		return 1
	}
	fmt.Printf("resolver under test: %s\n", binary)

	env, err = testenv.Start(envtest.Environment{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	return m.Run()
}

func goBuild(out, pkg string, flags ...string) error {
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, b)
	}
	return nil
}

// measured runs a measurement once per test binary, however often the testing
// package calls the benchmark (without -benchtime 1x it calls quick ones again
// with a larger b.N); later calls report the same result.
type measured[T any] struct {
	once sync.Once
	v    T
}

func (m *measured[T]) get(b *testing.B, measure func(*testing.B) T) T {
	m.once.Do(func() { m.v = measure(b) })
	return m.v
}

// noTime hides ns/op: the benchmarks report their own metrics, and the time of
// one whole measurement run means nothing.
func noTime(b *testing.B) { b.ReportMetric(0, "ns/op") }

// needCluster skips a benchmark that needs the control plane when it is missing
// (it always runs when -bench is given; this only guards direct calls).
func needCluster(b *testing.B) {
	b.Helper()
	if env == nil {
		b.Skip("no control plane: run with -bench")
	}
}
