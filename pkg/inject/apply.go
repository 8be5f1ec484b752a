package inject

import (
	"maps"
	"path"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/launch"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// apply changes pod, a copy of the pod the plan was made for, as planned.
func (p *plan) apply(pod *corev1.Pod, cfg Config) {
	if p.gateOnly {
		markManaged(pod, injectionStatus{Version: statusVersion, Mode: ModeGateOnly}, p.gated)
		return
	}
	binary := path.Join(cfg.MountPath, launch.BinaryName)
	mount := corev1.VolumeMount{Name: VolumeName, MountPath: cfg.MountPath, ReadOnly: true}
	status := injectionStatus{Version: statusVersion, Mode: p.mode, Containers: p.targetNames()}
	if p.mode == ModeImageVolume {
		// The image's directory of the binary, so that its path is the same as
		// in init-container mode; image volumes are read-only anyway.
		mount.SubPath = ImageVolumeSubPath
	}
	// Before the init container goes in: the targets' indexes are the pod's.
	for _, t := range p.targets {
		wrap(containerOf(pod, t), t.argv, binary, mount, p.env)
	}
	switch p.mode {
	case ModeImageVolume:
		pod.Spec.Volumes = append(pod.Spec.Volumes, imageVolume(cfg))
	default:
		pod.Spec.Volumes = append(pod.Spec.Volumes, resolverVolume())
		pod.Spec.InitContainers = slices.Insert(pod.Spec.InitContainers, p.initIndex, installContainer(cfg))
		status.InitContainer = InitContainerName
	}

	markManaged(pod, status, p.gated)
}

// markManaged gives pod what the dependency controller finds it by and reads:
// the status annotation, with the variables gated kept in it, the scheduling
// gate when there are any, and the label LabelManaged.
func markManaged(pod *corev1.Pod, status injectionStatus, gated []corev1.EnvVar) {
	for _, e := range gated {
		status.Gated = append(status.Gated, envValue{Name: e.Name, Value: e.Value})
	}
	if len(gated) > 0 {
		addSchedulingGate(pod)
	}

	annotations := make(map[string]string, len(pod.Annotations)+1)
	maps.Copy(annotations, pod.Annotations)
	annotations[AnnotationStatus] = status.encode()
	pod.Annotations = annotations

	labels := make(map[string]string, len(pod.Labels)+1)
	maps.Copy(labels, pod.Labels)
	labels[LabelManaged] = "true"
	pod.Labels = labels
}

// wrap makes c run the resolver, which execs argv once the dependencies in env are
// ready; mount brings the resolver's volume. c's own env comes first and wins: the
// pod variables are added only where c does not set them.
func wrap(c *corev1.Container, argv []string, binary string, mount corev1.VolumeMount, env []corev1.EnvVar) {
	c.Command = []string{binary}
	c.Args = append(append(make([]string, 0, len(argv)+1), "--"), argv...)
	c.VolumeMounts = append(c.VolumeMounts, mount)

	added := make([]corev1.EnvVar, 0, len(c.Env)+len(env)+4)
	added = append(added, c.Env...)
	for _, v := range podEnv() {
		if !setsEnv(c, v.name) {
			added = append(added, corev1.EnvVar{
				Name:      v.name,
				ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: v.fieldPath}},
			})
		}
	}
	c.Env = append(added, env...) //nolint:gocritic // added was made with room for env: one allocation
}

// podEnv are the downward API variables the resolver uses to find its own pod and
// node, and POD_IP, the IP config templates see when INTERFACE_NAME is not set
// (also there for the application).
func podEnv() [4]struct{ name, fieldPath string } {
	return [4]struct{ name, fieldPath string }{
		{spec.EnvPodName, "metadata.name"},
		{spec.EnvNamespace, "metadata.namespace"},
		{spec.EnvNodeName, "spec.nodeName"},
		{spec.EnvPodIP, "status.podIP"},
	}
}

func setsEnv(c *corev1.Container, name string) bool {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return true
		}
	}
	return false
}

// resolverVolume holds the resolver binary, copied in by the install init
// container (ModeInitContainer).
func resolverVolume() corev1.Volume {
	size := resource.NewQuantity(volumeSizeLimit, resource.BinarySI)
	return corev1.Volume{
		Name:         VolumeName,
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: size}},
	}
}

// installContainer copies the resolver from the project's image into the volume. It
// needs no shell, and meets Pod Security "restricted".
func installContainer(cfg Config) corev1.Container {
	return corev1.Container{
		Name:                     InitContainerName,
		Image:                    cfg.Image,
		ImagePullPolicy:          cfg.ImagePullPolicy,
		Command:                  []string{launch.BinaryName, "install", cfg.MountPath},
		Resources:                *cfg.Resources.DeepCopy(),
		VolumeMounts:             []corev1.VolumeMount{{Name: VolumeName, MountPath: cfg.MountPath}},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr(true),
			RunAsUser:                ptr(cfg.RunAsUser),
			AllowPrivilegeEscalation: ptr(false),
			ReadOnlyRootFilesystem:   ptr(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}

func ptr[T any](v T) *T { return &v }
