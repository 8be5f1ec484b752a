// Command demo shows the whole path on a local control plane: it starts etcd and
// kube-apiserver (envtest, binaries from KUBEBUILDER_ASSETS) with entrypoint-webhook
// registered from config/webhook, creates an annotated pod and shows what the webhook
// made of it, then plays the kubelet's part (there is none here): runs the injected
// init container's command and the wrapped container's, so that the real resolver
// waits for a Service and a Job, which the demo makes ready one step at a time, and
// the application starts the moment the last one is ready.
//
//	go run ./hack/demo-envtest PATH-TO-kubernetes-entrypoint
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook/server"
)

const ns = "demo"

// appArgv is the demo application: it prints its PID and argv, to show that the
// resolver exec'd it with its exact arguments.
var appArgv = []string{"sh", "-c", `echo "app started as PID $$ with argv: $0 \"$1\""`, "my-app", "--greeting=hello world"}

func main() {
	if runtime.GOOS != "linux" {
		fmt.Fprintf(os.Stderr, "the demo runs etcd, kube-apiserver and the resolver as Linux processes; this is %s\n", runtime.GOOS)
		os.Exit(2)
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: demo PATH-TO-kubernetes-entrypoint")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

// narrator prints timestamped lines relative to the demo's start.
type narrator struct{ start time.Time }

func (n narrator) say(format string, args ...any) {
	n.line("demo", fmt.Sprintf(format, args...))
}

func (n narrator) line(label, text string) {
	fmt.Printf("[%6.2fs] %-8s | %s\n", time.Since(n.start).Seconds(), label, text)
}

func run(binary string) error {
	n := narrator{start: time.Now()}
	say := n.say
	say("starting etcd and kube-apiserver from %s, with the webhook of config/webhook", os.Getenv("KUBEBUILDER_ASSETS"))
	env, err := testenv.Start(envtest.Environment{
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{"config/webhook"}},
	})
	if err != nil {
		return err
	}
	defer func() {
		say("stopping the control plane")
		_ = env.Stop()
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := startWebhook(ctx, env); err != nil {
		return err
	}
	say("entrypoint-webhook is serving on %s:%d", env.WebhookInstallOptions().LocalServingHost, env.WebhookInstallOptions().LocalServingPort)
	c := env.Client
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "mariadb"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "mariadb"}, Ports: []corev1.ServicePort{{Port: 3306}}},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	say("created Service demo/mariadb, no endpoints yet")

	annotations := map[string]string{
		"entrypoint.io/dependency-service": "mariadb",
		"entrypoint.io/dependency-job":     "db-migrate",
	}
	say("creating pod demo/web with annotations %v and command %q", annotations, appArgv)
	var pod *corev1.Pod
	for deadline := time.Now().Add(20 * time.Second); ; {
		pod, err = c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Annotations: annotations},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1", Command: appArgv}}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if len(pod.Spec.InitContainers) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // the API server may not use the new webhook yet
	}
	if len(pod.Spec.InitContainers) == 0 {
		return fmt.Errorf("the webhook did not mutate pod %s", pod.Name)
	}
	app := pod.Spec.Containers[0]
	say("the webhook mutated pod %s:", pod.Name)
	say("  init container %s: %q (image %s)", pod.Spec.InitContainers[0].Name, pod.Spec.InitContainers[0].Command, pod.Spec.InitContainers[0].Image)
	say("  container web: command %q args %q", app.Command, app.Args)
	for _, e := range app.Env {
		if e.ValueFrom != nil {
			say("    env %s from %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
		} else {
			say("    env %s=%s", e.Name, e.Value)
		}
	}

	// There is no kubelet here, so the demo plays its part: it runs the init
	// container's command, then the wrapped container's, with the env the kubelet
	// would give it (in-cluster config replaced by a kubeconfig).
	dir, err := os.MkdirTemp("", "entrypoint-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeconfigBytes(), 0o600); err != nil {
		return err
	}
	mount := filepath.Join(dir, "mount")
	if err := os.Mkdir(mount, 0o755); err != nil {
		return err
	}
	install := pod.Spec.InitContainers[0].Command
	out, err := exec.Command(binary, append(install[1:len(install)-1], mount)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("running the init container's %q: %w: %s", install, err, out)
	}
	say("as the kubelet: ran the init container, %s", strings.TrimSpace(string(out)))
	resolverEnv := []string{"KUBECONFIG=" + kubeconfig, "PATH=" + os.Getenv("PATH"), "ENTRYPOINT_LOG_FORMAT=console", "ENTRYPOINT_REPORT_INTERVAL=1s"}
	for _, e := range app.Env {
		value := e.Value
		if e.ValueFrom != nil {
			value = map[string]string{"metadata.name": pod.Name, "metadata.namespace": ns, "status.podIP": "10.244.0.7"}[e.ValueFrom.FieldRef.FieldPath]
		}
		resolverEnv = append(resolverEnv, e.Name+"="+value)
	}
	argv := append([]string{filepath.Join(mount, filepath.Base(app.Command[0]))}, app.Args...)
	say("as the kubelet: starting container web: %q", argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = resolverEnv
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return err
	}
	say("resolver PID %d", cmd.Process.Pid)
	var wg sync.WaitGroup
	var appStarted time.Time
	var mu sync.Mutex
	wg.Add(2)
	go func() { defer wg.Done(); n.prefix("resolver", stderr, nil) }()
	go func() {
		defer wg.Done()
		n.prefix("app", stdout, func() { mu.Lock(); appStarted = time.Now(); mu.Unlock() })
	}()

	time.Sleep(2 * time.Second)
	job, err := c.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "db-migrate"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "migrate", Image: "migrate"}},
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	say("created Job demo/db-migrate (running)")
	time.Sleep(2 * time.Second)
	now := metav1.Now()
	job.Status = batchv1.JobStatus{StartTime: &now, CompletionTime: &now, Succeeded: 1, Conditions: []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}}
	if _, err := c.BatchV1().Jobs(ns).UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		return err
	}
	say("Job demo/db-migrate succeeded")
	time.Sleep(1500 * time.Millisecond)
	slice, err := c.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "mariadb-x1", Labels: map[string]string{discoveryv1.LabelServiceName: "mariadb"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	say("mariadb has an endpoint, not ready yet (its readiness probe has not passed)")
	time.Sleep(2 * time.Second)
	slice.Endpoints[0].Conditions.Ready = ptr.To(true)
	if _, err := c.DiscoveryV1().EndpointSlices(ns).Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		return err
	}
	ready := time.Now()
	say("mariadb endpoint is ready")
	wg.Wait()
	err = cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		return fmt.Errorf("the resolver or the app failed: %w", err)
	}
	if appStarted.IsZero() {
		return fmt.Errorf("the app never printed anything")
	}
	say("the app started %s after the last dependency became ready (same PID: the resolver exec'd it)", appStarted.Sub(ready).Round(time.Millisecond))
	return nil
}

// prefix copies r line by line with a label; first is called at the first line.
func (n narrator) prefix(label string, r io.Reader, first func()) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if first != nil {
			first()
			first = nil
		}
		n.line(label, sc.Text())
	}
}

// startWebhook runs entrypoint-webhook in this process, where envtest expects it.
func startWebhook(ctx context.Context, env *testenv.Env) error {
	o := server.DefaultOptions()
	wio := env.WebhookInstallOptions()
	o.Host, o.Port, o.CertDir = wio.LocalServingHost, wio.LocalServingPort, wio.LocalServingCertDir
	o.Image = "kubernetes-entrypoint:demo"
	o.MetricsBindAddress, o.HealthProbeBindAddress = "0", "0"
	o.RegistryLookup = false
	o.LeaderElect = false // one process, no Lease
	w, err := server.New(env.Config, o, logr.Discard())
	if err != nil {
		return err
	}
	go func() { _ = w.Manager.Start(ctx) }()
	addr := net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}); err == nil { //nolint:gosec // only checks that it serves
			_ = conn.Close()
			return nil
		}
	}
	return fmt.Errorf("the webhook did not start serving on %s", addr)
}
