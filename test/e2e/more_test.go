//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// A Deployment with an invalid annotation: the webhook denies its pods, and the user
// sees why where a controller-made pod's failure shows, in the ReplicaSet's
// FailedCreate event, with the webhook's message (annotation, value, expected form).
func TestBadAnnotationShowsOnTheReplicaSet(t *testing.T) {
	defer noPanic(t)
	ns := namespace(t, "e2e-bad")
	ctx := context.Background()
	app := appDeployment("bad", map[string]string{
		"entrypoint.io/dependency-service": "mariadb",
		"entrypoint.io/timeout":            "forever",
	}, container("bad", "print", "must not run"))
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, app, metav1.CreateOptions{})
	must(t, err)

	var msg string
	eventually(t, "a FailedCreate event on the ReplicaSet", time.Minute, func(ctx context.Context) (bool, error) {
		events, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
			FieldSelector: fields.Set{"involvedObject.kind": "ReplicaSet", "reason": "FailedCreate"}.String(),
		})
		if err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if strings.HasPrefix(e.InvolvedObject.Name, "bad-") {
				msg = e.Message
				return true, nil
			}
		}
		return false, nil
	})
	t.Logf("FailedCreate: %s", msg)
	for _, want := range []string{"denied the request", "entrypoint.io/timeout", "forever", "Go duration"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the event's message lacks %q", want)
		}
	}
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	must(t, err)
	if len(pods.Items) != 0 {
		t.Errorf("%d pods exist, want none", len(pods.Items))
	}
}

// A container dependency within one pod: the wrapped container starts its app only
// once the other container (which becomes Ready after 2 s) is Ready.
func TestContainerDependency(t *testing.T) {
	defer noPanic(t)
	ns := namespace(t, "e2e-container")
	ctx := context.Background()
	const appOutput = "main: the application runs"

	sidecar := container("sidecar", "touch-after", "2", "/shared/ready")
	sidecar.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{testapp, "exists", "/shared/ready"}}},
		PeriodSeconds: 1,
	}
	main := container("main", "print", appOutput)
	for _, c := range []*corev1.Container{&sidecar, &main} {
		c.VolumeMounts = []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}
	}
	app := appDeployment("pair", map[string]string{
		"entrypoint.io/dependency-container": "sidecar",
		"entrypoint.io/containers":           "main",
	}, main, sidecar)
	app.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, app, metav1.CreateOptions{})
	must(t, err)

	var pod *corev1.Pod
	eventually(t, "the pod exists", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := onlyPod(ctx, ns, "pair")
		pod = p
		return p != nil, err
	})
	for _, c := range pod.Spec.Containers {
		wrapped := strings.HasSuffix(c.Command[0], "/kubernetes-entrypoint")
		if wrapped != (c.Name == "main") {
			t.Fatalf("container %s: command %q; want only main wrapped", c.Name, c.Command)
		}
	}
	var mainLogs, sidecarLogs string
	eventually(t, "the main container's app runs", time.Minute, func(ctx context.Context) (bool, error) {
		mainLogs = podLogs(ctx, ns, pod.Name, "main")
		return appPrinted(mainLogs, appOutput), nil
	})
	sidecarLogs = podLogs(ctx, ns, pod.Name, "sidecar")
	t.Logf("main:\n%s\nsidecar:\n%s", mainLogs, sidecarLogs)
	if lineIndex(mainLogs, "waiting for dependencies") < 0 || !strings.Contains(mainLogs, "sidecar") {
		t.Errorf("the resolver did not report waiting for container sidecar")
	}
	startedAfter(t, mainLogs, sidecarLogs, "main's app", "the sidecar's readiness file appeared")
}
