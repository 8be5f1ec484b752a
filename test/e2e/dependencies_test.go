//go:build e2e

package e2e

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The README's example, for real: an app annotated with a Service and a Job dependency
// is mutated by the webhook, its resolver waits (and says so) while neither is ready,
// still waits once the Job has succeeded, and execs the app only after the Service has
// a ready endpoint.
func TestAppWaitsForServiceAndJob(t *testing.T) {
	defer noPanic(t)
	ns := namespace(t, "e2e-deps")
	ctx := context.Background()
	const appOutput = "web: the application runs"

	// The resolver waits as a process of the app's container, so its memory counts
	// toward that container's limit: a small one must do (it is charged about 3 MiB;
	// its binary's file pages were charged to the init container that wrote them).
	web := container("web", "print", appOutput)
	web.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(appMemoryLimit)}
	app := appDeployment("web", map[string]string{
		"entrypoint.io/dependency-service": "mariadb",
		"entrypoint.io/dependency-job":     "db-migrate",
	}, web)
	created := time.Now()
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, app, metav1.CreateOptions{})
	must(t, err)

	// The webhook mutated the pod: the install init container first (or the image
	// volume, in image-volume mode), the app's
	// container starts the resolver with the exact original argv after "--".
	var podName string
	eventually(t, "the app's container runs the resolver", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := onlyPod(ctx, ns, "web")
		if p == nil || err != nil {
			return false, err
		}
		podName = p.Name
		if problem := injectedProblem(p); problem != "" {
			t.Fatal(problem)
		}
		c := p.Spec.Containers[0]
		argv := append(slices.Clone(c.Command), c.Args...)
		if !strings.HasSuffix(argv[0], "/kubernetes-entrypoint") || !slices.Equal(argv[len(argv)-4:], []string{"--", testapp, "print", appOutput}) {
			t.Fatalf("the app's container is not wrapped as expected: argv %q", argv)
		}
		return containerRunning(p, "web"), nil
	})
	t.Logf("app pod %s: resolver running %s after create", podName, time.Since(created).Round(time.Millisecond))

	logs := func(ctx context.Context) string { return podLogs(ctx, ns, podName, "web") }
	eventually(t, "the resolver says what it waits for", 30*time.Second, func(ctx context.Context) (bool, error) {
		return strings.Contains(logs(ctx), "waiting for dependencies"), nil
	})
	// The text is in the resolver's "starting application" line as well as in the
	// app's own: either would be a premature exec.
	if l := logs(ctx); strings.Contains(l, appOutput) {
		t.Fatalf("the app ran before any dependency existed:\n%s", l)
	}

	// The Job succeeds: the resolver notices, and still waits for the Service.
	_, err = cs.BatchV1().Jobs(ns).Create(ctx, migrationJob("db-migrate", "1"), metav1.CreateOptions{})
	must(t, err)
	eventually(t, "the resolver sees the Job succeed", time.Minute, func(ctx context.Context) (bool, error) {
		return lineIndex(logs(ctx), "dependency ready") >= 0, nil
	})
	job, err := cs.BatchV1().Jobs(ns).Get(ctx, "db-migrate", metav1.GetOptions{})
	must(t, err)
	if job.Status.Succeeded < 1 {
		t.Fatalf("the resolver reported a dependency ready before the Job succeeded: %+v\n%s", job.Status, logs(ctx))
	}
	time.Sleep(time.Second) // give a wrong exec the time to show
	if l := logs(ctx); strings.Contains(l, appOutput) || !strings.Contains(l, "db-migrate") {
		t.Fatalf("after the Job (only) succeeded, want the resolver still waiting:\n%s", l)
	}

	// The database comes up behind its Service: the app starts.
	db, svc := database("mariadb")
	serviceCreated := time.Now()
	_, err = cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	must(t, err)
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, db, metav1.CreateOptions{})
	must(t, err)
	var endpointReady time.Time
	eventually(t, "the Service has a ready endpoint", time.Minute, func(ctx context.Context) (bool, error) {
		list, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=mariadb"})
		if err != nil {
			return false, err
		}
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					endpointReady = time.Now()
					return true, nil
				}
			}
		}
		return false, nil
	})
	var l string
	eventually(t, "the app runs", 30*time.Second, func(ctx context.Context) (bool, error) {
		l = logs(ctx)
		return appPrinted(l, appOutput), nil
	})
	t.Logf("endpoint ready %s after the Service was created; app output seen %s after that",
		endpointReady.Sub(serviceCreated).Round(time.Millisecond), time.Since(endpointReady).Round(time.Millisecond))
	t.Logf("logs of the app's container:\n%s", l)

	// In order: the resolver's report, then the app, exec'd as the container's first
	// process (pid 1: no shell, no child), after the Service existed. The order is read
	// from the clocks: the resolver logs to stderr and the app prints to stdout, which
	// the container log interleaves as each stream's lines arrive.
	ready := regexp.MustCompile(`"ts":"([^"]+)","msg":"all dependencies ready"`).FindStringSubmatch(l)
	if ready == nil {
		t.Fatalf("the resolver did not log \"all dependencies ready\"")
	}
	readyAt, err := time.Parse(time.RFC3339Nano, ready[1])
	must(t, err)
	m := regexp.MustCompile(`\(pid (\d+), at ([^)]+)\)`).FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("no pid and time in the app's output")
	}
	if m[1] != "1" {
		t.Errorf("the app runs as pid %s, want 1 (the resolver execs it)", m[1])
	}
	at, err := time.Parse(time.RFC3339Nano, m[2])
	must(t, err)
	if !at.After(readyAt) {
		t.Errorf("the app started at %s, not after the resolver found every dependency ready at %s", at, readyAt)
	}
	if !at.After(serviceCreated) {
		t.Errorf("the app started at %s, before the Service was created at %s", at, serviceCreated)
	}

	// One run of the container: no restart, no OOM kill under its memory limit.
	p, err := cs.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
	must(t, err)
	for _, st := range p.Status.ContainerStatuses {
		if st.RestartCount != 0 || !containerRunning(p, st.Name) {
			t.Errorf("container %s (memory limit %s): %d restarts, state %+v, last state %+v",
				st.Name, appMemoryLimit, st.RestartCount, st.State, st.LastTerminationState)
		}
	}
}

// appMemoryLimit is the app container's memory limit in TestAppWaitsForServiceAndJob.
const appMemoryLimit = "16Mi"
