package localcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// APIServerPort is where kube-apiserver listens on 127.0.0.1. Pods that call the API
// server use the host network and KUBERNETES_SERVICE_HOST=127.0.0.1 with this port:
// nothing routes Service IPs here.
const APIServerPort = 6443

// Loopback ports. etcd avoids 2379 so that it never meets another etcd on the machine.
const (
	etcdClientPort    = 12379
	etcdPeerPort      = 12380
	apiserverPort     = APIServerPort
	kcmPort           = 10257
	schedulerPort     = 10259
	kubeletPort       = 10250
	kubeletHealthPort = 10248

	serviceCIDR = "10.96.0.0/16"
	serviceIP   = "10.96.0.1" // the first address of serviceCIDR: the `kubernetes` Service
	podCIDR     = "10.85.0.0/24"
	bridgeName  = "ke-br0"
	// BridgeGateway is the host's address on the pods' bridge with Options.HostOnPodNetwork.
	BridgeGateway = "10.85.0.1"
	cniNetwork    = "ke-cluster"
	pauseImage    = "localhost/ke-pause:v1"
	clusterDomain = "cluster.local"
)

// The binaries hack/build-k8s.sh builds, in start order.
var k8sBinaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl"}

// The binaries hack/build-containerd.sh builds, and the version it builds by default.
var containerdBinaries = []string{"containerd", "containerd-shim-runc-v2", "ctr"}

const defaultContainerdVersion = "v2.4.2"

// runcPath is Debian's runc, which the shim runs and down uses to remove containers.
const runcPath = "/usr/sbin/runc"

// Cluster knows where everything lives. Make one with New (or Up).
type Cluster struct {
	dir      string // the state directory: everything up writes is under it
	repo     string // the repository root (for hack/build-k8s.sh and the image sources)
	binDir   string // the cached Kubernetes binaries
	binFixed bool   // binDir was given (KE_CLUSTER_BIN or Options.BinDir): never build into it
	ctrdDir  string // the cached containerd binaries: $KE_CACHE/containerd-$CONTAINERD_VERSION
	nodeName string
	// podNetwork: the host has an address on the pods' bridge (Options.HostOnPodNetwork).
	podNetwork bool
	// auditNamespaces: Options.AuditServiceAccountsIn.
	auditNamespaces []string

	containerIDs []string // found by down in runc's state: sandboxes and containers

	logf func(format string, args ...any) // Options.Logf or stderrLogger; never nil
}

// Options say where a cluster lives. Every field is optional.
type Options struct {
	// Dir is the state directory; default $KE_CLUSTER_DIR, else /tmp/ke-cluster.
	Dir string
	// BinDir holds the Kubernetes binaries; default $KE_CLUSTER_BIN, else
	// $KE_CACHE/k8s-$K8S_VERSION (built there by hack/build-k8s.sh when missing).
	// containerd, its runc shim and ctr are always in $KE_CACHE/containerd-$CONTAINERD_VERSION
	// (built there by hack/build-containerd.sh when missing).
	BinDir string
	// Repo is the repository root; default: found upwards from the working directory.
	Repo string
	// Logf receives the progress lines (of Start, Down, the image helpers, Smoke, ...),
	// one per call. Default: written to stderr with the seconds since New.
	Logf func(format string, args ...any)
	// HostOnPodNetwork gives the host the address BridgeGateway on the pods' bridge, so
	// that it reaches pod IPs: the API server then calls a webhook registered through
	// its Service at a ready endpoint (--enable-aggregator-routing), and the kubelet's
	// HTTP probes reach pods. Pods still get no default route: they reach the host's
	// bridge address and each other, nothing else (ServeAPIServerOnBridge lets them
	// reach the API server). Off by default: only the fault scenarios need it.
	HostOnPodNetwork bool
	// AuditServiceAccountsIn are namespaces whose ServiceAccounts' requests
	// kube-apiserver records in its audit log (AuditLogPath), at level Metadata; no
	// other request is recorded. Empty: no audit log. The end-to-end suite counts the
	// requests of the resolvers of one namespace this way.
	AuditServiceAccountsIn []string
}

// New resolves the cluster's paths; it starts nothing.
func New(opts Options) (*Cluster, error) {
	began := time.Now()
	dir := opts.Dir
	if dir == "" {
		dir = os.Getenv("KE_CLUSTER_DIR")
	}
	if dir == "" {
		dir = "/tmp/ke-cluster"
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if dir == "/" || len(strings.Split(strings.Trim(dir, "/"), "/")) < 2 {
		// down removes the directory: refuse /, /tmp, /var and the like.
		return nil, fmt.Errorf("KE_CLUSTER_DIR=%s: want a dedicated directory at least two levels deep", dir)
	}
	repo := opts.Repo
	if repo == "" {
		if repo, err = repoRoot(); err != nil {
			return nil, err
		}
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, repo: repo, nodeName: strings.ToLower(host), logf: opts.Logf, podNetwork: opts.HostOnPodNetwork, auditNamespaces: opts.AuditServiceAccountsIn}
	if c.logf == nil {
		c.logf = stderrLogger(began)
	}
	c.binDir = opts.BinDir
	if c.binDir == "" {
		c.binDir = os.Getenv("KE_CLUSTER_BIN")
	}
	c.binFixed = c.binDir != ""
	cache := os.Getenv("KE_CACHE")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, err
		}
		cache = filepath.Join(base, "kubernetes-entrypoint")
	}
	if c.binDir == "" {
		c.binDir = filepath.Join(cache, "k8s-"+envOr("K8S_VERSION", "v1.37.2"))
	}
	c.ctrdDir = filepath.Join(cache, "containerd-"+envOr("CONTAINERD_VERSION", defaultContainerdVersion))
	return c, nil
}

// envOr is the environment variable key, or def when it is unset or empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// repoRoot is the directory holding go.mod, found upwards from the working directory.
func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "hack", "build-k8s.sh")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("run from inside the kubernetes-entrypoint repository (hack/build-k8s.sh not found)")
		}
		d = parent
	}
}

// Path is a file or directory in the cluster's state directory.
func (c *Cluster) Path(elem ...string) string {
	return filepath.Join(append([]string{c.dir}, elem...)...)
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.binDir, name) }

// ctrdBin is one of the cached containerd binaries (containerdBinaries).
func (c *Cluster) ctrdBin(name string) string { return filepath.Join(c.ctrdDir, name) }

// ctr runs the cached ctr against the cluster's containerd. It asks for no deprecation
// warnings: on a cgroup v1 host every call would print one.
func (c *Cluster) ctr(args ...string) (string, error) {
	cmd := exec.Command(c.ctrdBin("ctr"), append([]string{"--address", c.ContainerdSocket()}, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=true")
	return runCmd(cmd)
}

// ContainerdSocket is the socket of the cluster's containerd.
func (c *Cluster) ContainerdSocket() string { return c.Path("containerd", "containerd.sock") }

func (c *Cluster) apiserverURL() string { return fmt.Sprintf("https://127.0.0.1:%d", apiserverPort) }

// ensureBinaries builds (or finds cached) every Kubernetes binary with hack/build-k8s.sh
// and containerd's with hack/build-containerd.sh.
func (c *Cluster) ensureBinaries() error {
	if missing(c.binDir, k8sBinaries) {
		if c.binFixed {
			return fmt.Errorf("KE_CLUSTER_BIN=%s lacks some of %v", c.binDir, k8sBinaries)
		}
		c.Logf("building the Kubernetes binaries with hack/build-k8s.sh (cold: several minutes each)")
		if err := c.buildInto("build-k8s.sh", k8sBinaries, c.binDir, "KE_CACHE/K8S_VERSION"); err != nil {
			return err
		}
	}
	if missing(c.ctrdDir, containerdBinaries) {
		c.Logf("building containerd with hack/build-containerd.sh (cold: a few minutes)")
		if err := c.buildInto("build-containerd.sh", containerdBinaries, c.ctrdDir, "KE_CACHE/CONTAINERD_VERSION"); err != nil {
			return err
		}
	}
	return nil
}

// missing tells whether any of bins is not in dir.
func missing(dir string, bins []string) bool {
	for _, b := range bins {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return true
		}
	}
	return false
}

// buildInto runs hack/<script> for bins and checks that it put them in dir (it prints
// its cache directory); env names the variables that decide that directory.
func (c *Cluster) buildInto(script string, bins []string, dir, env string) error {
	cmd := exec.Command(filepath.Join(c.repo, "hack", script), bins...)
	cmd.Dir = c.repo
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("hack/%s: %w", script, err)
	}
	if got := strings.TrimSpace(string(out)); got != dir {
		return fmt.Errorf("hack/%s put the binaries in %s, expected %s (set %s consistently)", script, got, dir, env)
	}
	return nil
}

// DebianPackage is a package to install when File is missing.
type DebianPackage struct{ File, Name string }

// nodePackages are what the node needs from Debian. containerd is not among them: it is
// built from the Go module proxy (hack/build-containerd.sh); an installed Debian
// containerd is left alone and never used.
var nodePackages = []DebianPackage{
	{runcPath, "runc"},
	{"/usr/lib/cni/bridge", "containernetworking-plugins"},
	{"/usr/lib/cni/host-local", "containernetworking-plugins"},
	{"/usr/lib/cni/loopback", "containernetworking-plugins"},
	{"/usr/sbin/iptables", "iptables"},
	{"/sbin/ip", "iproute2"},
}

// EnsurePackages installs those of pkgs whose file is missing, with apt-get.
func (c *Cluster) EnsurePackages(pkgs ...DebianPackage) error {
	var want []string
	seen := map[string]bool{}
	for _, p := range pkgs {
		if _, err := os.Stat(p.File); err != nil && !seen[p.Name] {
			seen[p.Name] = true
			want = append(want, p.Name)
		}
	}
	if len(want) == 0 {
		return nil
	}
	c.Logf("installing Debian packages: %s", strings.Join(want, " "))
	run := func(args ...string) error {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd.Run()
	}
	if err := run("update", "-qq"); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	if err := run(append([]string{"install", "-y", "-qq", "--no-install-recommends"}, want...)...); err != nil {
		return fmt.Errorf("apt-get install: %w", err)
	}
	return nil
}
