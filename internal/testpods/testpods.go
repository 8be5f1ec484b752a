// Package testpods builds the hostile pods the controller's trust tests create:
// pods that claim to be injected without the webhook ever seeing them.
package testpods

import (
	"encoding/json"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// Forged is a gated pod with the managed label and a status annotation in the
// webhook's format (version 1, the wrapped container "app", the gated
// dependency variables, in name order), meant to be created straight through
// the API: nothing the webhook checks was checked. Anyone who may create pods
// can write it.
func Forged(ns, name string, gatedEnv map[string]string) *corev1.Pod {
	type envValue struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	status := struct {
		Version    int        `json:"version"`
		Containers []string   `json:"containers"`
		Gated      []envValue `json:"gated"`
	}{Version: 1, Containers: []string{"app"}}
	names := make([]string, 0, len(gatedEnv))
	for k := range gatedEnv {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		status.Gated = append(status.Gated, envValue{k, gatedEnv[k]})
	}
	raw, err := json.Marshal(status)
	if err != nil {
		panic("testpods: encoding a status of strings: " + err.Error())
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels:      map[string]string{inject.LabelManaged: "true"},
			Annotations: map[string]string{inject.AnnotationStatus: string(raw)}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}},
			SchedulingGates: []corev1.PodSchedulingGate{{Name: inject.SchedulingGate}}},
	}
}
