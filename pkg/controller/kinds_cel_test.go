package controller

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// deleteAfter deletes the pod at the end of the test: the API server of the tests
// deletes no namespace's content, and a pod left waiting would keep its kind's
// informer in the controllers of later tests.
func deleteAfter(t *testing.T, ns, name string) {
	t.Cleanup(func() {
		_ = env.Client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})
}

// A gated pod waits for a CEL expression over a ConfigMap, evaluated through the
// shared ConfigMap informer: not found, then a missing key, then false, and the
// gate goes once it is true.
func TestGateReleasedWhenCELExpressionTrue(t *testing.T) {
	startController(t, nil)
	ns := env.Namespace(t)
	ctx := context.Background()
	createPod(t, managedPod(t, ns, "app", map[string]string{
		spec.EnvCEL: `[{"apiVersion":"v1","kind":"ConfigMap","name":"migration","expression":"object.data.state == \"done\""}]`,
	}, inject.SchedulingGate))
	deleteAfter(t, ns, "app")
	what := "cel v1 ConfigMap " + ns + "/migration: "
	waitPod(t, ns, "app", "not found", hasCondition(corev1.ConditionFalse, ReasonWaiting, what+"not found"))

	cm, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "migration"}, Data: map[string]string{"other": "x"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitPod(t, ns, "app", "missing key", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		what+`"object.data.state == \"done\"" cannot be evaluated: no such key: state`))

	cm.Data = map[string]string{"state": "running"}
	if cm, err = env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(t, ns, "app", "false", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		what+`"object.data.state == \"done\"" is false`))
	if gateIndex(p) < 0 {
		t.Fatal("gate removed while the expression was false")
	}

	cm.Data["state"] = "done"
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ns, "app", "gate removed", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
}

// An expression that does not compile (set without the webhook) keeps the pod
// gated and says why.
func TestGateKeptOnBadCELExpression(t *testing.T) {
	startController(t, nil)
	ns := env.Namespace(t)
	createPod(t, managedPod(t, ns, "app", map[string]string{
		spec.EnvCEL: `[{"apiVersion":"v1","kind":"ConfigMap","name":"x","expression":"object.data"}]`,
	}, inject.SchedulingGate))
	deleteAfter(t, ns, "app")
	waitPod(t, ns, "app", "refused expression named", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		`expression "object.data" has type dyn, not bool`))
}
