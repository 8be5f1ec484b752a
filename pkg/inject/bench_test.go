package inject

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkMutate: a typical pod, two containers and three dependency annotations.
func BenchmarkMutate(b *testing.B) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "keystone-api-7d9f8b6c5-",
			Namespace:    "openstack",
			Labels:       map[string]string{"application": "keystone", "component": "api"},
			Annotations: map[string]string{
				"entrypoint.io/dependency-service": "mariadb,memcached",
				"entrypoint.io/dependency-job":     "keystone-db-sync,keystone-fernet-setup",
				"entrypoint.io/dependency-pod":     `[{"labels":{"application":"rabbitmq"},"requireSameNode":false}]`,
			},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: "keystone-api",
			Containers: []corev1.Container{
				{
					Name:    "keystone-api",
					Image:   "registry.example/keystone:2025.1",
					Command: []string{"/tmp/keystone-api.sh", "start"},
					Env:     []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}},
					Ports:   []corev1.ContainerPort{{Name: "ks-pub", ContainerPort: 5000}},
					VolumeMounts: []corev1.VolumeMount{
						{Name: "etc-keystone", MountPath: "/etc/keystone"},
					},
				},
				{
					Name:    "keystone-metrics",
					Image:   "registry.example/exporter:1.0",
					Command: []string{"/exporter", "--port=9100"},
				},
			},
			Volumes: []corev1.Volume{{Name: "etc-keystone", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	cfg := Config{Image: testImage}
	ctx := context.Background()
	if _, outcome, err := Mutate(ctx, pod, cfg); err != nil || outcome.Result != ResultInjected {
		b.Fatalf("%+v %v", outcome, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Mutate(ctx, pod, cfg); err != nil {
			b.Fatal(err)
		}
	}
}
