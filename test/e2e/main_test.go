//go:build e2e

package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localcluster"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/release"
)

const (
	// resolverImage is the project's resolver image (kubernetes-entrypoint alone),
	// which the webhook injects; webhookImage the webhook's. Both are built as the
	// release builds them (internal/release).
	resolverImage = "localhost/kubernetes-entrypoint:e2e"
	webhookImage  = "localhost/entrypoint-webhook:e2e"
	// appImage is test/e2e/testapp: no shell, nothing else.
	appImage = "localhost/ke-e2e-app:v1"
)

// Set up by TestMain for every test.
var (
	cluster    *localcluster.Cluster
	restConfig *rest.Config
	cs         kubernetes.Interface
	// resolverClusterRole is the chart's ClusterRole for the resolver in annotated pods.
	resolverClusterRole string
	// reg serves images over HTTPS on loopback; the webhook trusts its CA.
	reg *testRegistry
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) (code int) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: needs root (the local cluster runs containerd, runc and the kubelet); skipping")
		return 0
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	c, err := localcluster.New(suite.clusterOptions)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if running := c.Running(); len(running) > 0 {
		// Not ours to take down.
		fmt.Fprintf(os.Stderr, "e2e: a cluster already runs in %s (%v); stop it first: go run ./hack/cluster down\n", c.Dir(), running)
		return 1
	}
	// Down exactly once: at the end, on a panic, or on SIGINT/SIGTERM. A panic in a
	// test would end the process before this runs: every test defers noPanic.
	var downOnce sync.Once
	down := func() {
		downOnce.Do(func() {
			if err := c.Down(); err != nil {
				fmt.Fprintln(os.Stderr, "e2e: cluster down:", err)
				code = 1
			}
		})
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			fmt.Fprintln(os.Stderr, "e2e: interrupted: taking the cluster down")
			down()
			os.Exit(1)
		}
	}()
	// go test's -timeout panics in its own goroutine, where no deferred call of ours
	// runs: end a little before it, with the same goroutine dump, and take the cluster
	// down on the way out.
	if guard := timeoutGuard(); guard > 0 {
		timer := time.AfterFunc(guard, func() {
			fmt.Fprintf(os.Stderr, "e2e: %s passed, close to go test's -timeout: goroutines, then taking the cluster down\n", guard)
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
			down()
			os.Exit(1)
		})
		defer timer.Stop()
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "e2e: panic: %v\n", r)
			code = 1
		}
		down()
		if reg != nil {
			reg.Close()
		}
		fmt.Fprintf(os.Stderr, "e2e: everything, cluster up and down included, took %s\n", time.Since(began).Round(time.Millisecond))
		if suite.report != nil {
			suite.report(code)
		}
	}()

	if err := setup(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: setup:", err)
		return 1
	}
	return m.Run()
}

// setup starts the cluster, builds and imports the images and installs the chart.
func setup(ctx context.Context, c *localcluster.Cluster) error {
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("cluster up: %w (logs in %s)", err, c.Path("logs"))
	}
	cluster = c
	var err error
	if restConfig, err = c.RESTConfig(); err != nil {
		return err
	}
	if cs, err = kubernetes.NewForConfig(restConfig); err != nil {
		return err
	}
	if suite.beforeInstall != nil {
		if err := suite.beforeInstall(c); err != nil {
			return err
		}
	}
	if reg, err = startRegistry(); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	// The images build at once: go build dominates.
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		// The CA bundle replaced by the test registry's CA: the webhook trusts it.
		errs[0] = c.BuildAndImportProjectImages(ctx, localcluster.ProjectImages{Resolver: resolverImage, Webhook: webhookImage}, "e2e",
			map[string][]byte{release.CABundlePath: reg.caPEM})
	})
	wg.Go(func() {
		errs[1] = c.BuildAndImportImage(ctx, localcluster.Image{
			Ref:      appImage,
			Binaries: []localcluster.Binary{{Name: "testapp", Package: "./test/e2e/testapp"}},
			User:     "65532:65532",
		})
	})
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return installChart(ctx)
}

// timeoutGuard is how long the run may take before go test's -timeout would kill it
// with no chance to clean up, less a margin for the teardown; 0 when there is no timeout.
func timeoutGuard() time.Duration {
	if !flag.Parsed() {
		flag.Parse()
	}
	f := flag.Lookup("test.timeout")
	if f == nil {
		return 0
	}
	d, ok := f.Value.(flag.Getter).Get().(time.Duration)
	if !ok || d <= 0 {
		return 0
	}
	const margin = 30 * time.Second
	return max(d-margin, d/2)
}

// noPanic turns a panic in a test into a failure, so that the process lives on and
// TestMain takes the cluster down. Defer it first in every test.
func noPanic(t testing.TB) {
	if r := recover(); r != nil {
		t.Errorf("panic: %v\n%s", r, debug.Stack())
	}
}
