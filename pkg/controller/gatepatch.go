package controller

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// GateRemovalPatch is the JSON patch with which the controller releases a pod
// it does not narrow to nodes, as read (see removeGate). Exported so that make
// bench-gate can measure the API server's own rate for exactly these writes.
func GateRemovalPatch(pod *corev1.Pod) ([]byte, error) {
	return json.Marshal(gateRemovalOps(pod, nil))
}

// gateRemovalOps removes the scheduling gate, and only it; the test operations
// make the patch fail if the pod was replaced or its gates changed since it was
// read. With narrow, they also set the pod's required node affinity to it and
// make the patch fail if anything of the pod changed since it was read (its
// resourceVersion).
func gateRemovalOps(pod *corev1.Pod, narrow *corev1.NodeSelector) []map[string]any {
	var keep []corev1.PodSchedulingGate
	for _, g := range pod.Spec.SchedulingGates {
		if g.Name != inject.SchedulingGate {
			keep = append(keep, g)
		}
	}
	ops := []map[string]any{
		{"op": "test", "path": "/metadata/uid", "value": pod.UID},
		{"op": "test", "path": "/spec/schedulingGates", "value": pod.Spec.SchedulingGates},
	}
	if narrow != nil {
		ops = append(ops, map[string]any{"op": "test", "path": "/metadata/resourceVersion", "value": pod.ResourceVersion})
		ops = append(ops, narrowOps(pod, narrow)...)
	}
	if len(keep) == 0 {
		return append(ops, map[string]any{"op": "remove", "path": "/spec/schedulingGates"})
	}
	return append(ops, map[string]any{"op": "replace", "path": "/spec/schedulingGates", "value": keep})
}
