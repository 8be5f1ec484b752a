//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// Node-aware gates on the real node: a gated pod waiting for a pod on its own
// node (requireSameNode), with a ServiceAccount that may read nothing. The
// webhook moves that dependency into the gate, so no container's environment
// holds it; the controller keeps the pod gated with NoReadyNode while no node
// runs the agent Ready, then narrows the pod's required node affinity to the
// node where it runs and removes the gate in one write; the scheduler puts the
// pod there and the app runs.
func TestSameNodeDependencyNarrowsTheGatedPod(t *testing.T) {
	defer noPanic(t)
	ns := bareNamespace(t, "e2e-node-aware")
	ctx := context.Background()
	const appOutput = "node-aware web: the application runs"
	t.Cleanup(func() {
		if t.Failed() {
			dumpGate(t, ns)
		}
	})

	app := appDeployment("web", map[string]string{
		"entrypoint.io/dependency-pod": `[{"labels":{"app":"agent"},"requireSameNode":true}]`,
		inject.AnnotationGate:          "true",
	}, container("web", "print", appOutput))
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, app, metav1.CreateOptions{})
	must(t, err)

	var pod *corev1.Pod
	eventually(t, "the app's pod to be gated with NoReadyNode", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := onlyPod(ctx, ns, "web")
		if p == nil || err != nil {
			return false, err
		}
		pod = p
		c := podCondition(p, api.ConditionType)
		return hasGate(p) && c != nil && c.Status == corev1.ConditionFalse && c.Reason == api.ReasonNoReadyNode, nil
	})
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "DEPENDENCY_") {
				t.Errorf("container %s holds %s=%s: gate mode must leave the same-node dependency to the controller", c.Name, e.Name, e.Value)
			}
		}
	}

	agent, _ := database("agent")
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, agent, metav1.CreateOptions{})
	must(t, err)
	var agentNode string
	eventually(t, "the agent to run Ready on a node", 2*time.Minute, func(ctx context.Context) (bool, error) {
		p, err := onlyPod(ctx, ns, "agent")
		if p == nil || err != nil {
			return false, err
		}
		c := podCondition(p, corev1.PodReady)
		agentNode = p.Spec.NodeName
		return c != nil && c.Status == corev1.ConditionTrue, nil
	})

	var released *corev1.Pod
	eventually(t, "the pod released and scheduled on the agent's node", 2*time.Minute, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		released = p
		return !hasGate(p) && p.Spec.NodeName != "", nil
	})
	if released.Spec.NodeName != agentNode {
		t.Errorf("pod %s scheduled on %s, the agent runs on %s", released.Name, released.Spec.NodeName, agentNode)
	}
	a := released.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil ||
		len(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) != 1 ||
		len(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields) != 1 ||
		a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields[0].Values[0] != agentNode {
		t.Errorf("pod %s's affinity after release: %+v, want one term naming node %s", released.Name, a, agentNode)
	}
	eventually(t, "the app's output", 2*time.Minute, func(ctx context.Context) (bool, error) {
		return appPrinted(podLogs(ctx, ns, pod.Name, "web"), appOutput), nil
	})
}
