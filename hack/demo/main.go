// Command demo shows the resolver at work on a local control plane: it starts etcd
// and kube-apiserver (envtest, binaries from KUBEBUILDER_ASSETS), runs
// kubernetes-entrypoint waiting for a Service and a Job, makes them ready one step
// at a time, and shows the application starting the moment the last one is ready.
//
//	go run ./hack/demo PATH-TO-kubernetes-entrypoint
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
)

const ns = "demo"

func main() {
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
	say("starting etcd and kube-apiserver from %s", os.Getenv("KUBEBUILDER_ASSETS"))
	env, err := testenv.Start(envtest.Environment{})
	if err != nil {
		return err
	}
	defer func() {
		say("stopping the control plane")
		_ = env.Stop()
	}()
	ctx := context.Background()
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

	dir, err := os.MkdirTemp("", "entrypoint-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeconfigBytes(), 0o600); err != nil {
		return err
	}
	resolverEnv := []string{
		"KUBECONFIG=" + kubeconfig, "NAMESPACE=" + ns, "PATH=" + os.Getenv("PATH"),
		"DEPENDENCY_SERVICE=" + ns + ":mariadb", "DEPENDENCY_JOBS=db-migrate",
		"ENTRYPOINT_LOG_FORMAT=console", "ENTRYPOINT_REPORT_INTERVAL=1s",
	}
	argv := []string{binary, "--", "sh", "-c", `echo "app started as PID $$ with argv: $0 \"$1\""`, "my-app", "--greeting=hello world"}
	say("starting the resolver: DEPENDENCY_SERVICE=%s:mariadb DEPENDENCY_JOBS=db-migrate %q", ns, argv)
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
