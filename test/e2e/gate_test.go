//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/controller"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// Gate mode for real, with a ServiceAccount that may do nothing at all (no
// RoleBinding): the webhook gates the pod and keeps its Service dependency out of
// the containers, the scheduler holds it (PodScheduled False, SchedulingGated), the
// controller says what it waits for in the pod condition; once the database behind
// the Service is ready, the controller removes the gate, the condition turns
// True/Ready, and the pod is scheduled and runs the app.
func TestGatedAppNeedsNoRBAC(t *testing.T) {
	defer noPanic(t)
	ns := bareNamespace(t, "e2e-gate")
	ctx := context.Background()
	const appOutput = "gated web: the application runs"
	t.Cleanup(func() {
		if t.Failed() {
			dumpGate(t, ns)
		}
	})

	app := appDeployment("web", map[string]string{
		"entrypoint.io/dependency-service": "db",
		inject.AnnotationGate:              "true",
	}, container("web", "print", appOutput))
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, app, metav1.CreateOptions{})
	must(t, err)

	// Held before scheduling, by our gate, with the Service left out of the containers.
	var pod *corev1.Pod
	eventually(t, "the app's pod to be SchedulingGated", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := onlyPod(ctx, ns, "web")
		if p == nil || err != nil {
			return false, err
		}
		pod = p
		c := podCondition(p, corev1.PodScheduled)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonSchedulingGated, nil
	})
	if !slices.ContainsFunc(pod.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == inject.SchedulingGate }) {
		t.Fatalf("pod %s is gated by %v, want %s among them", pod.Name, pod.Spec.SchedulingGates, inject.SchedulingGate)
	}
	if pod.Labels[inject.LabelManaged] != "true" {
		t.Errorf("pod %s has no label %s=true: %v", pod.Name, inject.LabelManaged, pod.Labels)
	}
	for _, c := range pod.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == "DEPENDENCY_SERVICE" {
				t.Errorf("container %s still waits for the Service itself (DEPENDENCY_SERVICE=%s): gate mode must leave it to the controller", c.Name, e.Value)
			}
		}
	}
	var status map[string]json.RawMessage
	if err := json.Unmarshal([]byte(pod.Annotations[inject.AnnotationStatus]), &status); err != nil || !strings.Contains(string(status["gated"]), "DEPENDENCY_SERVICE") {
		t.Errorf("the status annotation does not record the gated Service dependency (%v): %s", err, pod.Annotations[inject.AnnotationStatus])
	}

	// The controller says what blocks it, in its words: the Service by namespace/name.
	wantBlocker := "service " + ns + "/db"
	var cond *corev1.PodCondition
	eventually(t, "the condition "+string(api.ConditionType)+" False/Waiting naming "+wantBlocker, time.Minute, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		cond = podCondition(p, api.ConditionType)
		return cond != nil && cond.Status == corev1.ConditionFalse && cond.Reason == api.ReasonWaiting && strings.Contains(cond.Message, wantBlocker), nil
	})
	t.Logf("pod %s gated: %s=%s/%s %q", pod.Name, cond.Type, cond.Status, cond.Reason, cond.Message)

	// A Service without a ready endpoint is not ready: the pod stays gated.
	db, svc := database("db")
	_, err = cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	must(t, err)
	time.Sleep(2 * time.Second) // the controller's informer has seen the Service by now; a wrong release would show
	p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
	must(t, err)
	if !hasGate(p) || p.Spec.NodeName != "" {
		t.Fatalf("pod %s released while the Service db has no endpoint: gates %v, node %q", p.Name, p.Spec.SchedulingGates, p.Spec.NodeName)
	}

	// The database comes up: the gate goes, the condition turns Ready, the app runs.
	dbCreated := time.Now()
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, db, metav1.CreateOptions{})
	must(t, err)
	var released time.Time
	eventually(t, "the controller to remove the gate and report Ready", 2*time.Minute, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if hasGate(p) {
			return false, nil
		}
		if released.IsZero() {
			released = time.Now()
		}
		cond = podCondition(p, api.ConditionType)
		return cond != nil && cond.Status == corev1.ConditionTrue && cond.Reason == api.ReasonReady, nil
	})
	var logs string
	eventually(t, "the released pod to be scheduled and run the app", 2*time.Minute, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || p.Spec.NodeName == "" {
			return false, err
		}
		logs = podLogs(ctx, ns, pod.Name, "web")
		return containerRunning(p, "web") || appPrinted(logs, appOutput), nil
	})
	eventually(t, "the app's output", 30*time.Second, func(ctx context.Context) (bool, error) {
		logs = podLogs(ctx, ns, pod.Name, "web")
		return appPrinted(logs, appOutput), nil
	})
	// Each change of the condition is told in an Event by the controller: one reason
	// while it waited, another once it was ready.
	var reasons []string
	eventually(t, "the controller's Events on the pod, waiting then ready", 30*time.Second, func(ctx context.Context) (bool, error) {
		list, err := cs.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		reasons = nil
		for _, e := range list.Items {
			if e.Regarding.Name == pod.Name && e.ReportingController == controller.Name && !slices.Contains(reasons, e.Reason) {
				reasons = append(reasons, e.Reason)
			}
		}
		return len(reasons) >= 2, nil
	})
	t.Logf("database created, gate removed %s later; condition %s/%s %q; Events %v", released.Sub(dbCreated).Round(time.Millisecond), cond.Status, cond.Reason, cond.Message, reasons)
	t.Logf("logs of the app's container:\n%s", logs)
}

func podCondition(p *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func hasGate(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == inject.SchedulingGate })
}

// dumpGate logs what a failed gate-mode test needs besides dumpNamespace's pods, logs
// and events: each pod's gates and conditions, and the tails of the logs of the
// controller (its own Deployment) and of the webhook.
func dumpGate(t *testing.T, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			var conds []string
			for _, c := range p.Status.Conditions {
				conds = append(conds, fmt.Sprintf("%s=%s/%s %q", c.Type, c.Status, c.Reason, c.Message))
			}
			t.Logf("pod %s: node %q, gates %v, conditions %s", p.Name, p.Spec.NodeName, p.Spec.SchedulingGates, strings.Join(conds, "; "))
		}
	}
	releasePods, err := cs.CoreV1().Pods(webhookNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component in (controller,webhook)"})
	if err != nil {
		t.Logf("listing the controller's and the webhook's pods: %v", err)
		return
	}
	for _, p := range releasePods.Items {
		component := p.Labels["app.kubernetes.io/component"]
		b, err := cs.CoreV1().Pods(webhookNamespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: ptr.To[int64](80)}).DoRaw(ctx)
		if err != nil {
			t.Logf("log of the %s %s: %v", component, p.Name, err)
			continue
		}
		t.Logf("the last 80 lines of the %s %s's log:\n%s", component, p.Name, b)
	}
}
