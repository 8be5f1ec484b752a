package inject

import (
	"context"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestSkip(t *testing.T) {
	tests := []struct {
		name   string
		pod    *corev1.Pod
		reason string
	}{
		{
			name:   "no annotations",
			pod:    simplePod(nil),
			reason: ReasonNoAnnotations,
		},
		{
			name:   "only other annotations",
			pod:    simplePod(map[string]string{"prometheus.io/scrape": "true", "entrypoint.io.example/x": "y"}),
			reason: ReasonNoAnnotations,
		},
		{
			name:   "opt-out, other annotations not checked",
			pod:    simplePod(map[string]string{"entrypoint.io/inject": "false", "entrypoint.io/dependency-service": "a,,b"}),
			reason: ReasonOptOut,
		},
		{
			name: "mirror pod",
			pod: simplePod(map[string]string{
				"kubernetes.io/config.mirror":      "2b7d1fe5b1b8a2e6d7a5",
				"entrypoint.io/dependency-service": "mariadb",
			}),
			reason: ReasonMirrorPod,
		},
		{
			name: "windows by spec.os",
			pod: func() *corev1.Pod {
				p := simplePod(map[string]string{"entrypoint.io/dependency-service": "mariadb"})
				p.Spec.OS = &corev1.PodOS{Name: corev1.Windows}
				return p
			}(),
			reason: ReasonWindows,
		},
		{
			name: "windows by nodeSelector",
			pod: func() *corev1.Pod {
				p := simplePod(map[string]string{"entrypoint.io/dependency-service": "mariadb"})
				p.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "windows"}
				return p
			}(),
			reason: ReasonWindows,
		},
		{
			name:   "already injected",
			pod:    injected(t, simplePod(map[string]string{"entrypoint.io/dependency-service": "mariadb"})),
			reason: ReasonAlreadyInjected,
		},
		{
			name: "already injected, annotations changed since",
			pod: func() *corev1.Pod {
				p := injected(t, simplePod(map[string]string{"entrypoint.io/dependency-service": "mariadb"}))
				p.Annotations["entrypoint.io/dependency-service"] = "a,,b"
				return p
			}(),
			reason: ReasonAlreadyInjected,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.pod.DeepCopy()
			got, outcome, err := Mutate(context.Background(), tt.pod, testConfig())
			if err != nil {
				t.Fatalf("Mutate: %v", err)
			}
			if outcome.Result != ResultSkipped || outcome.Reason != tt.reason || outcome.Message == "" {
				t.Errorf("outcome %+v, want skipped %s with a message", outcome, tt.reason)
			}
			if !reflect.DeepEqual(got, before) || !reflect.DeepEqual(tt.pod, before) {
				t.Error("a skipped pod was changed")
			}
			if got == tt.pod {
				t.Error("a skipped pod came back as the same object, not a copy")
			}
		})
	}
}

// A status annotation on a pod that lacks what it names does not count: the pod is
// injected. (Its goldens: stale-status.)
func TestStatusWithoutInitContainerIsNotInjected(t *testing.T) {
	for name, status := range map[string]string{
		"not JSON":      "yes",
		"other version": `{"version":2,"containers":["app"],"initContainer":"kubernetes-entrypoint-install"}`,
		"copied":        `{"version":1,"containers":["app"],"initContainer":"kubernetes-entrypoint-install"}`,
	} {
		t.Run(name, func(t *testing.T) {
			pod := simplePod(map[string]string{"entrypoint.io/dependency-service": "mariadb", "entrypoint.io/status": status})
			got, outcome, err := Mutate(context.Background(), pod, testConfig())
			if err != nil || outcome.Result != ResultInjected {
				t.Fatalf("outcome %+v, err %v; want injected", outcome, err)
			}
			want := `{"version":1,"mode":"init-container","containers":["app"],"initContainer":"kubernetes-entrypoint-install"}`
			if got.Annotations[AnnotationStatus] != want {
				t.Errorf("status = %s, want %s", got.Annotations[AnnotationStatus], want)
			}
		})
	}
}

func injected(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	out, _, err := Mutate(context.Background(), pod, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	return out
}
