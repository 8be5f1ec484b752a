package benchgate

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchproc"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook/server"
)

// rig is what every scenario shares: one control plane and the binaries under test.
type rig struct {
	env        *testenv.Env
	client     kubernetes.Interface // the harness's own: protobuf, no client-side rate limit
	kubeconfig string               // cluster-admin, for the controller and the resolvers
	apiServer  int                  // pid of kube-apiserver
	controller string               // entrypoint-webhook
	resolver   string               // kubernetes-entrypoint
	qps, burst int                  // the controller's --kube-api-qps and --kube-api-burst
	profiler   *profiler            // nil unless GATE_PROFILE_DIR is set
}

// the is set once by TestMain before any benchmark runs and only read afterwards.
var the *rig

func TestMain(m *testing.M) {
	flag.Parse()
	// Plain `go test ./...` runs the unit tests only: no control plane, no builds.
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	os.Exit(runBenchmarks(m))
}

func runBenchmarks(m *testing.M) int {
	dir, err := os.MkdirTemp("", "entrypoint-bench-gate-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)

	r := &rig{}
	if r.controller, err = binary(dir, "ENTRYPOINT_WEBHOOK_BINARY", "entrypoint-webhook", "/cmd/webhook"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if r.resolver, err = binary(dir, "ENTRYPOINT_BINARY", "kubernetes-entrypoint", "/cmd/entrypoint"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// entrypoint-webhook's own defaults unless GATE_KUBE_API_QPS and GATE_KUBE_API_BURST say otherwise.
	defaults := server.DefaultOptions()
	if r.qps, r.burst, err = clientLimits(int(defaults.KubeAPIQPS), defaults.KubeAPIBurst); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("controller under test: %s --kube-api-qps %d --kube-api-burst %d\nresolver under test: %s\n", r.controller, r.qps, r.burst, r.resolver)

	if r.profiler, err = profilerFromEnv(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if r.env, err = testenv.Start(envtest.Environment{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = r.env.Stop() }()
	if err := r.finish(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	the = r
	return m.Run()
}

// finish derives the rest of the rig from the running control plane.
func (r *rig) finish(dir string) error {
	cfg := rest.CopyConfig(r.env.Config)
	// Creating 10,000 pods as fast as the API server takes them: no client-side
	// limit, and protobuf so the harness's own pod watch costs less CPU.
	cfg.QPS, cfg.Burst = 1e6, 1e6
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("a client for the control plane: %w", err)
	}
	r.client = cs
	r.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(r.kubeconfig, r.env.KubeconfigBytes(), 0o600); err != nil {
		return fmt.Errorf("writing the admin kubeconfig: %w", err)
	}
	if r.apiServer, err = benchproc.ChildNamed(os.Getpid(), "kube-apiserver"); err != nil {
		return fmt.Errorf("finding the API server's process, to read its memory: %w", err)
	}
	return nil
}

// binary is the path in env, checked, or else pkg built into dir with the
// Makefile's flags: what is measured is what ships.
func binary(dir, env, name, pkg string) (string, error) {
	return benchproc.Binary(dir, env, name, pkg, []string{"CGO_ENABLED=0"}, benchproc.ReleaseFlags...)
}

// testBinary is binary for a test, which measures nothing: go build's default
// flags, so that it reuses the packages `go vet` compiled (make test vets
// first) and takes seconds.
func testBinary(dir, env, name, pkg string) (string, error) {
	return benchproc.Binary(dir, env, name, pkg, nil)
}

// need skips a benchmark that needs the control plane when it is missing (it
// always runs when -bench is given; this only guards direct calls).
func need(b *testing.B) *rig {
	b.Helper()
	if the == nil {
		b.Skip("no control plane: run with -bench")
	}
	return the
}
