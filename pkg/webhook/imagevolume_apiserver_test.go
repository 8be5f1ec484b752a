package webhook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook"
)

// startNodeImageVolumes runs a node cache for cfg, reduced as the webhook's is,
// and a NodeImageVolumes on it, until the test ends; its log lines go to logs.
func startNodeImageVolumes(t *testing.T, cfg *rest.Config, logs *testenv.Buffer) (*webhook.NodeImageVolumes, cache.Cache) {
	t.Helper()
	c, err := cache.New(cfg, cache.Options{ByObject: map[client.Object]cache.ByObject{&corev1.Node{}: {Transform: webhook.SlimNode}}})
	if err != nil {
		t.Fatal(err)
	}
	live, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := &webhook.NodeImageVolumes{
		Cache: c, Live: live, SyncWarnAfter: time.Second,
		Log: funcr.New(func(_, args string) { _, _ = logs.Write([]byte(args + "\n")) }, funcr.Options{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	cacheDone, watchDone := make(chan error, 1), make(chan error, 1)
	go func() { cacheDone <- c.Start(ctx) }()
	go func() { watchDone <- n.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-watchDone; err != nil {
			t.Errorf("NodeImageVolumes stopped with %v", err)
		}
		if err := <-cacheDone; err != nil {
			t.Errorf("cache stopped with %v", err)
		}
	})
	return n, c
}

// setNode creates or updates node name with the kubelet and runtime versions.
func setNode(t *testing.T, cs kubernetes.Interface, name, kubelet, runtime string) {
	t.Helper()
	ctx := context.Background()
	node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err = cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	node.Status.NodeInfo.KubeletVersion, node.Status.NodeInfo.ContainerRuntimeVersion = kubelet, runtime
	node.Status.Images = []corev1.ContainerImage{{Names: []string{"registry.example/big:1"}, SizeBytes: 1 << 30}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Against a real API server: --injection-mode=auto follows the nodes as they
// come, change and go, logs each change of the decision once, keeps nodes
// reduced in its cache, and without RBAC on nodes stays init-container and says
// why.
func TestNodeImageVolumesFollowsNodes(t *testing.T) {
	env := testenv.StartT(t, envtest.Environment{})
	var logs testenv.Buffer
	n, c := startNodeImageVolumes(t, env.Config, &logs)
	wait := func(what string, supported bool, reason string) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, what, func() bool {
			d := n.Decision()
			return d.Supported == supported && strings.Contains(d.Reason, reason)
		})
		mode, caveat := n.InjectionMode()
		if supported != (mode == inject.ModeImageVolume) || supported != (caveat == "") {
			t.Errorf("%s: InjectionMode() = %s, %q", what, mode, caveat)
		}
	}
	wait("no nodes", false, "the cluster has no nodes")
	setNode(t, env.Client, "iv-a", "v1.37.2", "containerd://2.4.2")
	wait("one able node", true, "all 1 nodes")
	setNode(t, env.Client, "iv-b", "v1.37.2", "containerd://1.7.28")
	wait("a node with containerd 1.7", false, "node iv-b runs containerd 1.7.28")
	setNode(t, env.Client, "iv-b", "v1.37.2", "containerd://2.2.0")
	wait("the node upgraded", true, "all 2 nodes")
	setNode(t, env.Client, "iv-c", "v1.37.2", "cri-o://1.37.1")
	wait("a CRI-O node", false, "node iv-c runs CRI-O")
	for _, name := range []string{"iv-a", "iv-b", "iv-c"} {
		if err := env.Client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	wait("nodes gone", false, "the cluster has no nodes")

	// One line per change of the decision: init-container (no nodes),
	// image-volume, init-container, image-volume, init-container (CRI-O, then
	// no nodes again: no change).
	var changes []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "pods without entrypoint.io/injection-mode get ") {
			changes = append(changes, strings.Split(strings.SplitAfter(line, " get ")[1], `"`)[0])
		}
	}
	want := []string{"init-container", "image-volume", "init-container", "image-volume", "init-container"}
	if strings.Join(changes, ",") != strings.Join(want, ",") {
		t.Errorf("decision changes logged %q, want %q; logs:\n%s", changes, want, logs.String())
	}

	// The cache keeps nodes reduced.
	setNode(t, env.Client, "iv-d", "v1.37.2", "containerd://2.4.2")
	var cached corev1.Node
	testenv.Eventually(t, 30*time.Second, "node iv-d's status in the cache", func() bool {
		return c.Get(context.Background(), client.ObjectKey{Name: "iv-d"}, &cached) == nil && cached.Status.NodeInfo.KubeletVersion != ""
	})
	if len(cached.Status.Images) > 0 || cached.Status.NodeInfo.KubeletVersion != "v1.37.2" || cached.Status.NodeInfo.ContainerRuntimeVersion != "containerd://2.4.2" {
		t.Errorf("cached node: images %v, nodeInfo %+v; want no images, the versions", cached.Status.Images, cached.Status.NodeInfo)
	}

	// No RBAC on nodes: the cache never syncs; init-container, and one log
	// line with the API server's reason.
	var noRBACLogs testenv.Buffer
	noRBAC := env.ServiceAccountConfig(t, env.Namespace(t), "no-nodes", nil)
	forbidden, _ := startNodeImageVolumes(t, noRBAC, &noRBACLogs)
	testenv.Eventually(t, 30*time.Second, "a log line saying nodes are forbidden", func() bool {
		return strings.Contains(noRBACLogs.String(), "forbidden") && strings.Contains(noRBACLogs.String(), "needs get, list and watch on nodes")
	})
	if mode, caveat := forbidden.InjectionMode(); mode != inject.ModeInitContainer || !strings.Contains(caveat, "has not read the cluster's nodes") {
		t.Errorf("without RBAC: InjectionMode() = %s, %q; want init-container, not read", mode, caveat)
	}
}

// Against a real API server with the PodSecurity admission plugin: a namespace
// that enforces restricted admits a restricted pod injected in either mode.
// Image volumes are among restricted's allowed volume types (pod-security-
// admission's restrictedVolumes check), so the mode never depends on the
// namespace's policy; and the API server keeps the image volume and its
// subPath as the webhook wrote them.
func TestRestrictedPodSecurityAdmitsBothModes(t *testing.T) {
	env := testenv.StartT(t, envtest.Environment{})
	ctx := context.Background()
	ns, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "restricted-",
		Labels:       map[string]string{"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	restricted := func(name string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name, Annotations: map[string]string{"entrypoint.io/dependency-service": "mariadb"}},
			Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
				Containers: []corev1.Container{{
					Name: "app", Image: "registry.example/app:1.0", Command: []string{"/usr/bin/app"},
					SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
				}},
			},
		}
	}
	// PodSecurity is on: a pod that is not restricted is refused.
	loose := restricted("loose")
	loose.Spec.SecurityContext = nil
	if _, err := env.Client.CoreV1().Pods(ns.Name).Create(ctx, loose, metav1.CreateOptions{}); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Fatalf("a pod violating restricted: %v; want refused by PodSecurity", err)
	}
	for _, mode := range inject.InjectionModes() {
		pod, outcome, err := inject.Mutate(ctx, restricted(string(mode)), inject.Config{Image: "registry.example/kubernetes-entrypoint:1", InjectionMode: mode})
		if err != nil {
			t.Fatalf("%s: %+v, %v", mode, outcome, err)
		}
		created, err := env.Client.CoreV1().Pods(ns.Name).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("%s: the injected pod is refused: %v", mode, err)
		}
		vol := created.Spec.Volumes[len(created.Spec.Volumes)-1]
		mount := created.Spec.Containers[0].VolumeMounts[len(created.Spec.Containers[0].VolumeMounts)-1]
		switch mode {
		case inject.ModeImageVolume:
			if vol.Image == nil || vol.Image.Reference != "registry.example/kubernetes-entrypoint:1" || mount.SubPath != inject.ImageVolumeSubPath || !mount.ReadOnly {
				t.Errorf("image-volume: stored volume %+v, mount %+v", vol.VolumeSource, mount)
			}
		case inject.ModeInitContainer:
			if vol.EmptyDir == nil || len(created.Spec.InitContainers) != 1 {
				t.Errorf("init-container: stored volume %+v, init containers %d", vol.VolumeSource, len(created.Spec.InitContainers))
			}
		}
	}
}
