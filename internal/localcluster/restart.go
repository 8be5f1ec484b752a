package localcluster

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// podNetworkMarker, in the state directory, says that Start ran with HostOnPodNetwork.
const podNetworkMarker = "host-on-pod-network"

// StopComponent stops one running component of the cluster (e.g. "kube-apiserver" or
// "kubelet"; see allComponents) as down would: SIGTERM, SIGKILL after grace. Everything
// else keeps running: the kubelet's containers outlive it, clients of the API server
// see their connections fail. StartComponent starts it again with the same flags.
func (c *Cluster) StopComponent(name string, grace time.Duration) error {
	if _, err := c.componentByName(name); err != nil {
		return err
	}
	pid, ok := c.alive(name)
	if !ok {
		return fmt.Errorf("%s does not run (state %s)", name, c.dir)
	}
	c.Logf("stopping %s (pid %d)", name, pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for c.ours(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if c.ours(pid) {
		c.Logf("%s (pid %d) did not stop within %s: SIGKILL", name, pid, grace)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		deadline = time.Now().Add(10 * time.Second)
		for c.ours(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if c.ours(pid) {
			return fmt.Errorf("%s (pid %d) still runs after SIGKILL", name, pid)
		}
	}
	c.Logf("stopped %s", name)
	return nil
}

// StartComponent starts a component that StopComponent stopped, with the flags Start
// gave it, and waits until it serves (timeout).
func (c *Cluster) StartComponent(ctx context.Context, name string, timeout time.Duration) error {
	p, err := c.componentByName(name)
	if err != nil {
		return err
	}
	if err := c.startComponent(p); err != nil {
		return err
	}
	return c.waitReady(ctx, p, timeout)
}

// componentByName builds the component as Start does: same binary, flags and check.
func (c *Cluster) componentByName(name string) (*component, error) {
	if _, err := os.Stat(c.Path(podNetworkMarker)); err == nil {
		c.podNetwork = true // Start ran with HostOnPodNetwork, maybe in another process
	}
	client, err := c.httpsClient()
	if err != nil {
		return nil, err
	}
	switch name {
	case "etcd":
		return c.etcd(), nil
	case "kube-apiserver":
		return c.apiserver(client), nil
	case "kube-controller-manager":
		return c.controllerManager(client), nil
	case "kube-scheduler":
		return c.scheduler(client), nil
	case "containerd":
		return c.containerd(), nil
	case "kubelet":
		return c.kubelet(), nil
	}
	return nil, fmt.Errorf("no component %q; the components are %v", name, allComponents)
}

// KillContainer sends SIGKILL to the main process of a running container, by its
// CRI container ID (the part of a pod's containerStatuses[].containerID after
// "containerd://"): as the kernel's OOM killer or a crash would end it.
func (c *Cluster) KillContainer(id string) error {
	if _, err := c.ctr("--namespace", "k8s.io", "task", "kill", "--signal", "SIGKILL", id); err != nil {
		return fmt.Errorf("killing container %s: %w", id, err)
	}
	return nil
}
