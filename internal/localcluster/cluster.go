// Package localcluster runs a real single-node Kubernetes cluster on this machine, on
// loopback: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the
// kubelet built from the Go module proxy (hack/build-k8s.sh), with containerd 2.x built
// from the Go module proxy as well (hack/build-containerd.sh), runc and the CNI plugins
// from Debian's packages. Every file lives under one state directory;
// Down removes every process, mount, network link, cgroup and iptables chain that Start
// made, also after a failed Start. It needs root. hack/cluster is its command line; the
// end-to-end tests (test/e2e) use it directly.
package localcluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Logf writes one progress line (of Start, Down, the image helpers, Smoke, ...) through
// the cluster's logger: Options.Logf, by default a line on stderr with the seconds since
// the cluster was made by New.
func (c *Cluster) Logf(format string, args ...any) { c.logf(format, args...) }

// stderrLogger writes lines to stderr with the seconds since began.
func stderrLogger(began time.Time) func(format string, args ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%6.2fs] %s\n", time.Since(began).Seconds(), strings.TrimSuffix(fmt.Sprintf(format, args...), "\n"))
	}
}

// Up resolves the cluster's paths with New and starts it. When Start fails the Cluster
// is returned with the error, so that the caller can Down it (Down cleans up after a
// half-made cluster as well); it is nil only when New failed.
func Up(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := New(opts)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return c, fmt.Errorf("%w (logs in %s)", err, c.Path("logs"))
	}
	return c, nil
}

// Dir is the state directory.
func (c *Cluster) Dir() string { return c.dir }

// Repo is the repository root: image packages are built from there.
func (c *Cluster) Repo() string { return c.repo }

// BinDir holds the Kubernetes binaries (kubectl included).
func (c *Cluster) BinDir() string { return c.binDir }

// NodeName is the name of the one node.
func (c *Cluster) NodeName() string { return c.nodeName }

// KubeconfigPath is the admin kubeconfig (cluster-admin, on https://127.0.0.1:6443).
func (c *Cluster) KubeconfigPath() string { return c.Path("pki", "admin.kubeconfig") }

// RESTConfig is the admin client configuration.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigPath())
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

// Env is the shell exports that point kubectl, ctr and the tests at this cluster; PATH
// starts with the cached containerd binaries, so that `ctr` is the one that matches the
// node's containerd.
func (c *Cluster) Env() string {
	return fmt.Sprintf("export KUBECONFIG=%s\nexport CONTAINERD_ADDRESS=%s\nexport CONTAINERD_NAMESPACE=k8s.io\nexport KE_CLUSTER_BIN=%s\nexport PATH=%s:$PATH\n",
		c.KubeconfigPath(), c.ContainerdSocket(), c.binDir, c.ctrdDir)
}

// Running lists the components of this state directory that run now.
func (c *Cluster) Running() []string {
	var names []string
	for _, name := range allComponents {
		if _, ok := c.alive(name); ok {
			names = append(names, name)
		}
	}
	return names
}
