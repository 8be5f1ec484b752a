//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

const testapp = "/usr/local/bin/testapp"

// namespace creates a namespace for one test, with a ServiceAccount "app" bound to the
// chart's resolver ClusterRole in it; the namespace is deleted when the test ends.
func namespace(t testing.TB, name string) string {
	t.Helper()
	bareNamespace(t, name)
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "app-entrypoint-resolver"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: resolverClusterRole},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "app", Namespace: name}},
	}
	if _, err := cs.RbacV1().RoleBindings(name).Create(context.Background(), rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// bareNamespace is namespace without the RoleBinding: its ServiceAccount "app" may
// do nothing at all.
func bareNamespace(t testing.TB, name string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpNamespace(t, name)
		}
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	if _, err := cs.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// dumpNamespace logs the pods, their logs and the events of a namespace.
func dumpNamespace(t testing.TB, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, _ := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if pods != nil {
		for _, p := range pods.Items {
			t.Logf("pod %s: %s %+v %+v", p.Name, p.Status.Phase, p.Status.InitContainerStatuses, p.Status.ContainerStatuses)
			for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
				t.Logf("logs of %s/%s:\n%s", p.Name, c.Name, podLogs(ctx, ns, p.Name, c.Name))
			}
		}
	}
	events, _ := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if events != nil {
		sort.Slice(events.Items, func(i, j int) bool { return events.Items[i].LastTimestamp.Before(&events.Items[j].LastTimestamp) })
		for _, e := range events.Items {
			t.Logf("event %s %s/%s %s: %s", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
}

func podLogs(ctx context.Context, ns, pod, container string) string {
	b, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(b)
}

// restricted is a container security context that Pod Security "restricted" admits.
func restricted() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To[int64](65532),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// container runs testapp with args.
func container(name string, args ...string) corev1.Container {
	return corev1.Container{
		Name:            name,
		Image:           appImage,
		ImagePullPolicy: corev1.PullNever,
		Command:         []string{testapp},
		Args:            args,
		SecurityContext: restricted(),
	}
}

// withAPIServer lets c reach the API server from a host-network pod.
func withAPIServer(c corev1.Container) corev1.Container {
	for k, v := range apiServerEnv() {
		c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: v})
	}
	sort.Slice(c.Env, func(i, j int) bool { return c.Env[i].Name < c.Env[j].Name })
	return c
}

// appDeployment is a one-replica Deployment on the host network (so that the resolver
// reaches the API server on loopback) as ServiceAccount "app".
func appDeployment(name string, annotations map[string]string, containers ...corev1.Container) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	for i := range containers {
		containers[i] = withAPIServer(containers[i])
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{
					ServiceAccountName:            "app",
					HostNetwork:                   true,
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers:                    containers,
				},
			},
		},
	}
}

// databaseDeployment runs testapp sleep on the pod network, Ready by an exec probe
// (the kubelet's HTTP and TCP probes to pod IPs cannot work here), behind Service name.
func database(name string) (*appsv1.Deployment, *corev1.Service) {
	labels := map[string]string{"app": name}
	c := container("db", "sleep")
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{testapp, "exists", testapp}}},
		PeriodSeconds: 1,
	}
	c.Ports = []corev1.ContainerPort{{Name: "db", ContainerPort: 3306}}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers:                    []corev1.Container{c},
				},
			},
		},
	}
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "db", Port: 3306}},
		},
	}
	return d, s
}

// migrationJob runs testapp for the given seconds and succeeds.
func migrationJob(name string, seconds string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{
					RestartPolicy:                 corev1.RestartPolicyNever,
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers:                    []corev1.Container{container("migrate", "run", seconds)},
				},
			},
		},
	}
}

// eventually polls cond every 100 ms until it returns true, an error, or timeout.
func eventually(t *testing.T, what string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		ok, err := cond(ctx)
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not after %s", what, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// onlyPod is the one pod with label app=name.
func onlyPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return nil, err
	}
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	if len(live) != 1 {
		return nil, nil
	}
	return &live[0], nil
}

func containerRunning(p *corev1.Pod, name string) bool {
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == name && s.State.Running != nil {
			return true
		}
	}
	return false
}

// lineIndex is the index of the first line of logs containing s, or -1.
func lineIndex(logs, s string) int {
	for i, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, s) {
			return i
		}
	}
	return -1
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var _ = fmt.Sprintf

// appPrinted tells whether testapp's own "print" line (the text, then its pid and
// clock) is in logs: the resolver's "starting application" line holds the text too,
// and reaches the log first.
func appPrinted(logs, text string) bool { return strings.Contains(logs, text+" (pid ") }

// injectedProblem says how p differs from a pod the suite's webhook injected in
// injectionMode, "" if it does not: the install init container first, or the
// project's image as a volume mounted by subPath in each wrapped container and no
// install init container.
func injectedProblem(p *corev1.Pod) string {
	hasInit := len(p.Spec.InitContainers) > 0 && p.Spec.InitContainers[0].Name == inject.InitContainerName
	if injectionMode != inject.ModeImageVolume {
		if !hasInit {
			return fmt.Sprintf("the first init container is not %s: %+v", inject.InitContainerName, p.Spec.InitContainers)
		}
		return ""
	}
	if hasInit {
		return fmt.Sprintf("image-volume mode, but the pod has the init container %s", inject.InitContainerName)
	}
	for _, v := range p.Spec.Volumes {
		if v.Name == inject.VolumeName {
			if v.Image == nil || v.Image.Reference != resolverImage {
				return fmt.Sprintf("volume %s is not the image %s: %+v", inject.VolumeName, resolverImage, v.VolumeSource)
			}
			return ""
		}
	}
	return fmt.Sprintf("no volume %s in image-volume mode: %+v", inject.VolumeName, p.Spec.Volumes)
}
