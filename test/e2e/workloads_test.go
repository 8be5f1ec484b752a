//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// A rollout dependency on a real Deployment: the resolver waits, naming the
// rollout, while the Deployment does not exist and while its pod is not
// available, and execs the app once the Deployment controller reports the
// rollout complete.
func TestRolloutDependency(t *testing.T) {
	defer noPanic(t)
	ns := namespace(t, "e2e-rollout")
	ctx := context.Background()
	const appOutput = "web: runs after the rollout"

	app := appDeployment("web", map[string]string{"entrypoint.io/dependency-rollout": "deployment/db"}, container("web", "print", appOutput))
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, app, metav1.CreateOptions{})
	must(t, err)
	var podName string
	eventually(t, "the app's container runs the resolver", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := onlyPod(ctx, ns, "web")
		if p == nil || err != nil {
			return false, err
		}
		podName = p.Name
		return containerRunning(p, "web"), nil
	})
	logs := func(ctx context.Context) string { return podLogs(ctx, ns, podName, "web") }
	eventually(t, "the resolver names the rollout", 30*time.Second, func(ctx context.Context) (bool, error) {
		return strings.Contains(logs(ctx), "rollout "+ns+"/deployment/db"), nil
	})
	if l := logs(ctx); strings.Contains(l, appOutput) {
		t.Fatalf("the app ran before the Deployment existed:\n%s", l)
	}

	db, _ := database("db")
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, db, metav1.CreateOptions{})
	must(t, err)
	var l string
	eventually(t, "the app runs", 2*time.Minute, func(ctx context.Context) (bool, error) {
		l = logs(ctx)
		return appPrinted(l, appOutput), nil
	})
	// The rollout was complete when the app started, and stays so.
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, "db", metav1.GetOptions{})
	must(t, err)
	if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != 1 || d.Status.AvailableReplicas != 1 {
		t.Errorf("the app started, but the rollout of db is not complete: %+v", d.Status)
	}
	t.Logf("logs of the app's container:\n%s", l)
}

// A claim dependency in gate mode: the pod is held unscheduled, its condition
// naming the claim, until the claim binds to a PersistentVolume created for it
// (the local cluster has no provisioner: the PV binds statically), then runs.
func TestPVCDependencyGated(t *testing.T) {
	defer noPanic(t)
	ns := bareNamespace(t, "e2e-pvc")
	ctx := context.Background()
	const appOutput = "web: runs once its claim is bound"
	t.Cleanup(func() {
		if t.Failed() {
			dumpGate(t, ns)
		}
	})

	app := appDeployment("web", map[string]string{
		"entrypoint.io/dependency-pvc": "data",
		inject.AnnotationGate:          "true",
	}, container("web", "print", appOutput))
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, app, metav1.CreateOptions{})
	must(t, err)

	wantBlocker := "pvc " + ns + "/data: not found"
	var podName string
	eventually(t, "the gated pod's condition names the missing claim", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := onlyPod(ctx, ns, "web")
		if p == nil || err != nil {
			return false, err
		}
		podName = p.Name
		c := podCondition(p, api.ConditionType)
		return hasGate(p) && c != nil && c.Status == corev1.ConditionFalse && strings.Contains(c.Message, wantBlocker), nil
	})

	empty := ""
	storage := corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("16Mi")}
	_, err = cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &empty,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: storage},
		},
	}, metav1.CreateOptions{})
	must(t, err)
	eventually(t, "the condition names the pending claim", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := podCondition(p, api.ConditionType)
		return hasGate(p) && c != nil && strings.Contains(c.Message, "pvc "+ns+"/data: phase Pending, not Bound"), nil
	})

	// A volume reserved for this claim (claimRef), so that no other claim of the
	// cluster takes it; kube-controller-manager's binder binds the two.
	pvName := "e2e-pvc-" + ns
	_, err = cs.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      storage,
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "",
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: "data"},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + pvName}},
		},
	}, metav1.CreateOptions{})
	must(t, err)
	t.Cleanup(func() {
		_ = cs.CoreV1().PersistentVolumes().Delete(context.Background(), pvName, metav1.DeleteOptions{})
	})

	eventually(t, "the gate removed once the claim is Bound", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return !hasGate(p), nil
	})
	pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	must(t, err)
	if pvc.Status.Phase != corev1.ClaimBound {
		t.Errorf("the gate went while the claim is %s", pvc.Status.Phase)
	}
	eventually(t, "the app runs", time.Minute, func(ctx context.Context) (bool, error) {
		return appPrinted(podLogs(ctx, ns, podName, "web"), appOutput), nil
	})
}
