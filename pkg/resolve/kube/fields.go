package kube

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Small readers of unstructured objects; a missing or mistyped field reads as zero.

func unstructuredString(obj map[string]any, path ...string) (string, bool, error) {
	return unstructured.NestedString(obj, path...)
}

func nestedString(obj map[string]any, path ...string) string {
	s, _, _ := unstructured.NestedString(obj, path...)
	return s
}

func nestedInt(obj map[string]any, path ...string) int64 {
	v, found, err := unstructured.NestedFieldNoCopy(obj, path...)
	if !found || err != nil {
		return 0
	}
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case int:
		return int64(n)
	}
	return 0
}

func nestedSlice(obj map[string]any, path ...string) []any {
	v, found, err := unstructured.NestedFieldNoCopy(obj, path...)
	if !found || err != nil {
		return nil
	}
	s, _ := v.([]any)
	return s
}

// condition returns the status ("True", "False", "Unknown") of the condition of
// the given type in status.conditions, and its reason and message; "" when absent.
func condition(obj map[string]any, typ string) (status, reason, message string) {
	for _, c := range nestedSlice(obj, "status", "conditions") {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != typ {
			continue
		}
		status, _ = m["status"].(string)
		reason, _ = m["reason"].(string)
		message, _ = m["message"].(string)
		return status, reason, message
	}
	return "", "", ""
}

// podReady: not terminating, running, and its Ready condition is True. Evicted and
// completed pods are in phase Failed/Succeeded and so never count.
func podReady(pod *unstructured.Unstructured) bool {
	if pod.GetDeletionTimestamp() != nil {
		return false
	}
	if nestedString(pod.Object, "status", "phase") != "Running" {
		return false
	}
	status, _, _ := condition(pod.Object, "Ready")
	return status == "True"
}

// nestedIntOK is nestedInt, and whether the field is there at all.
func nestedIntOK(obj map[string]any, path ...string) (int64, bool) {
	if _, found, err := unstructured.NestedFieldNoCopy(obj, path...); !found || err != nil {
		return 0, false
	}
	return nestedInt(obj, path...), true
}

func nestedMap(obj map[string]any, path ...string) (map[string]any, bool) {
	v, found, err := unstructured.NestedFieldNoCopy(obj, path...)
	if !found || err != nil {
		return nil, false
	}
	m, ok := v.(map[string]any)
	return m, ok
}
