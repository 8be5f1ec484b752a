package inject

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// withMode is cfg in mode m.
func withMode(cfg Config, m InjectionMode) Config {
	cfg.InjectionMode = m
	return cfg
}

// Every golden case, injected in each mode: what the wrapped containers run
// (command, args, env), the gate, the labels and the wrapped containers' names
// are the same; only the volume, its mounts' subPath and the init container
// differ, as each mode says. A gate-only pod is the same pod in both.
func TestModesWrapAlike(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs (err %v)", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			pod := readPod(t, in)
			delete(pod.Annotations, AnnotationInjectionMode) // the config decides here
			cfg := goldenConfig(t, name)
			initPod, _, err := Mutate(context.Background(), pod, withMode(cfg, ModeInitContainer))
			if err != nil {
				t.Fatal(err)
			}
			volPod, _, err := Mutate(context.Background(), pod, withMode(cfg, ModeImageVolume))
			if err != nil {
				t.Fatal(err)
			}
			if GateOnly(initPod) || GateOnly(volPod) {
				// Nothing of either mode is added: the two are one pod.
				if !reflect.DeepEqual(initPod, volPod) {
					t.Errorf("a gate-only pod differs by mode:\ninit-container: %v\nimage-volume:   %v", initPod, volPod)
				}
				if volumeNamed(initPod, VolumeName) != nil || hasInitContainer(initPod, InitContainerName) {
					t.Errorf("a gate-only pod got the resolver's volume or init container: %v", initPod.Spec)
				}
				return
			}
			checkMode(t, initPod, ModeInitContainer)
			checkMode(t, volPod, ModeImageVolume)

			// Undo what differs, and the rest must be equal.
			if !removeInstall(initPod) {
				t.Fatal("init-container mode added no install init container")
			}
			for _, p := range []*corev1.Pod{initPod, volPod} {
				for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
					for i := range cs {
						for j := range cs[i].VolumeMounts {
							cs[i].VolumeMounts[j].SubPath = ""
						}
					}
				}
				p.Spec.Volumes = p.Spec.Volumes[:len(p.Spec.Volumes)-1]
				delete(p.Annotations, AnnotationStatus)
			}
			if !reflect.DeepEqual(initPod, volPod) {
				t.Errorf("the modes differ beyond volume, subPath and init container:\ninit-container: %v\nimage-volume:   %v", initPod, volPod)
			}
		})
	}
}

// checkMode checks what mode m adds to an injected pod.
func checkMode(t *testing.T, pod *corev1.Pod, m InjectionMode) {
	t.Helper()
	vol := volumeNamed(pod, VolumeName)
	if vol == nil || &pod.Spec.Volumes[len(pod.Spec.Volumes)-1] != vol {
		t.Fatalf("%s: volume %s is not the last one: %v", m, VolumeName, pod.Spec.Volumes)
	}
	status := pod.Annotations[AnnotationStatus]
	if !strings.Contains(status, `"mode":"`+string(m)+`"`) {
		t.Errorf("%s: status %s does not record the mode", m, status)
	}
	wantSubPath := ""
	switch m {
	case ModeImageVolume:
		if vol.Image == nil || vol.Image.Reference != testImage || vol.Image.PullPolicy != corev1.PullIfNotPresent || vol.EmptyDir != nil {
			t.Errorf("image-volume: volume %+v, want an image volume of %s, IfNotPresent", vol.VolumeSource, testImage)
		}
		if hasInitContainer(pod, InitContainerName) || strings.Contains(status, "initContainer") {
			t.Errorf("image-volume: an install init container (status %s)", status)
		}
		wantSubPath = ImageVolumeSubPath
	case ModeInitContainer:
		if vol.EmptyDir == nil || vol.Image != nil {
			t.Errorf("init-container: volume %+v, want an emptyDir", vol.VolumeSource)
		}
	}
	mounts := 0
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, vm := range c.VolumeMounts {
				if vm.Name != VolumeName || c.Name == InitContainerName {
					continue
				}
				mounts++
				if !vm.ReadOnly || vm.SubPath != wantSubPath || vm.MountPath != DefaultMountPath {
					t.Errorf("%s: container %s mounts %+v, want read-only at %s with subPath %q", m, c.Name, vm, DefaultMountPath, wantSubPath)
				}
				if len(c.Command) != 1 || c.Command[0] != DefaultMountPath+"/kubernetes-entrypoint" {
					t.Errorf("%s: container %s runs %q", m, c.Name, c.Command)
				}
			}
		}
	}
	if mounts == 0 {
		t.Errorf("%s: no wrapped container mounts the volume", m)
	}
}

// removeInstall takes the install init container out of pod and tells whether
// there was one.
func removeInstall(pod *corev1.Pod) bool {
	for i, c := range pod.Spec.InitContainers {
		if c.Name == InitContainerName {
			pod.Spec.InitContainers = append(pod.Spec.InitContainers[:i], pod.Spec.InitContainers[i+1:]...)
			if len(pod.Spec.InitContainers) == 0 {
				pod.Spec.InitContainers = nil
			}
			return true
		}
	}
	return false
}

// A pod injected in either mode is recognised as injected whatever the mode the
// webhook or the pod asks for now; so is a pod injected before the status
// recorded a mode.
func TestAlreadyInjectedInEitherMode(t *testing.T) {
	pod := simplePod(map[string]string{"entrypoint.io/dependency-service": "mariadb"})
	byInit := injected(t, pod)
	byVolume, _, err := Mutate(context.Background(), pod, withMode(testConfig(), ModeImageVolume))
	if err != nil {
		t.Fatal(err)
	}
	old := byInit.DeepCopy()
	old.Annotations[AnnotationStatus] = `{"version":1,"containers":["app"],"initContainer":"kubernetes-entrypoint-install"}`
	askVolume := byInit.DeepCopy()
	askVolume.Annotations[AnnotationInjectionMode] = string(ModeImageVolume)
	askInit := byVolume.DeepCopy()
	askInit.Annotations[AnnotationInjectionMode] = string(ModeInitContainer)

	for name, p := range map[string]*corev1.Pod{
		"init-container": byInit, "image-volume": byVolume, "before modes": old,
		"init-container, annotation image-volume": askVolume, "image-volume, annotation init-container": askInit,
	} {
		for _, m := range InjectionModes() {
			got, outcome, err := Mutate(context.Background(), p, withMode(testConfig(), m))
			if err != nil || outcome.Reason != ReasonAlreadyInjected {
				t.Errorf("%s, webhook in %s: outcome %+v, err %v; want skipped as already injected", name, m, outcome, err)
				continue
			}
			if !reflect.DeepEqual(got, p) {
				t.Errorf("%s, webhook in %s: the skipped pod changed", name, m)
			}
		}
	}
}

// A status annotation that names a mode whose parts the pod lacks does not count.
func TestStatusOfAModeWithoutItsParts(t *testing.T) {
	pod := simplePod(map[string]string{"entrypoint.io/dependency-service": "mariadb"})
	byVolume, _, err := Mutate(context.Background(), pod, withMode(testConfig(), ModeImageVolume))
	if err != nil {
		t.Fatal(err)
	}
	byInit := injected(t, pod)
	emptyDirVolume := byVolume.DeepCopy()
	emptyDirVolume.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	noInit := byInit.DeepCopy()
	noInit.Spec.InitContainers = nil
	unknownMode := byVolume.DeepCopy()
	unknownMode.Annotations[AnnotationStatus] = `{"version":1,"mode":"sidecar","containers":["app"]}`
	for name, p := range map[string]*corev1.Pod{
		"image-volume without an image volume": emptyDirVolume,
		"init-container without it":            noInit,
		"unknown mode":                         unknownMode,
	} {
		if wasInjected(p) {
			t.Errorf("%s: counted as injected", name)
		}
	}
}

// An invalid entrypoint.io/injection-mode denies the pod at the annotation's path,
// in either mode of the webhook.
func TestInjectionModeAnnotationDenied(t *testing.T) {
	for _, m := range InjectionModes() {
		for _, value := range []string{"auto", "ImageVolume", "emptyDir", ""} {
			pod := simplePod(map[string]string{"entrypoint.io/dependency-service": "mariadb", AnnotationInjectionMode: value})
			_, outcome, err := Mutate(context.Background(), pod, withMode(testConfig(), m))
			var denied *DeniedError
			if !errors.As(err, &denied) || outcome.Reason != ReasonInvalidAnnotation {
				t.Fatalf("%s, %q: outcome %+v, err %v; want denied", m, value, outcome, err)
			}
			if len(denied.Problems) != 1 {
				t.Fatalf("%s, %q: problems %v, want one", m, value, denied.Problems)
			}
			p := denied.Problems[0]
			if p.Field != "metadata.annotations[entrypoint.io/injection-mode]" ||
				!strings.Contains(p.Detail, `"init-container" or "image-volume"`) || !strings.Contains(p.Detail, "annotation entrypoint.io/injection-mode") {
				t.Errorf("%s, %q: problem %q at %s", m, value, p.Detail, p.Field)
			}
		}
	}
	// A misspelt key gets a suggestion.
	pod := simplePod(map[string]string{"entrypoint.io/dependency-service": "mariadb", "entrypoint.io/injection_mode": "image-volume"})
	_, _, err := Mutate(context.Background(), pod, testConfig())
	if err == nil || !strings.Contains(err.Error(), "did you mean entrypoint.io/injection-mode?") {
		t.Errorf("misspelt key: %v", err)
	}
}

// A pod asking for image-volume where the caller believes image volumes do not
// work is injected as asked, with a warning naming the reason; nothing is said
// when the webhook's own mode is image-volume (the operator forced it) or when
// there is no reason to doubt.
func TestImageVolumeAskedDespiteCaveat(t *testing.T) {
	const caveat = "node worker-1 runs containerd 1.7.28"
	pod := simplePod(map[string]string{"entrypoint.io/dependency-service": "mariadb", AnnotationInjectionMode: "image-volume"})
	tests := []struct {
		name    string
		cfg     Config
		warning bool
	}{
		{"caveat", Config{ImageVolumeCaveat: caveat}, true},
		{"no caveat", Config{}, false},
		{"webhook forces image-volume", Config{InjectionMode: ModeImageVolume, ImageVolumeCaveat: caveat}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.InjectionMode, cfg.ImageVolumeCaveat = tt.cfg.InjectionMode, tt.cfg.ImageVolumeCaveat
			out, outcome, err := Mutate(context.Background(), pod, cfg)
			if err != nil || outcome.Result != ResultInjected {
				t.Fatalf("outcome %+v, err %v", outcome, err)
			}
			checkMode(t, out, ModeImageVolume)
			if got := len(outcome.Warnings) == 1 && strings.Contains(outcome.Warnings[0], caveat); got != tt.warning {
				t.Errorf("warnings %q, want one naming the caveat: %v", outcome.Warnings, tt.warning)
			}
		})
	}
	// Asking for init-container never warns.
	pod.Annotations[AnnotationInjectionMode] = "init-container"
	_, outcome, err := Mutate(context.Background(), pod, Config{Image: testImage, ImageVolumeCaveat: caveat})
	if err != nil || len(outcome.Warnings) != 0 {
		t.Errorf("init-container asked: outcome %+v, err %v", outcome, err)
	}
}

// In image-volume mode nothing adds an init container, so a pod's own container
// of that name is no clash; the volume's name still is.
func TestImageVolumeNameClashes(t *testing.T) {
	pod := simplePod(map[string]string{"entrypoint.io/dependency-service": "mariadb"})
	pod.Spec.InitContainers = []corev1.Container{{Name: InitContainerName, Image: "x", Command: []string{"/x"}}}
	if _, outcome, err := Mutate(context.Background(), pod, withMode(testConfig(), ModeImageVolume)); err != nil {
		t.Errorf("image-volume, init container named %s: outcome %+v, err %v; want injected", InitContainerName, outcome, err)
	}
	if _, _, err := Mutate(context.Background(), pod, testConfig()); err == nil {
		t.Errorf("init-container, init container named %s: injected; want denied", InitContainerName)
	}
	pod.Spec.InitContainers = nil
	pod.Spec.Volumes = []corev1.Volume{{Name: VolumeName}}
	_, _, err := Mutate(context.Background(), pod, withMode(testConfig(), ModeImageVolume))
	if err == nil || !strings.Contains(err.Error(), "already has a volume named") {
		t.Errorf("image-volume, volume named %s: %v; want denied", VolumeName, err)
	}
}

// testdata/already-injected holds pods the webhook injected, in each mode and
// before modes were recorded: the webhook in either mode leaves each alone.
func TestAlreadyInjectedGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "already-injected", "*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("already-injected cases: %v (err %v)", files, err)
	}
	for _, file := range files {
		pod := readPod(t, file)
		for _, m := range InjectionModes() {
			got, outcome, err := Mutate(context.Background(), pod, withMode(testConfig(), m))
			if err != nil || outcome.Result != ResultSkipped || outcome.Reason != ReasonAlreadyInjected {
				t.Errorf("%s, webhook in %s: outcome %+v, err %v; want skipped as already injected", file, m, outcome, err)
				continue
			}
			if !reflect.DeepEqual(got, pod) {
				t.Errorf("%s, webhook in %s: the pod changed", file, m)
			}
		}
	}
}
