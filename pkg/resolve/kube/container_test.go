package kube_test

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
)

// ownPodWithSidecar is the own pod: regular containers app and db, and proxy, a
// native sidecar.
var ownPodWithSidecar = podSpec{node: "node-a", extra: []string{"db"}, sidecars: []string{"proxy"}}

// containersReady is a running pod's status where exactly the named containers
// (regular or sidecar) are ready.
func containersReady(ready ...string) corev1.PodStatus {
	isReady := map[string]bool{}
	for _, name := range ready {
		isReady[name] = true
	}
	status := func(name string) corev1.ContainerStatus {
		return corev1.ContainerStatus{
			Name: name, Image: "busybox", ImageID: "docker.io/library/busybox@sha256:0", Ready: isReady[name],
			Started: ptr.To(true),
			State:   corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
		}
	}
	st := *runningPod(false)
	st.ContainerStatuses = []corev1.ContainerStatus{status("app"), status("db")}
	st.InitContainerStatuses = []corev1.ContainerStatus{status("proxy")}
	return st
}

func TestContainerOfThisPod(t *testing.T) {
	for _, tc := range []struct {
		container string
		others    []string // every other container, made ready first
	}{
		{"db", []string{"app", "proxy"}}, // a regular container
		{"proxy", []string{"app", "db"}}, // a native sidecar, in initContainerStatuses
	} {
		t.Run(tc.container, func(t *testing.T) {
			ns := env.Namespace(t)
			c := newClient(t, kube.Options{Namespace: ns, PodName: "me"})
			w := start(t, &kube.Container{Client: c, Name: tc.container})
			w.blocked(t, "own pod "+ns+"/me not found")

			createPod(t, ns, "me", ownPodWithSidecar)
			w.blocked(t, "not ready")
			setPodStatus(t, ns, "me", containersReady(tc.others...))
			w.stillBlocked(t)
			setPodStatus(t, ns, "me", containersReady(append(tc.others, tc.container)...))
			w.ready(t)
		})
	}
}

func TestContainerNotInThisPod(t *testing.T) {
	ns := env.Namespace(t)
	createPod(t, ns, "me", ownPodWithSidecar)
	c := newClient(t, kube.Options{Namespace: ns, PodName: "me"})
	err := start(t, &kube.Container{Client: c, Name: "rabbitmq"}).fails(t, `no container or native sidecar named "rabbitmq"`)
	if !errors.Is(err, resolve.ErrTerminal) {
		t.Errorf("error %v does not wrap resolve.ErrTerminal", err)
	}
}
