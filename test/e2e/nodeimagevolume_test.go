//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/localcluster"
)

// The node mounts an image as a volume (KEP-4639, volumes[].image; containerd 2.1 or
// later): a data-only image imported into the node's containerd, mounted whole and by
// subPath into a pod that no annotation makes the webhook touch, and read from both.
func TestNodeMountsImageVolume(t *testing.T) {
	defer noPanic(t)
	ns := bareNamespace(t, "e2e-image-volume")
	ctx := context.Background()
	const greeting, note = "greeting from an image volume", "note from a subPath of it"

	ref := "localhost/ke-e2e-data:v1"
	img, _, err := cluster.BuildImage(ctx, localcluster.Image{
		Ref:          ref,
		NoEntrypoint: true,
		Files: map[string][]byte{
			"/greeting.txt": []byte(greeting + "\n"),
			"/sub/note.txt": []byte(note + "\n"),
		},
	})
	must(t, err)
	must(t, cluster.ImportV1Image(ref, img))

	whole := container("whole", "cat", "/data/greeting.txt")
	whole.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: true}}
	sub := container("sub", "cat", "/sub/note.txt")
	sub.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/sub", SubPath: "sub", ReadOnly: true}}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "image-volume"},
		Spec: corev1.PodSpec{
			ServiceAccountName:            "app",
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers:                    []corev1.Container{whole, sub},
			Volumes: []corev1.Volume{{
				Name:         "data",
				VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: ref, PullPolicy: corev1.PullNever}},
			}},
		},
	}
	_, err = cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	must(t, err)

	for c, want := range map[string]string{"whole": "/data/greeting.txt:\n" + greeting, "sub": "/sub/note.txt:\n" + note} {
		eventually(t, "the output of "+c, time.Minute, func(ctx context.Context) (bool, error) {
			return strings.Contains(podLogs(ctx, ns, pod.Name, c), want), nil
		})
	}
}
