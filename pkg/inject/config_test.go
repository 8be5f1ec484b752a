package inject

import (
	"context"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestConfigIsUsed(t *testing.T) {
	resources := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("8Mi")},
	}
	cfg := Config{
		Image:           "registry.example/ke@sha256:0123",
		ImagePullPolicy: corev1.PullAlways,
		MountPath:       "/opt/ke",
		Resources:       resources,
		RunAsUser:       1000,
	}
	out, _, err := Mutate(context.Background(), simplePod(map[string]string{"entrypoint.io/dependency-service": "db"}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	init := out.Spec.InitContainers[0]
	if init.Image != cfg.Image || init.ImagePullPolicy != corev1.PullAlways ||
		!reflect.DeepEqual(init.Command, []string{"kubernetes-entrypoint", "install", "/opt/ke"}) ||
		init.VolumeMounts[0].MountPath != "/opt/ke" || *init.SecurityContext.RunAsUser != 1000 ||
		!reflect.DeepEqual(init.Resources, resources) {
		t.Errorf("init container does not follow the config: %+v", init)
	}
	app := out.Spec.Containers[0]
	if !reflect.DeepEqual(app.Command, []string{"/opt/ke/kubernetes-entrypoint"}) || app.VolumeMounts[0].MountPath != "/opt/ke" {
		t.Errorf("app container does not follow the config: %+v", app)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{Image: "x"}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	bad := Config{ImagePullPolicy: "Sometimes", MountPath: "relative/", RunAsUser: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("an invalid config was accepted")
	}
	for _, want := range []string{"Image is empty", `ImagePullPolicy "Sometimes"`, `MountPath "relative/"`, "RunAsUser -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %q", err, want)
		}
	}
	out, outcome, mutateErr := Mutate(context.Background(), simplePod(map[string]string{"entrypoint.io/timeout": "1m"}), bad)
	if out != nil || mutateErr == nil || outcome.Result != ResultDenied || outcome.Reason != ReasonInvalidConfig {
		t.Errorf("Mutate with a bad config: %v, %+v, %v", out, outcome, mutateErr)
	}
}

// The registry is asked the way the kubelet would pull: the pod's namespace,
// ServiceAccount and pull secrets; once per image.
func TestImageLookupRef(t *testing.T) {
	registry := &fakeRegistry{}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Namespace: "shop", Annotations: map[string]string{"entrypoint.io/dependency-service": "db"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "mirror"}},
			Containers: []corev1.Container{
				{Name: "api", Image: "registry.example/app:1.0"},
				{Name: "worker", Image: "registry.example/app:1.0", Args: []string{"work"}},
			},
		},
	}
	if _, _, err := Mutate(context.Background(), pod, Config{Image: testImage, ImageConfig: registry}); err != nil {
		t.Fatal(err)
	}
	want := []ImageRef{{Image: "registry.example/app:1.0", Namespace: "shop", ServiceAccount: "web", ImagePullSecrets: []string{"regcred", "mirror"}}}
	if got := registry.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("registry asked %+v, want %+v", got, want)
	}

	registry = &fakeRegistry{}
	pod.Spec.ServiceAccountName, pod.Spec.ImagePullSecrets = "", nil
	if _, _, err := Mutate(context.Background(), pod, Config{Image: testImage, ImageConfig: registry}); err != nil {
		t.Fatal(err)
	}
	if got := registry.requests(); len(got) != 1 || got[0].ServiceAccount != "default" || len(got[0].ImagePullSecrets) != 0 {
		t.Errorf("registry asked %+v, want ServiceAccount default and no pull secrets", got)
	}
}

// Containers with a command never cause a registry lookup.
func TestNoLookupWhenCommandIsKnown(t *testing.T) {
	registry := &fakeRegistry{}
	pod := simplePod(map[string]string{"entrypoint.io/dependency-service": "db"})
	if _, _, err := Mutate(context.Background(), pod, Config{Image: testImage, ImageConfig: registry}); err != nil {
		t.Fatal(err)
	}
	if got := registry.requests(); len(got) != 0 {
		t.Errorf("registry asked %+v, want no lookups", got)
	}
}
