package server_test

import (
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	injectoptions "github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject/options"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook/server"
)

// --injection-mode: auto by default, which starts as init-container; a forced
// mode is the config's; anything else is refused naming the flag.
func TestInjectConfigInjectionMode(t *testing.T) {
	tests := []struct {
		args    []string
		want    inject.InjectionMode
		wantErr string
	}{
		{args: nil, want: inject.ModeInitContainer},
		{args: []string{"--injection-mode=auto"}, want: inject.ModeInitContainer},
		{args: []string{"--injection-mode=init-container"}, want: inject.ModeInitContainer},
		{args: []string{"--injection-mode=image-volume"}, want: inject.ModeImageVolume},
		{args: []string{"--injection-mode=emptyDir"}, wantErr: `--injection-mode="emptyDir": want auto, init-container or image-volume`},
		{args: []string{"--injection-mode="}, wantErr: `--injection-mode="": want auto, init-container or image-volume`},
	}
	for _, tt := range tests {
		o := server.DefaultOptions()
		if o.InjectionMode != injectoptions.InjectionModeAuto {
			t.Fatalf("default --injection-mode=%s, want auto", o.InjectionMode)
		}
		fs := flag.NewFlagSet("entrypoint-webhook", flag.ContinueOnError)
		o.BindFlags(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.InjectConfig()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || cfg.InjectionMode != tt.want {
			t.Errorf("%q: mode %s, err %v; want %s", tt.args, cfg.InjectionMode, err, tt.want)
		}
	}
}

// modeOf is how the webhook injected pod.
func modeOf(pod *corev1.Pod) inject.InjectionMode {
	for _, v := range pod.Spec.Volumes {
		if v.Name == inject.VolumeName {
			if v.Image != nil {
				return inject.ModeImageVolume
			}
			return inject.ModeInitContainer
		}
	}
	return ""
}

// Through the API server, the whole process: with --injection-mode=auto pods
// get init-container while there are no nodes or some node cannot, and
// image-volume while every node can; a pod's annotation wins either way.
func TestInjectionModeAutoThroughTheAPIServer(t *testing.T) {
	env := testenv.StartT(t, envtest.Environment{
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{"../../../config/webhook"}},
	})
	wio := env.WebhookInstallOptions()
	o := options()
	o.Controller = false
	o.Host, o.Port, o.CertDir = wio.LocalServingHost, wio.LocalServingPort, wio.LocalServingCertDir
	start(t, env, o)
	ns := env.Namespace(t)
	ctx := context.Background()
	create := func(annotations map[string]string) *corev1.Pod {
		t.Helper()
		annotations["entrypoint.io/dependency-service"] = "mariadb"
		pod, err := env.Client.CoreV1().Pods(ns).Create(ctx, annotatedPod(annotations), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return pod
	}
	// The mode of new pods settles once the webhook has seen the nodes.
	eventuallyMode := func(what string, want inject.InjectionMode) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, what, func() bool { return modeOf(create(map[string]string{})) == want })
	}
	setNode := func(name, runtime string) {
		t.Helper()
		node, err := env.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			node, err = env.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		node.Status.NodeInfo.KubeletVersion, node.Status.NodeInfo.ContainerRuntimeVersion = "v1.37.2", runtime
		if _, err := env.Client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	if got := modeOf(create(map[string]string{})); got != inject.ModeInitContainer {
		t.Errorf("no nodes: %s, want init-container", got)
	}
	if got := modeOf(create(map[string]string{inject.AnnotationInjectionMode: "image-volume"})); got != inject.ModeImageVolume {
		t.Errorf("no nodes, pod asks image-volume: %s", got)
	}
	setNode("mode-a", "containerd://2.4.2")
	eventuallyMode("image-volume once the only node can", inject.ModeImageVolume)
	if got := modeOf(create(map[string]string{inject.AnnotationInjectionMode: "init-container"})); got != inject.ModeInitContainer {
		t.Errorf("able nodes, pod asks init-container: %s", got)
	}
	setNode("mode-b", "containerd://1.7.28")
	eventuallyMode("init-container once a node cannot", inject.ModeInitContainer)
}
