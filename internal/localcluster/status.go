package localcluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Status prints each component's pid and the node's and pods' state; it fails when a
// component is down.
func (c *Cluster) Status(ctx context.Context) error {
	if _, err := os.Stat(c.dir); err != nil {
		fmt.Printf("no cluster state in %s\n", c.dir)
		return nil
	}
	down := 0
	for _, name := range allComponents {
		if pid, ok := c.alive(name); ok {
			fmt.Printf("%-24s running, pid %d\n", name, pid)
		} else {
			fmt.Printf("%-24s not running\n", name)
			down++
		}
	}
	if _, ok := c.alive("kube-apiserver"); ok {
		cs, err := c.Clientset()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, n := range nodes.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady {
					fmt.Printf("node %-19s Ready=%s %s\n", n.Name, cond.Status, cond.Message)
				}
			}
		}
		pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			fmt.Printf("pod %-20s %s %s\n", p.Namespace+"/"+p.Name, p.Status.Phase, strings.TrimSpace(p.Status.Message))
		}
	}
	if m := c.mounts(); len(m) > 0 {
		fmt.Printf("%d mounts under %s\n", len(m), c.dir)
	}
	if down > 0 {
		return fmt.Errorf("%d of %d components not running", down, len(allComponents))
	}
	return nil
}
