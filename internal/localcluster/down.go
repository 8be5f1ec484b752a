package localcluster

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Down stops and removes everything up made. It reads nothing that only a successful up
// would have written, so it also cleans up after an up that failed half way, and running
// it twice is harmless. The logs stay in <dir>/logs.
func (c *Cluster) Down() error {
	began := time.Now()
	if _, err := os.Stat(c.dir); err != nil {
		c.Logf("down: no state in %s; looking for leftovers anyway", c.dir)
	}
	var problems []string
	note := func(err error) {
		if err != nil {
			problems = append(problems, err.Error())
			c.Logf("down: %v", err)
		}
	}

	// 1. The kubelet first, so that it restarts no container while they are stopped.
	c.stop(c.processes(func(exe string) bool { return exe == c.bin("kubelet") }), 10*time.Second)
	// 2. The containers: through runc, which also removes their cgroups, then whatever
	//    still sits in a pod cgroup.
	c.removeContainers()
	note(killCgroupProcesses())
	// 3. containerd and its shims, then the control plane.
	c.stop(c.processes(func(exe string) bool { return strings.HasPrefix(filepath.Base(exe), "containerd") }), 10*time.Second)
	// The API server drains on SIGTERM and needs etcd meanwhile: etcd goes last.
	c.stop(c.processes(func(exe string) bool { return exe != c.bin("etcd") && exe != c.bin("kube-apiserver") }), 10*time.Second)
	c.stop(c.processes(func(exe string) bool { return exe == c.bin("kube-apiserver") }), 5*time.Second)
	c.stop(c.processes(func(exe string) bool { return true }), 10*time.Second)
	// 4. Mounts, network, cgroups, iptables, kernel settings, files outside the state dir.
	note(c.unmountAll())
	note(c.removeBridge())
	note(removeCgroups())
	note(c.restoreIptables())
	note(c.restoreSysctls())
	c.removeOutsideFiles()

	// 5. Check, and remove the state (never while anything is still mounted under it:
	//    a host path bind-mounted into a pod would be deleted with it).
	if left := c.processes(func(string) bool { return true }); len(left) > 0 {
		note(fmt.Errorf("processes still running: %v", left))
	}
	if m := c.mounts(); len(m) > 0 {
		note(fmt.Errorf("still mounted, state not removed: %v", m))
	} else if problems == nil {
		entries, _ := os.ReadDir(c.dir)
		for _, e := range entries {
			if e.Name() != "logs" {
				note(os.RemoveAll(c.Path(e.Name())))
			}
		}
	}
	if problems != nil {
		return fmt.Errorf("%d problem(s) left, see above", len(problems))
	}
	c.Logf("down: nothing left (%s); logs kept in %s", time.Since(began).Round(time.Millisecond), c.Path("logs"))
	return nil
}

// processes lists the live processes that belong to this cluster: those started from a
// binary of ours (the cached Kubernetes binaries, the cached containerd and its shims)
// whose command line names the state directory. Recorded pids are checked the same way,
// so a reused pid is never killed. Debian's containerd and shims are recognised as well:
// a cluster made before containerd was built here ran them.
func (c *Cluster) processes(match func(exe string) bool) []int {
	self := os.Getpid()
	recorded := map[int]bool{} // from the pid files, whatever binary they ran
	for _, name := range allComponents {
		if pid, ok := c.alive(name); ok {
			recorded[pid] = true
		}
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid <= 1 {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil {
			continue
		}
		exe = strings.TrimSuffix(exe, " (deleted)")
		dir := filepath.Dir(exe)
		known := dir == c.binDir || dir == c.ctrdDir || recorded[pid] ||
			exe == "/usr/bin/containerd" || strings.HasPrefix(exe, "/usr/bin/containerd-shim")
		if known && match(exe) && c.ours(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs what is left.
func (c *Cluster) stop(pids []int, grace time.Duration) {
	if len(pids) == 0 {
		return
	}
	for _, pid := range pids {
		c.Logf("down: stopping pid %d (%s)", pid, comm(pid))
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !anyAlive(pids) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range pids {
		if alive(pid) {
			c.Logf("down: pid %d did not stop within %s: SIGKILL", pid, grace)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	deadline = time.Now().Add(5 * time.Second)
	for anyAlive(pids) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(st), ')')
	return i < 0 || len(st) <= i+2 || st[i+2] != 'Z'
}

func anyAlive(pids []int) bool {
	for _, pid := range pids {
		if alive(pid) {
			return true
		}
	}
	return false
}

// removeContainers kills and deletes every container in our runc root.
func (c *Cluster) removeContainers() {
	if _, err := os.Stat(runcPath); err != nil {
		return
	}
	nss, _ := os.ReadDir(c.Path("runc"))
	for _, ns := range nss {
		root := c.Path("runc", ns.Name())
		ids, _ := os.ReadDir(root)
		for _, id := range ids {
			c.containerIDs = append(c.containerIDs, id.Name())
			_, _ = run(runcPath, "--root", root, "kill", "--all", id.Name(), "KILL")
			// A container that is still stopping refuses delete ("invalid state
			// transition"); its shim finishes in a moment.
			for attempt := 0; ; attempt++ {
				_, err := run(runcPath, "--root", root, "delete", "--force", id.Name())
				if err == nil || !fileExistsNow(filepath.Join(root, id.Name())) {
					break
				}
				if attempt == 5 {
					c.Logf("down: %v", err)
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
}

// podCgroups lists the cgroup directories the kubelet made (kubepods*, every hierarchy),
// deepest first.
func podCgroups() []string {
	var dirs []string
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods*")
	unified, _ := filepath.Glob("/sys/fs/cgroup/kubepods*") // a cgroup v2 host
	for _, r := range append(roots, unified...) {
		_ = filepath.WalkDir(r, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	return dirs
}

// killCgroupProcesses SIGKILLs every process left in a pod cgroup.
func killCgroupProcesses() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var pids []int
		for _, d := range podCgroups() {
			b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
					pids = append(pids, pid)
				}
			}
		}
		if !anyAlive(pids) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pod processes survive SIGKILL: %v", pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func removeCgroups() error {
	var errs []error
	for _, d := range podCgroups() {
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// mounts lists the mount points under the state directory, deepest first.
func (c *Cluster) mounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == c.dir || strings.HasPrefix(mp, c.dir+"/") {
			out = append(out, mp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out
}

// unescapeMount undoes the octal escapes of /proc/self/mountinfo (\040 for a blank).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountAll unmounts everything under the state directory (the kubelet's volumes,
// containerd's rootfs overlays, sandbox shm and network namespaces), deepest first,
// repeating while stacked mounts uncover more.
func (c *Cluster) unmountAll() error {
	for round := 0; round < 10; round++ {
		m := c.mounts()
		if len(m) == 0 {
			return nil
		}
		for _, mp := range m {
			if err := syscall.Unmount(mp, 0); err != nil {
				if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
					c.Logf("down: umount %s: %v", mp, err)
				}
			}
		}
	}
	if m := c.mounts(); len(m) > 0 {
		return fmt.Errorf("cannot unmount %v", m)
	}
	return nil
}

// removeBridge deletes the pods' bridge and any veth still attached to it.
func (c *Cluster) removeBridge() error {
	if _, err := os.Stat("/sys/class/net/" + bridgeName); err != nil {
		return nil
	}
	ports, _ := os.ReadDir("/sys/class/net/" + bridgeName + "/brif")
	for _, p := range ports {
		// A veth goes away by itself with its pod's network namespace: gone is fine.
		if _, err := run("ip", "link", "del", p.Name()); err != nil && fileExistsNow("/sys/class/net/"+p.Name()) {
			c.Logf("down: %v", err)
		}
	}
	_, err := run("ip", "link", "del", bridgeName)
	return err
}

var iptablesTables = []string{"filter", "nat", "mangle"}

// iptablesChains lists the user-defined chains of each table.
func iptablesChains() map[string][]string {
	chains := map[string][]string{}
	if _, err := exec.LookPath("iptables"); err != nil {
		return chains
	}
	for _, t := range iptablesTables {
		out, err := exec.Command("iptables", "-w", "-t", t, "-S").Output()
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "-N" {
				chains[t] = append(chains[t], f[1])
			}
		}
	}
	return chains
}

// saveIptables records the chains that exist before up.
func (c *Cluster) saveIptables() error {
	path := c.Path("host-iptables")
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	var b strings.Builder
	for t, cs := range iptablesChains() {
		for _, ch := range cs {
			fmt.Fprintf(&b, "%s %s\n", t, ch)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// restoreIptables removes the KUBE-* and CNI-* chains that did not exist before up, and
// the rules that jump to them.
func (c *Cluster) restoreIptables() error {
	before := map[string]bool{}
	if b, err := os.ReadFile(c.Path("host-iptables")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			before[l] = true
		}
	}
	var errs []error
	for t, cs := range iptablesChains() {
		var ours []string
		for _, ch := range cs {
			if (strings.HasPrefix(ch, "KUBE-") || strings.HasPrefix(ch, "CNI-")) && !before[t+" "+ch] {
				ours = append(ours, ch)
			}
		}
		if len(ours) == 0 {
			continue
		}
		out, _ := exec.Command("iptables", "-w", "-t", t, "-S").Output()
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 || f[0] != "-A" {
				continue
			}
			for _, ch := range ours {
				if strings.Contains(" "+l+" ", " -j "+ch+" ") {
					if _, err := run("iptables", append([]string{"-w", "-t", t, "-D"}, f[1:]...)...); err != nil {
						errs = append(errs, err)
					}
				}
			}
		}
		for _, ch := range ours {
			_, _ = run("iptables", "-w", "-t", t, "-F", ch)
		}
		for _, ch := range ours {
			c.Logf("down: removing iptables chain %s/%s", t, ch)
			if _, err := run("iptables", "-w", "-t", t, "-X", ch); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// restoreSysctls puts back the kernel settings recorded before the kubelet changed them.
func (c *Cluster) restoreSysctls() error {
	b, err := os.ReadFile(c.Path("host-sysctls"))
	if err != nil {
		return nil
	}
	var errs []error
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		p := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if cur, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(cur)) != v {
			c.Logf("down: restoring %s=%s (was %s)", k, v, strings.TrimSpace(string(cur)))
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeOutsideFiles removes what the kubelet and the CNI library write outside the state
// directory: container log links in /var/log/containers and CNI result caches.
func (c *Cluster) removeOutsideFiles() {
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, l := range links {
		if t, err := os.Readlink(l); err == nil && strings.HasPrefix(t, c.dir+"/") {
			_ = os.Remove(l)
		}
	}
	// libcni caches each attachment as <network>-<sandbox id>-<interface>: ours are those
	// of our network and those of our sandboxes (the loopback network containerd adds).
	results, _ := filepath.Glob("/var/lib/cni/results/*")
	for _, r := range results {
		base := filepath.Base(r)
		mine := strings.HasPrefix(base, cniNetwork+"-")
		for _, id := range c.containerIDs {
			mine = mine || strings.Contains(base, "-"+id+"-")
		}
		if mine {
			_ = os.Remove(r)
		}
	}
	// A shim's socket is <socket dir>/<sha256 of containerd's address/namespace/id>; a
	// shim removes it when it exits, but not when it is killed. The socket dir is under
	// the state directory unless its path would be too long (shimSocketDir).
	for _, id := range c.containerIDs {
		sum := sha256.Sum256([]byte(filepath.Join(c.ContainerdSocket(), "k8s.io", id)))
		_ = os.Remove(filepath.Join(defaultShimSocketDir, hex.EncodeToString(sum[:])))
	}
	if b, err := os.ReadFile(c.Path("host-dirs")); err == nil {
		for _, d := range strings.Fields(string(b)) {
			if d == "/var/lib/kubelet/device-plugins" {
				_ = os.Remove(filepath.Join(d, "kubelet.sock"))
				_ = os.Remove(filepath.Join(d, "kubelet_internal_checkpoint"))
			}
			_ = os.Remove(d) // only when empty: what others put there stays
		}
	}
}

func fileExistsNow(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
