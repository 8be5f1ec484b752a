package localcluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Start starts the cluster and waits until the node is Ready and pods can be created.
// It installs missing Debian packages and builds missing Kubernetes binaries first.
func (c *Cluster) Start(ctx context.Context) error {
	began := time.Now()
	if os.Geteuid() != 0 {
		return fmt.Errorf("up needs root (containerd, runc, mounts, cgroups)")
	}
	for _, name := range allComponents {
		if pid, ok := c.alive(name); ok {
			return fmt.Errorf("%s already runs as pid %d (state %s); run down first", name, pid, c.dir)
		}
	}
	// A run killed before its down (a CI job cancelled, a machine reused) leaves etcd's
	// data behind; a cluster started on it would hold the old objects (a Helm release
	// "still in use", old pods). Nothing runs, so the earlier cluster is taken down first.
	if left := c.leftoverState(); len(left) > 0 {
		c.Logf("up: %s holds state of an earlier cluster that was not taken down (%s); taking it down first", c.dir, strings.Join(left, ", "))
		if err := c.Down(); err != nil {
			return fmt.Errorf("an earlier cluster's state in %s could not be removed: %w", c.dir, err)
		}
		if left := c.leftoverState(); len(left) > 0 {
			return fmt.Errorf("an earlier cluster's state in %s is still there after down (%s); remove it by hand", c.dir, strings.Join(left, ", "))
		}
	}
	if err := c.Prepare(); err != nil {
		return err
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	if err := c.saveHostState(); err != nil {
		return err
	}
	if err := c.saveIptables(); err != nil {
		return err
	}
	if err := c.writePKI(); err != nil {
		return err
	}
	// The pause image is built while nothing runs yet: go build takes a second or two warm.
	pauseTar := c.Path("images", "pause.tar")
	if err := c.buildImage(ctx, pauseImage, []string{"./hack/cluster/pause"}, pauseTar); err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	if err := c.writeNodeConfig(); err != nil {
		return err
	}
	if c.podNetwork {
		// Before anything starts: ServeAPIServerOnBridge listens on its address.
		if err := c.addBridge(); err != nil {
			return err
		}
		// So that a restart by another process (hack/cluster restart) keeps the flags.
		if err := os.WriteFile(c.Path(podNetworkMarker), nil, 0o644); err != nil {
			return err
		}
	}
	// The policy is written, or an old one removed, before kube-apiserver starts: its
	// presence turns the audit flags on (auditFlags).
	if len(c.auditNamespaces) > 0 {
		if err := c.writeAuditPolicy(c.auditNamespaces); err != nil {
			return err
		}
	} else if err := os.Remove(c.Path(auditPolicyFile)); err != nil && !os.IsNotExist(err) {
		return err
	}
	client, err := c.httpsClient()
	if err != nil {
		return err
	}
	t0 := time.Now()

	// etcd and containerd need nothing else: start both at once.
	etcd := c.etcd()
	ctrd := c.containerd()
	for _, p := range []*component{etcd, ctrd} {
		if err := c.startComponent(p); err != nil {
			return err
		}
	}
	if err := c.waitReady(ctx, etcd, 30*time.Second); err != nil {
		return err
	}
	apiserver := c.apiserver(client)
	if err := c.startComponent(apiserver); err != nil {
		return err
	}
	if err := c.waitReady(ctx, ctrd, 30*time.Second); err != nil {
		return err
	}
	if err := c.ImportImage(pauseTar); err != nil {
		return err
	}
	if err := c.waitReady(ctx, apiserver, 60*time.Second); err != nil {
		return err
	}
	kcm, sched := c.controllerManager(client), c.scheduler(client)
	kubelet := c.kubelet()
	for _, p := range []*component{kcm, sched, kubelet} {
		if err := c.startComponent(p); err != nil {
			return err
		}
	}
	kubeletStarted := time.Now()
	for _, p := range []*component{kcm, sched, kubelet} {
		if err := c.waitReady(ctx, p, 60*time.Second); err != nil {
			return err
		}
	}
	if err := c.waitNodeReady(ctx, kubelet, 90*time.Second); err != nil {
		return err
	}
	c.Logf("node %s Ready %s after the kubelet started, %s after etcd started",
		c.nodeName, time.Since(kubeletStarted).Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	// Pods can be created once the controller manager has made the default service account.
	if err := c.waitReady(ctx, &component{name: "service account default/default", exited: kcm.exited, ready: func(ctx context.Context) error {
		cs, err := c.Clientset()
		if err != nil {
			return err
		}
		_, err = cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	}}, 60*time.Second); err != nil {
		return err
	}
	c.Logf("cluster up in %s", time.Since(began).Round(time.Millisecond))
	c.Logf("kubeconfig: %s   (go run ./hack/cluster kubectl get nodes)", c.Path("pki", "admin.kubeconfig"))
	return nil
}

// Prepare installs the missing Debian packages and builds the missing Kubernetes
// binaries: everything Start needs that takes long the first time.
func (c *Cluster) Prepare() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the local cluster needs root (apt-get, containerd, runc, mounts, cgroups); running as uid %d", os.Geteuid())
	}
	if err := c.EnsurePackages(nodePackages...); err != nil {
		return err
	}
	return c.ensureBinaries()
}

// leftoverState lists what the state directory holds besides the logs, which every
// down keeps: after a clean down, nothing.
func (c *Cluster) leftoverState() []string {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil
	}
	var left []string
	for _, e := range entries {
		if e.Name() != "logs" {
			left = append(left, e.Name())
		}
	}
	return left
}

// allComponents in stop order reversed: down stops them from the end of the list.
var allComponents = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet"}

func (c *Cluster) etcd() *component {
	client := fmt.Sprintf("http://127.0.0.1:%d", etcdClientPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", etcdPeerPort)
	return &component{
		name: "etcd", path: c.bin("etcd"),
		args: []string{
			"--name=ke-cluster",
			"--data-dir=" + c.Path("etcd"),
			"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=ke-cluster=" + peer,
			"--unsafe-no-fsync", // a throwaway cluster: durability buys nothing here
			"--log-level=warn",
		},
		ready: httpOK(httpPlain, client+"/health"),
	}
}

func (c *Cluster) apiserver(client *http.Client) *component {
	pki := func(f string) string { return c.Path("pki", f) }
	return &component{
		name: "kube-apiserver", path: c.bin("kube-apiserver"),
		args: append([]string{
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(apiserverPort),
			// With a loopback advertise address the endpoint reconciler refuses to run.
			"--endpoint-reconciler-type=none",
			fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdClientPort),
			"--service-cluster-ip-range=" + serviceCIDR,
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--allow-privileged=true",
			"--client-ca-file=" + pki("ca.crt"),
			"--tls-cert-file=" + pki("apiserver.crt"),
			"--tls-private-key-file=" + pki("apiserver.key"),
			"--kubelet-client-certificate=" + pki("apiserver-kubelet-client.crt"),
			"--kubelet-client-key=" + pki("apiserver-kubelet-client.key"),
			"--kubelet-certificate-authority=" + pki("ca.crt"),
			// The node's name resolves to loopback, where the kubelet listens; its
			// InternalIP is the machine's own address, which nothing may be sent to.
			"--kubelet-preferred-address-types=Hostname",
			"--service-account-issuer=https://kubernetes.default.svc." + clusterDomain,
			"--service-account-key-file=" + pki("sa.pub"),
			"--service-account-signing-key-file=" + pki("sa.key"),
			"--api-audiences=https://kubernetes.default.svc." + clusterDomain,
			"--profiling=false",
			// Webhooks registered through a Service are called at one of its ready
			// endpoints (nothing routes Service IPs here); pods only with HostOnPodNetwork.
			"--enable-aggregator-routing=" + strconv.FormatBool(c.podNetwork),
		}, c.auditFlags()...),
		ready: httpOK(client, c.apiserverURL()+"/readyz"),
	}
}

func (c *Cluster) controllerManager(client *http.Client) *component {
	pki := func(f string) string { return c.Path("pki", f) }
	return &component{
		name: "kube-controller-manager", path: c.bin("kube-controller-manager"),
		args: append(c.servingFlags("controller-manager", kcmPort),
			"--use-service-account-credentials",
			"--root-ca-file="+pki("ca.crt"),
			"--service-account-private-key-file="+pki("sa.key"),
			"--cluster-signing-cert-file="+pki("ca.crt"),
			"--cluster-signing-key-file="+pki("ca.key"),
			"--service-cluster-ip-range="+serviceCIDR,
			// Each controller gets its own service account and token at start; at the
			// default 20 QPS that alone takes seconds.
			"--kube-api-qps=200", "--kube-api-burst=400",
		),
		ready: httpOK(client, fmt.Sprintf("https://127.0.0.1:%d/healthz", kcmPort)),
	}
}

// servingFlags are what the controller manager and the scheduler share: their
// kubeconfig (named <name>.kubeconfig) for everything, and a secure port on
// loopback serving <name>-serving.crt to clients of the cluster CA.
func (c *Cluster) servingFlags(name string, port int) []string {
	pki := func(f string) string { return c.Path("pki", f) }
	kc := pki(name + ".kubeconfig")
	return []string{
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + pki(name+"-serving.crt"),
		"--tls-private-key-file=" + pki(name+"-serving.key"),
		"--client-ca-file=" + pki("ca.crt"),
		"--leader-elect=false",
		"--profiling=false",
	}
}

func (c *Cluster) scheduler(client *http.Client) *component {
	return &component{
		name: "kube-scheduler", path: c.bin("kube-scheduler"),
		args:  c.servingFlags("scheduler", schedulerPort),
		ready: httpOK(client, fmt.Sprintf("https://127.0.0.1:%d/healthz", schedulerPort)),
	}
}

func (c *Cluster) containerd() *component {
	return &component{
		name: "containerd", path: c.ctrdBin("containerd"),
		args:  []string{"--config=" + c.Path("containerd", "config.toml")},
		ready: c.containerdReady,
	}
}

func (c *Cluster) containerdReady(ctx context.Context) error {
	if err := fileExists(c.ContainerdSocket())(ctx); err != nil {
		return err
	}
	_, err := c.ctr("version")
	return err
}

func (c *Cluster) kubelet() *component {
	return &component{
		name: "kubelet", path: c.bin("kubelet"),
		args: []string{
			"--config=" + c.Path("kubelet", "config.yaml"),
			"--kubeconfig=" + c.Path("pki", "kubelet.kubeconfig"),
			"--root-dir=" + c.Path("kubelet", "root"),
			"--cert-dir=" + c.Path("kubelet", "pki"),
			"--hostname-override=" + c.nodeName,
			"--v=1",
		},
		ready: httpOK(httpPlain, fmt.Sprintf("http://127.0.0.1:%d/healthz", kubeletHealthPort)),
	}
}

// Clientset is an admin clientset.
func (c *Cluster) Clientset() (*kubernetes.Clientset, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

func (c *Cluster) waitNodeReady(ctx context.Context, kubelet *component, timeout time.Duration) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	return c.waitReady(ctx, &component{
		name:   "node " + c.nodeName,
		exited: kubelet.exited,
		ready: func(ctx context.Context) error {
			n, err := cs.CoreV1().Nodes().Get(ctx, c.nodeName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady {
					if cond.Status == corev1.ConditionTrue {
						return nil
					}
					return fmt.Errorf("Ready=%s: %s", cond.Status, cond.Message) //nolint:staticcheck // ST1005: Ready is the condition's name
				}
			}
			return fmt.Errorf("no Ready condition yet")
		},
	}, timeout)
}

// Kubectl replaces this process with the cached kubectl against the cluster.
func (c *Cluster) Kubectl(args []string) error {
	return execReplace(c.bin("kubectl"), append([]string{"kubectl", "--kubeconfig=" + c.Path("pki", "admin.kubeconfig"), "--cache-dir=" + c.Path("kubectl-cache")}, args...))
}

// saveHostState records what up may change on the host so that down can restore it:
// the kernel settings the kubelet tunes.
func (c *Cluster) saveHostState() error {
	path := c.Path("host-sysctls")
	if _, err := os.Stat(path); err == nil {
		return nil // an earlier, failed up saved them before anything changed
	}
	var b strings.Builder
	for _, k := range kubeletSysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/")))
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s=%s\n", k, strings.TrimSpace(string(v)))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	// Directories outside the state dir that the kubelet or the CNI library create:
	// down removes those that did not exist before (when they are empty again).
	var made []string
	for _, d := range outsideDirs {
		if _, err := os.Stat(d); err != nil {
			made = append(made, d)
		}
	}
	return os.WriteFile(c.Path("host-dirs"), []byte(strings.Join(made, "\n")), 0o644)
}

// outsideDirs are created by the kubelet (container log links) and by libcni in
// containerd (its result cache); neither has a setting to move them.
// The kubelet's device-plugin socket ignores --root-dir as well, and containerd puts
// its shims' sockets in /run/containerd/s when the state directory's path is too long
// for them (shimSocketDir).
var outsideDirs = []string{"/var/log/containers", "/var/lib/cni/results", "/var/lib/cni",
	"/var/lib/kubelet/device-plugins", "/var/lib/kubelet", "/run/containerd/s", "/run/containerd"}

// kubeletSysctls are the kernel settings the kubelet sets at start unless
// protectKernelDefaults is on (which would make it refuse to start here instead).
var kubeletSysctls = []string{"vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops", "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes"}
