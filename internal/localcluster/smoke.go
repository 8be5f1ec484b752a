package localcluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

const (
	helloImage = "localhost/ke-hello:v1"
	// dataImage holds only files: the smoke test mounts it as an image volume.
	dataImage = "localhost/ke-data:v1"
)

// The files of dataImage, by their path in the image.
var dataFiles = map[string]string{
	"/greeting.txt": "hello from an image volume",
	"/sub/note.txt": "a subPath of an image volume",
}

// Smoke proves the node end to end: a locally built image is imported, two pods run it
// (one on the pod network, one on the host network calling the API server with its
// service-account token), a third mounts another imported image as an image volume
// (read-only, whole and by subPath) and reads files from it; their logs are read through
// the API server and the kubelet, and all are deleted again.
func (c *Cluster) Smoke(ctx context.Context) error {
	if err := c.BuildAndImport(ctx, helloImage, []string{"./hack/cluster/hello"}); err != nil {
		return err
	}
	data := Image{Ref: dataImage, NoEntrypoint: true, Files: map[string][]byte{}}
	for f, content := range dataFiles {
		data.Files[f] = []byte(content + "\n")
	}
	if err := c.BuildAndImportImage(ctx, data); err != nil {
		return err
	}
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	const ns = "default"

	// The controller manager creates the default service account shortly after start.
	for {
		if _, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		} else if ctx.Err() != nil {
			return fmt.Errorf("no default service account: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	pods := []struct {
		pod  *corev1.Pod
		want []string
	}{
		{helloPod("hello", false), []string{"addresses: "}},
		{helloPod("hello-api", true), []string{"the API server knows me as system:serviceaccount:default:default"}},
		{imageVolumePod("hello-image-volume"), []string{
			"file /data/greeting.txt: " + dataFiles["/greeting.txt"],
			"file /sub/note.txt: " + dataFiles["/sub/note.txt"],
			"mount /data: read-only", "mount /sub: read-only",
		}},
	}
	for _, p := range pods {
		if err := deletePod(ctx, cs, ns, p.pod.Name); err != nil {
			return err
		}
	}
	for _, p := range pods {
		created := time.Now()
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, p.pod, metav1.CreateOptions{}); err != nil {
			return err
		}
		running, err := waitPod(ctx, cs, ns, p.pod.Name, func(pod *corev1.Pod) bool { return pod.Status.Phase == corev1.PodRunning })
		if err != nil {
			return err
		}
		c.Logf("pod %s Running %s after create (IP %s)", p.pod.Name, time.Since(created).Round(time.Millisecond), running.Status.PodIP)
		var logs string
		for {
			b, err := cs.CoreV1().Pods(ns).GetLogs(p.pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
			logs = string(b)
			if err == nil && containsAll(logs, p.want) {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("logs of %s lack one of %q: %v\n%s", p.pod.Name, p.want, err, logs) //nolint:errorlint // err is nil when the logs were read: %v says <nil>
			}
			time.Sleep(200 * time.Millisecond)
		}
		c.Logf("logs of %s (read %s after create):\n    %s", p.pod.Name, time.Since(created).Round(time.Millisecond),
			strings.ReplaceAll(strings.TrimSpace(logs), "\n", "\n    "))
		if !p.pod.Spec.HostNetwork && !strings.Contains(logs, strings.TrimSuffix(podCIDR, "0/24")) {
			return fmt.Errorf("pod %s has no address in %s", p.pod.Name, podCIDR)
		}
	}
	for _, p := range pods {
		began := time.Now()
		if err := deletePod(ctx, cs, ns, p.pod.Name); err != nil {
			return err
		}
		c.Logf("pod %s deleted and gone in %s", p.pod.Name, time.Since(began).Round(time.Millisecond))
	}
	c.Logf("smoke test passed")
	return nil
}

func helloPod(name string, hostNetwork bool) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "ke-hello"}},
		Spec: corev1.PodSpec{
			HostNetwork:                   hostNetwork,
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			Containers: []corev1.Container{{
				Name:            "hello",
				Image:           helloImage,
				ImagePullPolicy: corev1.PullNever,
				SecurityContext: &corev1.SecurityContext{
					RunAsNonRoot:             ptr.To(true),
					RunAsUser:                ptr.To[int64](65532),
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
			}},
		},
	}
	if hostNetwork {
		// Nothing routes Service IPs here: pods that call the API server use the host
		// network and the loopback address.
		pod.Spec.Containers[0].Env = []corev1.EnvVar{
			{Name: "KUBERNETES_SERVICE_HOST", Value: "127.0.0.1"},
			{Name: "KUBERNETES_SERVICE_PORT", Value: strconv.Itoa(apiserverPort)},
			{Name: "HELLO_WHOAMI", Value: "1"},
		}
	}
	return pod
}

// imageVolumePod runs hello with dataImage mounted as an image volume (KEP-4639): the
// whole image read-only at /data, its directory sub by subPath at /sub. hello
// prints a file of each and the options of both mounts.
func imageVolumePod(name string) *corev1.Pod {
	pod := helloPod(name, false)
	pod.Spec.Volumes = []corev1.Volume{{
		Name:         "data",
		VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: dataImage, PullPolicy: corev1.PullNever}},
	}}
	ctr := &pod.Spec.Containers[0]
	ctr.VolumeMounts = []corev1.VolumeMount{
		{Name: "data", MountPath: "/data", ReadOnly: true},
		{Name: "data", MountPath: "/sub", SubPath: "sub", ReadOnly: true},
	}
	ctr.Env = []corev1.EnvVar{
		{Name: "HELLO_FILES", Value: "/data/greeting.txt /sub/note.txt"},
		{Name: "HELLO_MOUNTS", Value: "/data /sub"},
	}
	return pod
}

// containsAll tells whether s contains every one of subs.
func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func waitPod(ctx context.Context, cs kubernetes.Interface, ns, name string, done func(*corev1.Pod) bool) (*corev1.Pod, error) {
	var last *corev1.Pod
	for {
		pod, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = pod
			if done(pod) {
				return pod, nil
			}
			if pod.Status.Phase == corev1.PodFailed {
				return nil, fmt.Errorf("pod %s failed: %s", name, pod.Status.Message)
			}
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return nil, fmt.Errorf("pod %s: %w; phase %s, conditions %+v, containers %+v", name, ctx.Err(), last.Status.Phase, last.Status.Conditions, last.Status.ContainerStatuses)
			}
			return nil, fmt.Errorf("pod %s: %w (last error %v)", name, ctx.Err(), err) //nolint:errorlint // the last error is nil when the pod was read: %v says <nil>
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// deletePod deletes the pod and waits until it is gone.
func deletePod(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	err := cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for {
		_, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pod %s not gone: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
