//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/openstackhelm"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// A real deployment in miniature (issue 21): openstack-helm's mariadb, rabbitmq,
// memcached, keystone and part of neutron, as Helm rendered them
// (internal/openstackhelm), made runnable here without a template change
// (openstackhelm_plan_test.go says how), installed twice in namespace openstack:
//
//   - baseline: the namespace as today, the charts' init containers run the project's
//     drop-in resolver with the charts' own RBAC, nothing else involved;
//   - adopted: the namespace labelled entrypoint.io/adopt=true, where the webhook
//     adopts the charts' pods (their node-free dependencies move into the scheduling
//     gate, which the controller lifts), with the webhook scaled to 0 while keystone's
//     Jobs are created: those pods are not adopted and their resolvers wait for
//     everything.
//
// Both must converge (every Deployment, StatefulSet and DaemonSet available, every
// Job complete) with no application started before what it waits for; the figures
// of both runs are logged side by side, and the adopted run checks what adoption
// promises (measure).
//
// It runs in one injection mode only (init-container): adoption injects nothing, so
// the other mode would repeat the same run, and make test runs the suite in both.
func TestOpenstackHelm(t *testing.T) {
	defer noPanic(t)
	if injectionMode != inject.ModeInitContainer {
		t.Skipf("runs once per make test, in injection mode %s (adoption injects no resolver, so the mode changes nothing here)", inject.ModeInitContainer)
	}
	began := time.Now()
	plan, err := planOpenstackHelm()
	must(t, err)
	t.Logf("the plan, from the rendered charts:\n%s", plan.summary())
	dyn, err := dynamic.NewForConfig(restConfig)
	must(t, err)
	labelNode(t, oshNodeLabels())
	if !adoptionServed(t) {
		t.Fatalf("the installed chart registers no webhook entry selecting namespaces by %s: adoption is off", inject.NamespaceLabelAdopt)
	}

	var results []*oshResult
	for _, adopted := range []bool{false, true} {
		name := "baseline"
		if adopted {
			name = "adopted"
		}
		var r *oshResult
		ok := t.Run(name, func(t *testing.T) {
			defer noPanic(t)
			r = runOpenstackHelm(t, dyn, plan, oshRunOptions{name: name, adopt: adopted, outage: adopted})
		})
		if r != nil {
			results = append(results, r)
		}
		if !ok {
			break
		}
	}
	if len(results) > 0 {
		t.Logf("openstack-helm in miniature, %s in all (both runs, namespaces created and deleted):\n%s",
			time.Since(began).Round(100*time.Millisecond), oshTable(results))
	}
}

// adoptionServed tells whether the installed chart registers a webhook entry that
// selects namespaces by inject.NamespaceLabelAdopt: the chart turned adoption on
// (its default). Without it the adopted run would be a second baseline.
func adoptionServed(t *testing.T) bool {
	t.Helper()
	list, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().List(context.Background(), metav1.ListOptions{})
	must(t, err)
	for _, c := range list.Items {
		for _, w := range c.Webhooks {
			if sel := w.NamespaceSelector; sel != nil {
				if _, ok := sel.MatchLabels[inject.NamespaceLabelAdopt]; ok {
					return true
				}
				for _, e := range sel.MatchExpressions {
					if e.Key == inject.NamespaceLabelAdopt {
						return true
					}
				}
			}
		}
	}
	return false
}

// labelNode puts labels on the cluster's node (the charts' nodeSelectors ask for
// them) and takes those it added off when the test ends. Merge patches: the kubelet
// writes its node too, and a patch of labels does not conflict with it.
func labelNode(t *testing.T, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	node, err := cs.CoreV1().Nodes().Get(ctx, cluster.NodeName(), metav1.GetOptions{})
	must(t, err)
	add, undo := map[string]any{}, map[string]any{}
	for k, v := range labels {
		if _, had := node.Labels[k]; !had {
			undo[k] = nil // a merge patch removes a key set to null
		}
		add[k] = v
	}
	patch := func(l map[string]any) error {
		b, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": l}})
		if err != nil {
			return err
		}
		_, err = cs.CoreV1().Nodes().Patch(context.Background(), cluster.NodeName(), types.MergePatchType, b, metav1.PatchOptions{})
		return err
	}
	if err := patch(add); err != nil {
		t.Fatalf("labelling node %s with %v: %v", cluster.NodeName(), labels, err)
	}
	t.Cleanup(func() {
		if len(undo) == 0 {
			return
		}
		if err := patch(undo); err != nil {
			t.Errorf("taking the labels %v off node %s: %v", undo, cluster.NodeName(), err)
		}
	})
}

// oshPodsTable is `kubectl get pods -n openstack` with the dependency condition's
// reason: name, ready containers, status, the condition.
func oshPodsTable(pods []corev1.Pod) string {
	rows := [][]string{{"NAME", "READY", "STATUS", "DEPENDENCIES"}}
	for _, p := range pods {
		ready := 0
		for _, s := range p.Status.ContainerStatuses {
			if s.Ready {
				ready++
			}
		}
		status := string(p.Status.Phase)
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Waiting != nil && s.State.Waiting.Reason != "" {
				status = s.State.Waiting.Reason
			}
		}
		if p.Status.Phase == corev1.PodSucceeded {
			status = "Completed"
		}
		cond := "-"
		if c := podCondition(&p, api.ConditionType); c != nil {
			cond = string(c.Status) + "/" + c.Reason
		}
		rows = append(rows, []string{p.Name, fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)), status, cond})
	}
	return columns(rows)
}

// columns aligns rows as kubectl does: each column as wide as its widest cell,
// three spaces apart.
func columns(rows [][]string) string {
	widths := map[int]int{}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c + strings.Repeat(" ", widths[i]-len([]rune(c))+3))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// The namespace of the scenario: the charts were rendered for it.
const oshNamespace = openstackhelm.Namespace
