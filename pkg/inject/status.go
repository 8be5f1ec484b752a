package inject

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
)

// statusVersion is the version of the status annotation's format.
const statusVersion = 1

// injectionStatus is the value of the entrypoint.io/status annotation. Fields are in
// the order they are written, so the annotation is the same for the same pod.
type injectionStatus struct {
	Version int `json:"version"`
	// Mode is the injection mode, ModeAdopted or ModeGateOnly; absent on pods
	// injected before there were two, which were all ModeInitContainer.
	Mode InjectionMode `json:"mode,omitempty"`
	// Containers are the wrapped containers (the adopted init container in
	// ModeAdopted); absent in ModeGateOnly, where none is.
	Containers []string `json:"containers,omitempty"`
	// InitContainer is the install init container's name, in ModeInitContainer
	// only.
	InitContainer string `json:"initContainer,omitempty"`
	// Gated are the variables gate mode kept out of the containers, in the
	// contract's order; absent when the pod is not gated, so that pods injected
	// before gate mode existed read the same.
	Gated []envValue `json:"gated,omitempty"`
}

// envValue is one variable of the environment contract.
type envValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (s injectionStatus) encode() string {
	b, err := json.Marshal(s)
	if err != nil { // a struct of strings and ints always encodes
		panic("inject: encoding the status annotation: " + err.Error())
	}
	return string(b)
}

// wasInjected tells whether pod was mutated already: its status annotation says so
// and what it names is still there, whatever the mode it was injected in (which
// may not be the mode the webhook or the pod asks for now): the volume
// VolumeName, of type image in ModeImageVolume, and in ModeInitContainer (or no
// mode, as the webhook wrote before image volumes) the init container; in
// ModeAdopted the adopted init container; in ModeGateOnly the scheduling gate.
// A status annotation a user copied onto a pod that lacks them does not count;
// Mutate overwrites it.
func wasInjected(pod *corev1.Pod) bool {
	raw, ok := pod.Annotations[AnnotationStatus]
	if !ok {
		return false
	}
	var s injectionStatus
	if err := json.Unmarshal([]byte(raw), &s); err != nil || s.Version != statusVersion {
		return false
	}
	vol := volumeNamed(pod, VolumeName)
	switch s.Mode {
	case ModeImageVolume:
		return vol != nil && vol.Image != nil
	case ModeInitContainer, "":
		return s.InitContainer != "" && hasInitContainer(pod, s.InitContainer) && vol != nil
	case ModeAdopted:
		// Nothing was added but the gate, which the controller removes later.
		return len(s.Containers) > 0 && hasInitContainer(pod, s.Containers[0])
	case ModeGateOnly:
		// The gate is all that was added: a copy of the pod made after the
		// controller removed it (a restore from a backup, say) is gated again,
		// since nothing in it would wait otherwise.
		return len(s.Gated) > 0 && hasSchedulingGate(pod)
	}
	return false
}

func hasInitContainer(pod *corev1.Pod, name string) bool {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return true
		}
	}
	return false
}

// volumeNamed is pod's volume called name, or nil.
func volumeNamed(pod *corev1.Pod, name string) *corev1.Volume {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == name {
			return &pod.Spec.Volumes[i]
		}
	}
	return nil
}
