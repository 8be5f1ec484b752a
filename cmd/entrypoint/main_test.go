package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
)

var (
	env    *testenv.Env
	binary string // the built kubernetes-entrypoint
)

// The test binary doubles as the application the resolver execs: with this
// variable set it prints its argv and PID as JSON and exits.
const roleVar = "ENTRYPOINT_TEST_APP"

type appReport struct {
	Args []string `json:"args"`
	PID  int      `json:"pid"`
}

func TestMain(m *testing.M) {
	if os.Getenv(roleVar) == "1" {
		_ = json.NewEncoder(os.Stdout).Encode(appReport{Args: os.Args, PID: os.Getpid()})
		os.Exit(0)
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	// First, so that without a control plane nothing is built for nothing.
	var err error
	env, err = testenv.Start(envtest.Environment{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	dir, err := os.MkdirTemp("", "entrypoint-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "kubernetes-entrypoint")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the resolver: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// process is a running resolver.
type process struct {
	cmd            *exec.Cmd
	stdout, stderr *testenv.Buffer
	done           chan struct{}
	err            error
}

// startResolver runs the binary with exactly envVars (plus nothing inherited).
func startResolver(t *testing.T, envVars []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(binary, args...), stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = envVars
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("resolver stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

func (p *process) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("resolver still running; stderr:\n%s", p.stderr.String())
	}
	return -1
}

func (p *process) running(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("resolver exited with %d, want it still waiting; stderr:\n%s", p.cmd.ProcessState.ExitCode(), p.stderr.String())
	case <-time.After(d):
	}
}

func createJob(t *testing.T, ns, name string, labels map[string]string) *batchv1.Job {
	t.Helper()
	job, err := env.Client.BatchV1().Jobs(ns).Create(context.Background(), &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// setJobStatus records a finished Job the way the job controller does, so the
// API server's status validation accepts it.
func setJobStatus(t *testing.T, job *batchv1.Job, succeeded bool) {
	t.Helper()
	now := metav1.Now()
	job.Status = batchv1.JobStatus{StartTime: &now}
	if succeeded {
		job.Status.Succeeded = 1
		job.Status.CompletionTime = &now
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}
	} else {
		job.Status.Failed = 1
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now},
		}
	}
	if _, err := env.Client.BatchV1().Jobs(job.Namespace).UpdateStatus(context.Background(), job, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("setting job status: %v", err)
	}
}

// helmToolkitRole is what openstack-helm's helm-toolkit grants an init container:
// get and list, no watch.
var helmToolkitRole = []rbacv1.PolicyRule{
	{APIGroups: []string{"", "extensions", "batch", "apps", "discovery.k8s.io"}, Verbs: []string{"get", "list"},
		Resources: []string{"services", "endpoints", "endpointslices", "jobs", "pods", "daemonsets"}},
}

// The environment helm-toolkit renders: every variable present, most empty, no
// COMMAND; RBAC without watch. The resolver must wait, then exit 0.
func TestHelmToolkitEnvironmentWaitsThenExitsZero(t *testing.T) {
	ns := env.Namespace(t)
	dir := t.TempDir()
	kubeconfig := testenv.Kubeconfig(t, env.ServiceAccountConfig(t, ns, "keystone-api", helmToolkitRole), dir)
	ctx := context.Background()
	if _, err := env.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "mariadb"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 3306}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := startResolver(t, []string{
		"KUBECONFIG=" + kubeconfig,
		"POD_NAME=keystone-api-5d8f7-abcde",
		"NAMESPACE=" + ns,
		"INTERFACE_NAME=eth0",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/",
		"DEPENDENCY_SERVICE=" + ns + ":mariadb",
		"DEPENDENCY_JOBS=keystone-db-sync",
		"DEPENDENCY_DAEMONSET=",
		"DEPENDENCY_CONTAINER=",
		"DEPENDENCY_POD_JSON=",
		"DEPENDENCY_CUSTOM_RESOURCE=",
		"ENTRYPOINT_POLL_INTERVAL=100ms",
		"ENTRYPOINT_REPORT_INTERVAL=200ms",
	})
	p.running(t, 500*time.Millisecond)
	job := createJob(t, ns, "keystone-db-sync", nil)
	env.ReadyEndpointSlice(t, ns, "mariadb")
	p.running(t, 500*time.Millisecond)
	stderr := p.stderr.String()
	for _, want := range []string{
		"waiting for dependencies", "service " + ns + "/mariadb", "job " + ns + "/keystone-db-sync",
		"watch not allowed; polling instead", "still waiting", "0 active, 0 succeeded, 0 failed",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the resolver's log lacks %q:\n%s", want, stderr)
		}
	}
	setJobStatus(t, job, true)
	if code := p.exitCode(t); code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "all dependencies ready") {
		t.Errorf("no final ready line:\n%s", p.stderr.String())
	}
}

// `-- ARGV` reaches the application byte for byte, through exec: same PID.
func TestArgvReachesTheApplicationExactly(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := []string{self, "a b", "", "  leading", `quote"s`, "'single'", "tab\there", "new\nline", "ünïcode", "$HOME", "*", "--", "-v"}
	p := startResolver(t, []string{roleVar + "=1", "PATH=/usr/bin:/bin", "COMMAND=ignored when argv is given"}, append([]string{"--log-format=console", "--"}, argv...)...)
	if code := p.exitCode(t); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, p.stderr.String())
	}
	var got appReport
	if err := json.Unmarshal([]byte(p.stdout.String()), &got); err != nil {
		t.Fatalf("the application did not report: %v; stdout %q stderr:\n%s", err, p.stdout.String(), p.stderr.String())
	}
	if fmt.Sprintf("%q", got.Args) != fmt.Sprintf("%q", argv) {
		t.Errorf("argv at the application:\n got %q\nwant %q", got.Args, argv)
	}
	if got.PID != p.cmd.Process.Pid {
		t.Errorf("application PID %d, resolver PID %d: the application must replace the resolver (exec), not run as its child", got.PID, p.cmd.Process.Pid)
	}
}

func TestExitCodes(t *testing.T) {
	ns := env.Namespace(t)
	kubeconfig := testenv.Kubeconfig(t, env.Config, t.TempDir())
	failed := createJob(t, ns, "broken-migration", nil)
	setJobStatus(t, failed, false)
	emptyPath := t.TempDir()
	installDir := t.TempDir()

	cases := []struct {
		name       string
		env        []string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr []string
	}{
		{name: "no dependencies and no command", env: []string{"PATH=" + emptyPath}, wantCode: 0},
		{name: "legacy COMMAND echo on an image without echo", env: []string{"PATH=" + emptyPath, "COMMAND=echo done"}, wantCode: 0, wantStdout: "done\n"},
		{name: "legacy COMMAND split on blanks", env: []string{"PATH=/usr/bin:/bin", "COMMAND=  sh  -c  'exit 7'"}, wantCode: 2,
			wantStderr: []string{`'exit`}}, // legacy splitting is plain whitespace splitting: sh gets "'exit" and fails
		{name: "bad dependency list", env: []string{"DEPENDENCY_SERVICE=openstack:mariadb,,memcached", "DEPENDENCY_POD_JSON=[{\"labels\":{}}]"}, wantCode: 2,
			wantStderr: []string{"DEPENDENCY_SERVICE", "is empty", "DEPENDENCY_POD_JSON"}},
		{name: "bad flag value from the environment", env: []string{"ENTRYPOINT_TIMEOUT=soon"}, wantCode: 2, wantStderr: []string{"ENTRYPOINT_TIMEOUT"}},
		{name: "unexpected argument", args: []string{"/bin/true"}, wantCode: 2, wantStderr: []string{`put the command to run after "--"`}},
		{name: "timeout names what blocks", env: []string{"KUBECONFIG=" + kubeconfig, "NAMESPACE=" + ns, "DEPENDENCY_SERVICE=never"},
			args: []string{"--timeout=500ms"}, wantCode: 3, wantStderr: []string{"timed out", "service " + ns + "/never: no endpoints"}},
		{name: "failed job ends the wait by default", env: []string{"KUBECONFIG=" + kubeconfig, "NAMESPACE=" + ns, "DEPENDENCY_JOBS=broken-migration"},
			wantCode: 4, wantStderr: []string{"job " + ns + "/broken-migration failed", "BackoffLimitExceeded", "ENTRYPOINT_WAIT_FOR_FAILED_JOBS=true"}},
		{name: "failed job with fail-fast, still accepted", env: []string{"KUBECONFIG=" + kubeconfig, "NAMESPACE=" + ns, "DEPENDENCY_JOBS=broken-migration", "ENTRYPOINT_FAIL_FAST=true"},
			args: []string{"--fail-fast"}, wantCode: 4, wantStderr: []string{"broken-migration failed", "BackoffLimitExceeded"}},
		{name: "failed job waited for with the environment variable", env: []string{"KUBECONFIG=" + kubeconfig, "NAMESPACE=" + ns, "DEPENDENCY_JOBS=broken-migration", "ENTRYPOINT_WAIT_FOR_FAILED_JOBS=true"},
			args: []string{"--timeout=1s"}, wantCode: 3, wantStderr: []string{"job failed; waiting in case it is re-run", "timed out", "failed: BackoffLimitExceeded"}},
		{name: "failed job waited for with the flag", env: []string{"KUBECONFIG=" + kubeconfig, "NAMESPACE=" + ns, "DEPENDENCY_JOBS=broken-migration"},
			args: []string{"--wait-for-failed-jobs", "--timeout=1s"}, wantCode: 3, wantStderr: []string{"timed out", "failed: BackoffLimitExceeded"}},
		{name: "failed job waited for with fail-fast off (the old spelling)", env: []string{"KUBECONFIG=" + kubeconfig, "NAMESPACE=" + ns, "DEPENDENCY_JOBS=broken-migration", "ENTRYPOINT_FAIL_FAST=false"},
			args: []string{"--timeout=1s"}, wantCode: 3, wantStderr: []string{"timed out", "failed: BackoffLimitExceeded"}},
		{name: "optional-after starts the application without what blocks", env: []string{"KUBECONFIG=" + kubeconfig, "NAMESPACE=" + ns, "DEPENDENCY_SERVICE=never",
			"ENTRYPOINT_OPTIONAL_AFTER=500ms", "PATH=/usr/bin:/bin"}, args: []string{"--", "sh", "-c", "exit 0"},
			wantCode: 0, wantStderr: []string{"starting without the dependencies still blocking", "service " + ns + "/never: no endpoints"}},
		{name: "timeout before optional-after", env: []string{"KUBECONFIG=" + kubeconfig, "NAMESPACE=" + ns, "DEPENDENCY_SERVICE=never",
			"ENTRYPOINT_OPTIONAL_AFTER=1h"}, args: []string{"--timeout=500ms"}, wantCode: 3, wantStderr: []string{"timed out"}},
		{name: "bad optional-after value", env: []string{"ENTRYPOINT_OPTIONAL_AFTER=5 minutes"}, wantCode: 2, wantStderr: []string{"ENTRYPOINT_OPTIONAL_AFTER"}},
		{name: "bad wait-for-failed-jobs value", env: []string{"ENTRYPOINT_WAIT_FOR_FAILED_JOBS=sometimes"}, wantCode: 2, wantStderr: []string{"ENTRYPOINT_WAIT_FOR_FAILED_JOBS"}},
		{name: "command not found", env: []string{"PATH=" + emptyPath}, args: []string{"--", "no-such-app"}, wantCode: 127, wantStderr: []string{"no-such-app", "not found in PATH"}},
		{name: "install copies the binary", args: []string{"install", installDir}, wantCode: 0, wantStdout: "installed " + filepath.Join(installDir, "kubernetes-entrypoint") + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startResolver(t, tc.env, tc.args...)
			if code := p.exitCode(t); code != tc.wantCode {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, tc.wantCode, p.stderr.String())
			}
			if tc.wantStdout != "" && p.stdout.String() != tc.wantStdout {
				t.Errorf("stdout %q, want %q", p.stdout.String(), tc.wantStdout)
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(p.stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, p.stderr.String())
				}
			}
		})
	}
	// The installed copy is the resolver itself.
	out, err := exec.Command(filepath.Join(installDir, "kubernetes-entrypoint"), "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "kubernetes-entrypoint ") {
		t.Errorf("installed copy: %q, %v", out, err)
	}
}

// SIGTERM while waiting (the pod is deleted) ends the resolver at once with
// 128+15, saying what it was still waiting for.
func TestSignalWhileWaiting(t *testing.T) {
	ns := env.Namespace(t)
	kubeconfig := testenv.Kubeconfig(t, env.Config, t.TempDir())
	p := startResolver(t, []string{"KUBECONFIG=" + kubeconfig, "NAMESPACE=" + ns, "DEPENDENCY_SERVICE=never"}, "--", "/bin/true")
	testenv.Eventually(t, 20*time.Second, "the resolver to start waiting", func() bool {
		return strings.Contains(p.stderr.String(), "waiting for dependencies")
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exitCode(t); code != 143 {
		t.Fatalf("exit code %d, want 143; stderr:\n%s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "stopped by signal while waiting") || !strings.Contains(p.stderr.String(), "service "+ns+"/never") {
		t.Errorf("stderr does not say it stopped and what blocked:\n%s", p.stderr.String())
	}
}
