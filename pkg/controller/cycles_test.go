package controller

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// startControllerWithCycles runs the controller with the cycle detector, as the
// webhook's process does: both on the manager's cache.
func startControllerWithCycles(t *testing.T) *CycleDetector {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{ByObject: CacheByObject()},
		Controller:             ctrlConfigSkipNameValidation(),
	})
	if err != nil {
		t.Fatal(err)
	}
	cycles := &CycleDetector{Cache: mgr.GetCache(), Dependencies: testDependencies, Log: testLogger(t)}
	if err := mgr.Add(cycles); err != nil {
		t.Fatal(err)
	}
	if _, err := SetupWithManager(mgr, Options{Dependencies: testDependencies, Dynamic: dyn, Log: testLogger(t), Cycles: cycles}); err != nil {
		t.Fatal(err)
	}
	startManager(t, mgr)
	return cycles
}

// ownedBy makes pod one of its controller's, as the ReplicaSet and StatefulSet
// controllers would (the test API server runs neither, nor the garbage
// collector that would delete pods of owners that do not exist).
func ownedBy(pod *corev1.Pod, kind, name string) *corev1.Pod {
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name,
		UID: types.UID("00000000-0000-0000-0000-0000000000" + kind[:2]), Controller: ptr.To(true)}}
	return pod
}

// A Deployment's pods wait for a StatefulSet's rollout, whose pods wait for (a
// quorum of) the Deployment's Service: the cycle goes through the rollout.
func TestCycleThroughARollout(t *testing.T) {
	startControllerWithCycles(t)
	ns := env.Namespace(t)
	api := managedPod(t, ns, "api-5d8f-x1", map[string]string{"DEPENDENCY_ROLLOUT": "statefulset/db"}, inject.SchedulingGate)
	api.Labels["app"] = "api"
	api.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = "5d8f"
	createPod(t, ownedBy(api, "ReplicaSet", "api-5d8f"))
	db := managedPod(t, ns, "db-0", map[string]string{"DEPENDENCY_SERVICE": "api#2"}, inject.SchedulingGate)
	db.Labels["app"] = "db"
	createPod(t, ownedBy(db, "StatefulSet", "db"))
	// Not in the cycle: waits for the rollout, nothing waits for it.
	createPod(t, managedPod(t, ns, "watcher", map[string]string{"DEPENDENCY_ROLLOUT": "statefulset/db"}, inject.SchedulingGate))
	if _, err := env.Client.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	waitPod(t, ns, "api-5d8f-x1", "condition Cycle", hasCondition(corev1.ConditionFalse, ReasonCycle,
		"dependency cycle: deployment "+ns+"/api waits for rollout "+ns+"/statefulset/db, rolled out by statefulset "+ns+"/db, "+
			"which waits for service "+ns+"/api, served by deployment "+ns+"/api; waiting for rollout "+ns+"/statefulset/db: "))
	waitPod(t, ns, "db-0", "condition Cycle", hasCondition(corev1.ConditionFalse, ReasonCycle,
		"dependency cycle: statefulset "+ns+"/db waits for service "+ns+"/api, served by deployment "+ns+"/api, "+
			"which waits for rollout "+ns+"/statefulset/db, rolled out by statefulset "+ns+"/db; waiting for service "+ns+"/api"))
	waitPod(t, ns, "watcher", "condition Waiting (not in the cycle)", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		"waiting for rollout "+ns+"/statefulset/db"))
}
