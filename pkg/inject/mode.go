package inject

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// InjectionMode is how the resolver binary reaches the wrapped containers.
type InjectionMode string

// The injection modes. Both wrap the same containers the same way: the command
// is <MountPath>/kubernetes-entrypoint in either, only where the file comes from
// differs.
const (
	// ModeInitContainer adds an emptyDir and the init container
	// InitContainerName, which copies the resolver from Config.Image into it.
	// It works on every cluster; each pod costs one more container start and a
	// copy of the binary.
	ModeInitContainer InjectionMode = "init-container"
	// ModeImageVolume adds a volume of type image (KEP-4639) of Config.Image,
	// mounted read-only with subPath ImageVolumeSubPath, and no init container.
	// It needs image volumes with subPath on the pod's node (Kubernetes 1.35 or
	// later, where they are on by default) and a runtime that mounts them
	// executable and honours subPath (containerd 2.2 or later; containerd 2.1
	// ignores subPath, CRI-O mounts them noexec).
	ModeImageVolume InjectionMode = "image-volume"
)

// InjectionModes are the modes Config.InjectionMode and the annotation
// AnnotationInjectionMode accept, in the order messages list them.
func InjectionModes() []InjectionMode { return []InjectionMode{ModeInitContainer, ModeImageVolume} }

// ImageVolumeSubPath is the directory of the project's image that image-volume
// mode mounts at Config.MountPath: the one holding kubernetes-entrypoint (see
// internal/release), so that the binary is at the same path as in init-container
// mode.
const ImageVolumeSubPath = "usr/local/bin"

// AnnotationInjectionMode overrides Config.InjectionMode for one pod.
const AnnotationInjectionMode = AnnotationPrefix + keyInjectionMode

// checkInjectionMode accepts the modes of InjectionModes for the annotation.
func (pl *planner) checkInjectionMode() {
	v, ok := pl.ours[keyInjectionMode]
	if !ok || isInjectionMode(v) {
		return
	}
	pl.invalid(annotationPath(keyInjectionMode), (&spec.ValueError{
		Name:     annotationName(keyInjectionMode),
		Value:    v,
		Problem:  "is not an injection mode",
		Expected: quotedModes() + `: how the resolver reaches the containers (the webhook's --injection-mode decides when the annotation is absent)`,
	}).Error())
}

func isInjectionMode(v string) bool {
	for _, m := range InjectionModes() {
		if string(m) == v {
			return true
		}
	}
	return false
}

// quotedModes is `"init-container" or "image-volume"`.
func quotedModes() string {
	var q []string
	for _, m := range InjectionModes() {
		q = append(q, `"`+string(m)+`"`)
	}
	return strings.Join(q, " or ")
}

// injectionMode is the mode for the pod: its annotation when valid (checkInjectionMode
// reports an invalid one), else the config's. warnings are for the pod's author.
func (pl *planner) injectionMode() (InjectionMode, []string) {
	v, ok := pl.ours[keyInjectionMode]
	if !ok || !isInjectionMode(v) {
		return pl.cfg.InjectionMode, nil
	}
	mode := InjectionMode(v)
	// A pod may ask for image volumes where the webhook believes they do not
	// work: its author may know better (a node selector for the nodes that
	// can), and the webhook's view of the nodes may be stale or partial. It is
	// injected as asked, with a warning; if its node cannot mount the volume,
	// the pod does not start, and the kubelet says why in its events.
	if mode == ModeImageVolume && pl.cfg.InjectionMode != ModeImageVolume && pl.cfg.ImageVolumeCaveat != "" {
		return mode, []string{annotationName(keyInjectionMode) + ` asks for image-volume, but ` + pl.cfg.ImageVolumeCaveat +
			`; the pod does not start on a node that cannot mount it`}
	}
	return mode, nil
}

// validateInjectionMode is Config.Validate's check of InjectionMode.
func validateInjectionMode(m InjectionMode) field.ErrorList {
	if isInjectionMode(string(m)) {
		return nil
	}
	return field.ErrorList{field.NotSupported(field.NewPath(FieldInjectionMode), m, InjectionModes())}
}

// imageVolume is the volume of image-volume mode: the project's image itself.
func imageVolume(cfg Config) corev1.Volume {
	return corev1.Volume{
		Name: VolumeName,
		VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{
			Reference:  cfg.Image,
			PullPolicy: cfg.ImagePullPolicy,
		}},
	}
}
