//go:build e2e

package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// A DaemonSet dependency resolves on the node: the app's resolver waits while the
// DaemonSet's pod on this node is not Ready, and starts the app only once that pod is
// Ready (its readiness file appears 4 s after it starts).
func TestDaemonSetDependency(t *testing.T) {
	defer noPanic(t)
	ns := namespace(t, "e2e-daemonset")
	ctx := context.Background()
	const appOutput = "app: the application runs"

	labels := map[string]string{"app": "agent"}
	agent := container("agent", "touch-after", "4", "/shared/ready")
	agent.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{testapp, "exists", "/shared/ready"}}},
		PeriodSeconds: 1,
	}
	agent.VolumeMounts = []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers:                    []corev1.Container{agent},
					Volumes:                       []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
	_, err := cs.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{})
	must(t, err)

	// The app is created right away, so its resolver may already be waiting when the
	// DaemonSet's status first counts the pod: that must not resolve it early.
	app := appDeployment("app", map[string]string{"entrypoint.io/dependency-daemonset": "agent"}, container("app", "print", appOutput))
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, app, metav1.CreateOptions{})
	must(t, err)
	var pod *corev1.Pod
	eventually(t, "the app's container runs the resolver", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := onlyPod(ctx, ns, "app")
		pod = p
		return p != nil && containerRunning(p, "app"), err
	})
	logs := func(ctx context.Context) string { return podLogs(ctx, ns, pod.Name, "app") }
	eventually(t, "the resolver says what it waits for", 30*time.Second, func(ctx context.Context) (bool, error) {
		return strings.Contains(logs(ctx), "waiting for dependencies"), nil
	})

	var appLogs string
	eventually(t, "the app runs", time.Minute, func(ctx context.Context) (bool, error) {
		appLogs = logs(ctx)
		return appPrinted(appLogs, appOutput), nil
	})
	agentPod, err := onlyPod(ctx, ns, "agent")
	must(t, err)
	if agentPod == nil {
		t.Fatalf("not exactly one pod of DaemonSet agent")
	}
	if agentPod.Spec.NodeName != pod.Spec.NodeName {
		t.Fatalf("the DaemonSet's pod runs on %q, the app on %q", agentPod.Spec.NodeName, pod.Spec.NodeName)
	}
	agentLogs := podLogs(ctx, ns, agentPod.Name, "agent")
	t.Logf("app:\n%s\nagent:\n%s", appLogs, agentLogs)
	if !strings.Contains(appLogs, "agent") {
		t.Errorf("the resolver did not report waiting for daemonset agent")
	}
	startedAfter(t, appLogs, agentLogs, "the app", "the DaemonSet pod's readiness file appeared")
}

// configPod is a pod on the pod network, as ServiceAccount "app", whose container
// (securityContext sc) has its config /etc/app/app.conf rendered by the resolver from
// ConfigMap app-conf, mounted where the resolver looks for the template, then prints it.
func configPod(name string, sc *corev1.SecurityContext) (*corev1.Pod, *corev1.ConfigMap) {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "app-conf"},
		Data:       map[string]string{"app.conf": "listen {{.IP}} erlang {{.IP_ERLANG}}"},
	}
	c := container("app", "cat", "/etc/app/app.conf")
	c.SecurityContext = sc
	c.VolumeMounts = []corev1.VolumeMount{
		{Name: "template", MountPath: "/configmaps/app.conf"},
		{Name: "etc-app", MountPath: "/etc/app"},
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"entrypoint.io/dependency-config": "/etc/app/app.conf"},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName:            "app",
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](2),
			Containers:                    []corev1.Container{c},
			Volumes: []corev1.Volume{
				{Name: "template", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name},
				}}},
				{Name: "etc-app", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	}
	return p, cm
}

// runConfigPod creates the ConfigMap and the pod, waits until the app has printed the
// rendered config, and checks that it holds the pod's IP as .IP and .IP_ERLANG.
func runConfigPod(t *testing.T, ns string, p *corev1.Pod, cm *corev1.ConfigMap) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
	must(t, err)
	_, err = cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	must(t, err)

	var l string
	eventually(t, "the app prints its config", time.Minute, func(ctx context.Context) (bool, error) {
		l = podLogs(ctx, ns, p.Name, "app")
		return strings.Contains(l, "/etc/app/app.conf:"), nil
	})
	t.Logf("logs of the app's container:\n%s", l)
	// The app's log can be read before the kubelet has posted the status with the
	// pod's IP (sooner without an init container): wait for it rather than read once.
	var got *corev1.Pod
	eventually(t, "the pod's status has its IP", 30*time.Second, func(ctx context.Context) (bool, error) {
		var err error
		got, err = cs.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
		return err == nil && got.Status.PodIP != "", err
	})
	ip := got.Status.PodIP
	want := "listen " + ip + " erlang " + strings.ReplaceAll(ip, ".", ",")
	if !strings.Contains(l, want) {
		t.Errorf("the rendered config lacks %q (status.podIP %s)", want, ip)
	}
	return got
}

// Config templating with the pod's IP: the webhook gives the resolver POD_IP from the
// downward API, and the resolver renders /configmaps/app.conf/app.conf into
// /etc/app/app.conf before the app starts.
func TestConfigTemplateWithPodIP(t *testing.T) {
	defer noPanic(t)
	ns := namespace(t, "e2e-config")
	p, cm := configPod("config", restricted())
	got := runConfigPod(t, ns, p, cm)
	if got.Spec.HostNetwork {
		t.Errorf("the pod runs on the host network; want its own IP")
	}
}

// The injected init container runs under a pod-level restricted securityContext in a
// namespace that enforces Pod Security "restricted": the pod is admitted, the init
// container completes with exit code 0, and the app runs.
func TestRestrictedNamespace(t *testing.T) {
	defer noPanic(t)
	ns := namespace(t, "e2e-restricted")
	ctx := context.Background()
	n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	must(t, err)
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	_, err = cs.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{})
	must(t, err)

	p, cm := configPod("restricted", &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	})
	p.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To[int64](1000),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	// The namespace enforces "restricted" (once admission sees the label): a privileged
	// pod is refused, so the pass below means admission really checked ours.
	bad := p.DeepCopy()
	bad.Name = "privileged"
	bad.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	eventually(t, "Pod Security refuses a privileged pod", 30*time.Second, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "restricted"), nil
	})

	got := runConfigPod(t, ns, p, cm)
	// The app's log can be read before the kubelet has posted the status that says
	// it runs: wait for that status rather than read it once.
	initStatus := func(pod *corev1.Pod) *corev1.ContainerStatus {
		for i := range pod.Status.InitContainerStatuses {
			if pod.Status.InitContainerStatuses[i].Name == inject.InitContainerName {
				return &pod.Status.InitContainerStatuses[i]
			}
		}
		return nil
	}
	if problem := injectedProblem(got); problem != "" {
		t.Fatal(problem)
	}
	if injectionMode == inject.ModeImageVolume {
		// No init container: the app's container runs the resolver from the image volume.
		eventually(t, "the pod's status shows the app running", 30*time.Second, func(ctx context.Context) (bool, error) {
			pod, err := cs.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
			return err == nil && containerRunning(pod, "app"), nil
		})
		return
	}
	eventually(t, "the pod's status shows the init container done and the app running", 30*time.Second, func(ctx context.Context) (bool, error) {
		pod, err := cs.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = pod
		init := initStatus(pod)
		return init != nil && init.State.Terminated != nil && containerRunning(pod, "app"), nil
	})
	if init := initStatus(got); init.State.Terminated.ExitCode != 0 {
		t.Fatalf("init container %s: %+v; want terminated with exit code 0", inject.InitContainerName, init)
	}
}

// startedAfter checks, from the "(... at <RFC 3339 time>)" stamps the test app
// prints, that the app in appLogs started after the event in otherLogs.
func startedAfter(t *testing.T, appLogs, otherLogs, app, event string) {
	t.Helper()
	at := regexp.MustCompile(`at ([^)]+)\)`)
	started, happened := at.FindStringSubmatch(appLogs), at.FindStringSubmatch(otherLogs)
	if started == nil || happened == nil {
		t.Fatalf("no times in the logs")
	}
	ts, err := time.Parse(time.RFC3339Nano, started[1])
	must(t, err)
	te, err := time.Parse(time.RFC3339Nano, happened[1])
	must(t, err)
	if !ts.After(te) {
		t.Errorf("%s started at %s, before %s (%s)", app, ts, event, te)
	}
	t.Logf("%s started %s after %s", app, ts.Sub(te).Round(time.Millisecond), event)
}
