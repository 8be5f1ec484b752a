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
	Version       int      `json:"version"`
	Containers    []string `json:"containers"`
	InitContainer string   `json:"initContainer"`
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
// and what it names is still there. A status annotation a user copied onto a pod
// that lacks the init container or volume does not count; Mutate overwrites it.
func wasInjected(pod *corev1.Pod) bool {
	raw, ok := pod.Annotations[AnnotationStatus]
	if !ok {
		return false
	}
	var s injectionStatus
	if err := json.Unmarshal([]byte(raw), &s); err != nil || s.Version != statusVersion || s.InitContainer == "" {
		return false
	}
	hasInit := false
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == s.InitContainer {
			hasInit = true
			break
		}
	}
	return hasInit && hasVolume(pod, VolumeName)
}

func hasVolume(pod *corev1.Pod, name string) bool {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == name {
			return true
		}
	}
	return false
}
