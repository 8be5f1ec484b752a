package localcluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeNodeConfig writes the configuration of containerd, the CNI network and the kubelet.
func (c *Cluster) writeNodeConfig() error {
	for _, d := range []string{"containerd", "cni/net.d", "cni/ipam", "kubelet/root", "kubelet/pki", "pod-logs"} {
		if err := os.MkdirAll(c.Path(d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(c.Path("containerd", "config.toml"), []byte(c.containerdConfig()), 0o644); err != nil {
		return err
	}
	cni, err := c.cniConfig()
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.Path("cni", "net.d", "10-ke-cluster.conflist"), cni, 0o644); err != nil {
		return err
	}
	if err := c.writeResolvConf(); err != nil {
		return err
	}
	return os.WriteFile(c.Path("kubelet", "config.yaml"), []byte(c.kubeletConfig()), 0o644)
}

// containerdConfig is containerd 2.x's configuration (version 3) with everything it
// writes under the state directory. Version 3 is what every containerd 2.x reads;
// 2.4 reads it as its version 4, which only moves the [grpc] and [ttrpc] addresses into
// plugins, and logs a warning that it migrated it.
func (c *Cluster) containerdConfig() string {
	q := func(elem ...string) string { return fmt.Sprintf("%q", c.Path(elem...)) }
	const cri = `plugins.'io.containerd.cri.v1.runtime'`
	lines := []string{
		`version = 3`,
		`root = ` + q("containerd", "root"),
		`state = ` + q("containerd", "state"),
		`oom_score = 0`,
		``,
		`[grpc]`,
		`  address = ` + q("containerd", "containerd.sock"),
		``,
		`[ttrpc]`,
		`  address = ` + q("containerd", "containerd.sock.ttrpc"),
		``,
		`[plugins.'io.containerd.internal.v1.opt']`,
		`  path = ` + q("containerd", "opt"),
		``,
		// NRI would listen on /var/run/nri/nri.sock; nothing here uses it.
		`[plugins.'io.containerd.nri.v1.nri']`,
		`  disable = true`,
		``,
	}
	if dir := c.shimSocketDir(); dir != defaultShimSocketDir {
		lines = append(lines,
			`[plugins.'io.containerd.shim.v1.manager']`,
			`  socket_dir = `+fmt.Sprintf("%q", dir),
			``)
	}
	return strings.Join(append(lines,
		`[plugins.'io.containerd.cri.v1.images']`,
		`  snapshotter = "overlayfs"`,
		// The images are built here and imported; nothing is pulled.
		`  [plugins.'io.containerd.cri.v1.images'.pinned_images]`,
		`    sandbox = "`+pauseImage+`"`,
		``,
		`[`+cri+`]`,
		// Without CAP_SYS_RESOURCE, runc fails with "can't get final child's PID from pipe"
		// when asked to lower a container's oom_score_adj below its own.
		`  restrict_oom_score_adj = true`,
		// Pod network namespaces under the state dir, not /var/run/netns.
		`  netns_mounts_under_state_dir = true`,
		`  enable_selinux = false`,
		`  disable_apparmor = true`,
		`  [`+cri+`.containerd]`,
		`    default_runtime_name = "runc"`,
		`    [`+cri+`.containerd.runtimes.runc]`,
		`      runtime_type = "io.containerd.runc.v2"`,
		// The shim built with containerd: Debian's, if installed, is first on PATH.
		`      runtime_path = `+fmt.Sprintf("%q", c.ctrdBin("containerd-shim-runc-v2")),
		`      [`+cri+`.containerd.runtimes.runc.options]`,
		`        SystemdCgroup = false`,
		`        BinaryName = "`+runcPath+`"`,
		`        Root = `+q("runc"),
		`  [`+cri+`.cni]`,
		`    bin_dirs = ["/usr/lib/cni"]`,
		`    conf_dir = `+q("cni", "net.d"),
		`    max_conf_num = 1`,
		``,
	), "\n")
}

// defaultShimSocketDir is where containerd 2.x (as root) puts its shims' sockets unless
// told otherwise: outside the state directory.
const defaultShimSocketDir = "/run/containerd/s"

// maxShimSocketDir is the longest socket_dir containerd accepts: a unix socket path (the
// directory, a slash and 64 hex digits) must stay under 108 bytes.
const maxShimSocketDir = 42

// shimSocketDir is where the shims' sockets go: <dir>/containerd/s when that path is
// short enough (it is for the default /tmp/ke-cluster), else containerd's default.
func (c *Cluster) shimSocketDir() string {
	if d := c.Path("containerd", "s"); len(d) <= maxShimSocketDir {
		return d
	}
	return defaultShimSocketDir
}

// cniConfig is a bridge with host-local addresses: pods reach each other and nothing
// else (no default route, no masquerading, no iptables rules). With HostOnPodNetwork
// the host has the gateway address on the bridge, still without a default route in pods.
func (c *Cluster) cniConfig() ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"cniVersion": "0.4.0",
		"name":       cniNetwork,
		"plugins": []any{map[string]any{
			"type":      "bridge",
			"bridge":    bridgeName,
			"isGateway": c.podNetwork,
			// Never a default route through the host, not even with isGateway.
			"isDefaultGateway": false,
			"ipMasq":           false,
			"hairpinMode":      true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": podCIDR, "gateway": BridgeGateway}}},
				"dataDir": c.Path("cni", "ipam"),
			},
		}},
	}, "", "  ")
}

func (c *Cluster) kubeletConfig() string {
	pki := func(f string) string { return c.Path("pki", f) }
	return strings.Join([]string{
		`apiVersion: kubelet.config.k8s.io/v1beta1`,
		`kind: KubeletConfiguration`,
		`address: 127.0.0.1`,
		fmt.Sprintf(`port: %d`, kubeletPort),
		`readOnlyPort: 0`,
		`healthzBindAddress: 127.0.0.1`,
		fmt.Sprintf(`healthzPort: %d`, kubeletHealthPort),
		`containerRuntimeEndpoint: unix://` + c.ContainerdSocket(),
		`cgroupDriver: cgroupfs`,
		`failCgroupV1: false`,
		`failSwapOn: false`,
		`makeIPTablesUtilChains: false`,
		`imageGCHighThresholdPercent: 100`,
		`imageGCLowThresholdPercent: 99`,
		`evictionHard:`,
		`  memory.available: "50Mi"`,
		`  nodefs.available: "1%"`,
		`  imagefs.available: "1%"`,
		`podLogsDir: ` + c.Path("pod-logs"),
		`volumePluginDir: ` + c.Path("kubelet", "volume-plugins"),
		`tlsCertFile: ` + pki("kubelet-serving.crt"),
		`tlsPrivateKeyFile: ` + pki("kubelet-serving.key"),
		`authentication:`,
		`  anonymous: {enabled: false}`,
		`  webhook: {enabled: true}`,
		`  x509: {clientCAFile: ` + pki("ca.crt") + `}`,
		`authorization:`,
		`  mode: Webhook`,
		`clusterDomain: ` + clusterDomain,
		`resolvConf: ` + c.Path("kubelet", "resolv.conf"),
		`serializeImagePulls: false`,
		`nodeStatusUpdateFrequency: 4s`,
		`fileCheckFrequency: 0s`,
		// One node holds every pod here (the scale benchmark runs 300 and more).
		`maxPods: 500`,
		`shutdownGracePeriod: 0s`,
		``,
	}, "\n")
}

// writeResolvConf gives pods an empty DNS configuration: nothing answers DNS here, and
// the host's resolver may be on an address pods must not send to.
func (c *Cluster) writeResolvConf() error {
	p := c.Path("kubelet", "resolv.conf")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte("# ke-cluster: no DNS\n"), 0o644)
}
