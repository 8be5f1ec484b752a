package benchkwok

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/benchproc"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook/server"
)

// Client limits of the processes under test. The scheduler's defaults (50 QPS,
// burst 100) would make its client, not its algorithm, the limit of a 10,000-pod
// burst; these are high enough that the API server is.
const (
	schedulerQPS   = 1000
	schedulerBurst = 2000
)

// settings are the benchmark's knobs.
type settings struct {
	nodes, pods int
}

func readSettings() (settings, error) {
	s := settings{nodes: 500, pods: 10000}
	for _, knob := range []struct {
		name string
		v    *int
	}{{"BENCH_KWOK_NODES", &s.nodes}, {"BENCH_KWOK_PODS", &s.pods}} {
		if raw := os.Getenv(knob.name); raw != "" {
			n, err := strconv.Atoi(raw)
			if err != nil || n <= 0 {
				return s, fmt.Errorf("%s=%q: want a positive integer", knob.name, raw)
			}
			*knob.v = n
		}
	}
	if s.pods%services != 0 {
		return s, fmt.Errorf("BENCH_KWOK_PODS=%d: want a multiple of %d, the number of Services", s.pods, services)
	}
	return s, nil
}

// rig is what every scenario shares: the control plane, kwok, the fake nodes
// and the binaries under test.
type rig struct {
	settings
	dir        string
	env        *testenv.Env
	client     kubernetes.Interface // the harness's own: protobuf, no client-side rate limit
	kubeconfig string               // cluster-admin, for every process under test
	apiServer  int                  // pid of kube-apiserver
	etcd       int                  // pid of etcd
	kwok       *benchproc.Process
	scheduler  string // kube-scheduler binary
	controller string // entrypoint-webhook binary
	qps, burst int    // the controller's --kube-api-qps and --kube-api-burst
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
	r, stop, err := setUp()
	defer stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	the = r
	return m.Run()
}

// setUp starts everything the scenarios share; stop undoes what was started,
// also when err is set.
func setUp() (r *rig, stop func(), err error) {
	r = &rig{}
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if r.settings, err = readSettings(); err != nil {
		return nil, stop, err
	}
	if r.dir, err = os.MkdirTemp("", "entrypoint-bench-kwok-"); err != nil {
		return nil, stop, err
	}
	stops = append(stops, func() { _ = os.RemoveAll(r.dir) })

	kwok := os.Getenv("KWOK_BINARY")
	if kwok == "" {
		return nil, stop, fmt.Errorf("KWOK_BINARY is not set: hack/build-kwok.sh builds kwok and prints the directory it is in (make bench-kwok does both)")
	}
	r.scheduler = filepath.Join(os.Getenv(testenv.AssetsVar), "kube-scheduler")
	for _, bin := range []string{kwok, r.scheduler} {
		if _, err := os.Stat(bin); err != nil {
			return nil, stop, fmt.Errorf("%w (hack/build-kwok.sh builds kwok, hack/build-k8s.sh kube-scheduler kube-scheduler)", err)
		}
	}
	if r.controller, err = binary(r.dir, "ENTRYPOINT_WEBHOOK_BINARY", "entrypoint-webhook", "/cmd/webhook"); err != nil {
		return nil, stop, err
	}
	defaults := server.DefaultOptions()
	r.qps, r.burst = int(defaults.KubeAPIQPS), defaults.KubeAPIBurst
	fmt.Printf("controller: %s --kube-api-qps %d --kube-api-burst %d\nscheduler: %s --kube-api-qps %d --kube-api-burst %d\nkwok: %s\nnodes: %d, pods per scenario: %d\n",
		r.controller, r.qps, r.burst, r.scheduler, schedulerQPS, schedulerBurst, kwok, r.nodes, r.pods)

	if r.env, err = testenv.Start(envtest.Environment{}); err != nil {
		return nil, stop, err
	}
	stops = append(stops, func() { _ = r.env.Stop() })
	if err := r.finish(); err != nil {
		return nil, stop, err
	}
	if r.kwok, err = r.startKwok(kwok); err != nil {
		return nil, stop, err
	}
	stops = append(stops, r.kwok.Stop)
	if err := r.createNodes(); err != nil {
		return nil, stop, err
	}
	return r, stop, nil
}

// finish derives the rest of the rig from the running control plane.
func (r *rig) finish() error {
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
	r.kubeconfig = filepath.Join(r.dir, "kubeconfig")
	if err := os.WriteFile(r.kubeconfig, r.env.KubeconfigBytes(), 0o600); err != nil {
		return fmt.Errorf("writing the admin kubeconfig: %w", err)
	}
	if r.apiServer, err = benchproc.ChildNamed(os.Getpid(), "kube-apiserver"); err != nil {
		return fmt.Errorf("finding the API server's process, to read its memory: %w", err)
	}
	if r.etcd, err = benchproc.ChildNamed(os.Getpid(), "etcd"); err != nil {
		return fmt.Errorf("finding etcd's process, to read its memory: %w", err)
	}
	return nil
}

// binary is the path in env, checked, or else pkg built into dir with the
// Makefile's flags (static, reproducible, stripped).
func binary(dir, env, name, pkg string) (string, error) {
	return benchproc.Binary(dir, env, name, pkg, []string{"CGO_ENABLED=0"}, benchproc.ReleaseFlags...)
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
