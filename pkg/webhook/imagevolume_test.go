package webhook_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook"
)

func TestDecideImageVolumes(t *testing.T) {
	good := func(name string) webhook.NodeRuntime {
		return webhook.NodeRuntime{Name: name, KubeletVersion: "v1.37.2", ContainerRuntimeVersion: "containerd://2.4.2"}
	}
	with := func(name, kubelet, runtime string) webhook.NodeRuntime {
		return webhook.NodeRuntime{Name: name, KubeletVersion: kubelet, ContainerRuntimeVersion: runtime}
	}
	tests := []struct {
		name      string
		nodes     []webhook.NodeRuntime
		supported bool
		reason    string // a part of the reason
	}{
		{name: "no nodes", reason: "the cluster has no nodes"},
		{name: "one good node", nodes: []webhook.NodeRuntime{good("a")}, supported: true, reason: "all 1 nodes run kubelet 1.35 or later and containerd 2.2 or later"},
		{name: "lowest versions", nodes: []webhook.NodeRuntime{with("a", "v1.35.0", "containerd://2.2.0")}, supported: true},
		{name: "distribution suffixes", nodes: []webhook.NodeRuntime{
			with("a", "v1.35.3+k3s1", "containerd://2.2.1-k3s1"), with("b", "v1.36.1-gke.1200", "containerd://v2.2.0"),
			with("c", "v1.37.0-eks-abcdef", "containerd://2.3.0-1.eks.amazonlinux"),
		}, supported: true, reason: "all 3 nodes"},
		{name: "old kubelet", nodes: []webhook.NodeRuntime{good("a"), with("b", "v1.34.9", "containerd://2.4.2")},
			reason: "node b runs kubelet v1.34.9 (image volumes need 1.35+)"},
		{name: "old containerd", nodes: []webhook.NodeRuntime{with("a", "v1.37.2", "containerd://1.7.28"), good("b")},
			reason: "node a runs containerd 1.7.28 (image volumes with subPath need 2.2+)"},
		{name: "containerd 2.1 ignores subPath", nodes: []webhook.NodeRuntime{with("a", "v1.35.0", "containerd://2.1.6+bottlerocket")},
			reason: "node a runs containerd 2.1.6+bottlerocket (image volumes with subPath need 2.2+)"},
		{name: "containerd 2.0", nodes: []webhook.NodeRuntime{with("a", "v1.37.2", "containerd://2.0.6")}, reason: "node a runs containerd 2.0.6"},
		{name: "cri-o", nodes: []webhook.NodeRuntime{with("a", "v1.37.2", "cri-o://1.37.0")}, reason: "node a runs CRI-O, which mounts image volumes noexec"},
		{name: "docker", nodes: []webhook.NodeRuntime{with("a", "v1.37.2", "docker://28.0.1")},
			reason: `node a runs container runtime "docker://28.0.1", not known to mount image volumes executable`},
		{name: "no runtime reported yet", nodes: []webhook.NodeRuntime{with("a", "v1.37.2", "")}, reason: `node a runs container runtime ""`},
		{name: "no kubelet version", nodes: []webhook.NodeRuntime{with("a", "", "containerd://2.4.2")}, reason: `node a reports kubelet version "", which is not a version`},
		{name: "containerd version garbage", nodes: []webhook.NodeRuntime{with("a", "v1.37.2", "containerd://main")}, reason: `node a reports containerd version "main", which is not a version`},
		{name: "first by name, and a count", nodes: []webhook.NodeRuntime{
			with("z", "v1.33.0", "containerd://2.4.2"), good("m"), with("c", "v1.37.2", "cri-o://1.37.0"), with("d", "v1.30.0", "containerd://1.6.0"),
		}, reason: "node c runs CRI-O, which mounts image volumes noexec (and 2 more nodes cannot)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := webhook.DecideImageVolumes(tt.nodes)
			if d.Supported != tt.supported || !strings.Contains(d.Reason, tt.reason) || d.Reason == "" {
				t.Errorf("DecideImageVolumes = %+v, want supported %v and a reason with %q", d, tt.supported, tt.reason)
			}
		})
	}
}

func TestSlimNode(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "u", ResourceVersion: "7", Labels: map[string]string{"x": "y"}},
		Spec:       corev1.NodeSpec{PodCIDR: "10.0.0.0/24"},
		Status: corev1.NodeStatus{
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", ContainerRuntimeVersion: "containerd://2.4.2", OSImage: "Debian"},
			Images:   []corev1.ContainerImage{{Names: []string{"a"}}},
		},
	}
	got, err := webhook.SlimNode(node)
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "u", ResourceVersion: "7"},
		Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", ContainerRuntimeVersion: "containerd://2.4.2"}}}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("SlimNode = %s, want %s", g, w)
	}
	if other, _ := webhook.SlimNode("tombstone"); other != "tombstone" {
		t.Errorf("SlimNode of a non-node = %v", other)
	}
}

// fixedModes is an InjectionModeSource that answers what it is told.
type fixedModes struct {
	mode   inject.InjectionMode
	caveat string
}

func (f fixedModes) InjectionMode() (inject.InjectionMode, string) { return f.mode, f.caveat }

// patchedVolume is the volume the response's patch adds, as JSON.
func patchedVolume(t *testing.T, resp admission.Response) string {
	t.Helper()
	for _, p := range resp.Patches {
		if strings.HasPrefix(p.Path, "/spec/volumes") {
			raw, err := json.Marshal(p.Value)
			if err != nil {
				t.Fatal(err)
			}
			return string(raw)
		}
	}
	return ""
}

// The handler asks its mode source for each request: the decided mode is the
// pods' unless they choose, and a pod choosing image-volume against a caveat is
// injected so with the caveat as a warning.
func TestHandlerInjectionModeSource(t *testing.T) {
	const caveat = "node b runs containerd 1.7.28 (image volumes with subPath need 2.2+)"
	tests := []struct {
		name         string
		source       webhook.InjectionModeSource
		annotation   string
		runtimeClass string
		imageVol     bool
		warning      bool
		warningText  string
	}{
		{name: "runtime class: init-container under auto", source: fixedModes{mode: inject.ModeImageVolume}, runtimeClass: "kata", imageVol: false},
		{name: "runtime class, pod asks image-volume", source: fixedModes{mode: inject.ModeImageVolume}, runtimeClass: "kata",
			annotation: "image-volume", imageVol: true, warning: true, warningText: "its runtimeClassName kata may not support image volumes; the pod does not start"},
		{name: "no source: the config's mode", imageVol: false},
		{name: "decided image-volume", source: fixedModes{mode: inject.ModeImageVolume}, imageVol: true},
		{name: "decided init-container", source: fixedModes{mode: inject.ModeInitContainer, caveat: caveat}, imageVol: false},
		{name: "pod asks image-volume against the decision", source: fixedModes{mode: inject.ModeInitContainer, caveat: caveat},
			annotation: "image-volume", imageVol: true, warning: true},
		{name: "pod asks init-container", source: fixedModes{mode: inject.ModeImageVolume}, annotation: "init-container", imageVol: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newInjector(t)
			h.Modes = tt.source
			annotations := map[string]string{"entrypoint.io/dependency-service": "mariadb"}
			if tt.annotation != "" {
				annotations[inject.AnnotationInjectionMode] = tt.annotation
			}
			pod := typicalPod(annotations)
			if tt.runtimeClass != "" {
				pod.Spec.RuntimeClassName = &tt.runtimeClass
			}
			resp := h.Handle(context.Background(), request(t, pod))
			if !resp.Allowed {
				t.Fatalf("denied: %v", resp.Result)
			}
			vol := patchedVolume(t, resp)
			if got := strings.Contains(vol, `"image":{"reference":"registry.example/kubernetes-entrypoint:1"`); got != tt.imageVol {
				t.Errorf("volume %s; image volume %v, want %v", vol, got, tt.imageVol)
			}
			wantText := tt.warningText
			if wantText == "" {
				wantText = caveat + "; the pod does not start"
			}
			if got := len(resp.Warnings) == 1 && strings.Contains(resp.Warnings[0], wantText); got != tt.warning {
				t.Errorf("warnings %q; want the caveat: %v", resp.Warnings, tt.warning)
			}
		})
	}
	// A bad annotation is denied whatever the source says.
	h, _ := newInjector(t)
	h.Modes = fixedModes{mode: inject.ModeImageVolume}
	resp := h.Handle(context.Background(), request(t, typicalPod(map[string]string{
		"entrypoint.io/dependency-service": "mariadb", inject.AnnotationInjectionMode: "auto",
	})))
	if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, "annotation entrypoint.io/injection-mode") ||
		resp.Result.Details == nil || len(resp.Result.Details.Causes) != 1 || resp.Result.Details.Causes[0].Field != "metadata.annotations[entrypoint.io/injection-mode]" {
		t.Errorf("injection-mode auto on a pod: %+v", resp.Result)
	}
}
