package inject

import (
	corev1 "k8s.io/api/core/v1"
)

// annotationMirror marks a mirror pod: the API server's copy of a static pod, which
// the kubelet runs from a file and which no mutation can change.
const annotationMirror = "kubernetes.io/config.mirror"

// labelOS is the well-known node label a nodeSelector uses to pick Windows nodes.
const labelOS = "kubernetes.io/os"

// skipOutcome tells whether pod is to be left alone, and why. ours are the pod's
// entrypoint.io/ annotations (see ourAnnotations).
func skipOutcome(pod *corev1.Pod, ours map[string]string) (Outcome, bool) {
	skipped := func(reason, message string) (Outcome, bool) {
		return Outcome{Result: ResultSkipped, Reason: reason, Message: message}, true
	}
	switch {
	case len(ours) == 0:
		return skipped(ReasonNoAnnotations, "the pod has no "+AnnotationPrefix+" annotations")
	case hasKey(pod.Annotations, annotationMirror):
		return skipped(ReasonMirrorPod, "mirror pods (static pods) cannot be changed")
	case ours[keyInject] == "false":
		return skipped(ReasonOptOut, "the pod opts out with "+AnnotationInject+": \"false\"")
	case isWindows(pod):
		return skipped(ReasonWindows, "the resolver runs on Linux only, and this pod is for Windows nodes")
	case wasInjected(pod):
		return skipped(ReasonAlreadyInjected, "the pod's "+AnnotationStatus+" annotation says it was injected already")
	}
	return Outcome{}, false
}

func hasKey(m map[string]string, key string) bool {
	_, ok := m[key]
	return ok
}

// isWindows tells whether pod can only run on Windows nodes.
func isWindows(pod *corev1.Pod) bool {
	if pod.Spec.OS != nil && pod.Spec.OS.Name == corev1.Windows {
		return true
	}
	return pod.Spec.NodeSelector[labelOS] == string(corev1.Windows)
}
