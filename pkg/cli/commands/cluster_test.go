package commands

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	keapi "github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// cluster is one control plane for the commands that read a cluster (why,
// graph): started once, each test in its own namespace.
type cluster struct {
	env        *testenv.Env
	kubeconfig string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	env := testenv.StartT(t, envtest.Environment{})
	return &cluster{env: env, kubeconfig: testenv.Kubeconfig(t, env.Config, t.TempDir())}
}

// kubectl runs kubectl-entrypoint against the cluster in namespace ns, and
// returns its output with ns replaced by NS, for golden files.
func (c *cluster) kubectl(t *testing.T, ns string, args ...string) (string, string, int) {
	t.Helper()
	out, errOut, code := run(t, "", append([]string{"--kubeconfig", c.kubeconfig, "-n", ns}, args...)...)
	return strings.ReplaceAll(out, ns, "NS"), strings.ReplaceAll(errOut, ns, "NS"), code
}

func (c *cluster) create(t *testing.T, objs ...any) {
	t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.Pod:
			_, err = c.env.Client.CoreV1().Pods(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Service:
			_, err = c.env.Client.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *batchv1.Job:
			_, err = c.env.Client.BatchV1().Jobs(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *batchv1.CronJob:
			_, err = c.env.Client.BatchV1().CronJobs(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.Deployment:
			_, err = c.env.Client.AppsV1().Deployments(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.DaemonSet:
			_, err = c.env.Client.AppsV1().DaemonSets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			t.Fatalf("create: unexpected %T", o)
		}
		if err != nil {
			t.Fatalf("creating %T: %v", o, err)
		}
	}
}

// injectedPod is the pod the webhook makes of a pod named name with labels and
// the given entrypoint.io/ annotations.
func injectedPod(t *testing.T, ns, name string, labels, annotations map[string]string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "registry.example/app:1.0", Command: []string{"/usr/bin/app"}},
		}},
	}
	out, outcome, err := inject.Mutate(context.Background(), pod, inject.Config{Image: goldenImage, Controller: true})
	if err != nil || outcome.Result != inject.ResultInjected {
		t.Fatalf("inject.Mutate: %+v, %v", outcome, err)
	}
	return out
}

// installedBasePod is a pod of workload name as its openstack-helm chart renders
// it (pkg/resolve/spec/testdata): the original image in init container "init",
// with the chart's environment.
func installedBasePod(t *testing.T, ns, workload, podName string, labels map[string]string) *corev1.Pod {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "resolve", "spec", "testdata", "openstack-helm-init-env.json"))
	if err != nil {
		t.Fatal(err)
	}
	var inits []struct {
		Name string                     `json:"name"`
		Env  map[string]json.RawMessage `json:"env"`
	}
	if err := json.Unmarshal(b, &inits); err != nil {
		t.Fatal(err)
	}
	for _, in := range inits {
		if in.Name != workload {
			continue
		}
		var env []corev1.EnvVar
		for _, k := range slices.Sorted(maps.Keys(in.Env)) {
			var v string
			if json.Unmarshal(in.Env[k], &v) == nil {
				env = append(env, corev1.EnvVar{Name: k, Value: v})
				continue
			}
			var ref struct {
				FieldRef string `json:"fieldRef"`
			}
			if err := json.Unmarshal(in.Env[k], &ref); err != nil {
				t.Fatalf("%s: %s: %v", workload, k, err)
			}
			env = append(env, corev1.EnvVar{Name: k, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: ref.FieldRef}}})
		}
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: podName, Namespace: ns, Labels: labels},
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "init", Image: "quay.io/airshipit/kubernetes-entrypoint:latest", Command: []string{"kubernetes-entrypoint"}, Env: env}},
				Containers:     []corev1.Container{{Name: "app", Image: "registry.example/" + workload + ":1.0"}},
			},
		}
	}
	t.Fatalf("no workload %s in the installed-base fixture", workload)
	return nil
}

// setCondition writes the controller's condition on a pod, as the controller would.
func (c *cluster) setCondition(t *testing.T, ns, pod string, status corev1.ConditionStatus, reason, message string) {
	t.Helper()
	ctx := context.Background()
	p, err := c.env.Client.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: keapi.ConditionType, Status: status, Reason: reason, Message: message})
	if _, err := c.env.Client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// golden compares got with testdata/<name>.golden (-update rewrites it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", file, got)
	}
}

// TestOnCluster runs why and graph on a real kube-apiserver.
func TestOnCluster(t *testing.T) {
	c := startCluster(t)
	t.Run("why", func(t *testing.T) { testWhy(t, c) })
	t.Run("graph", func(t *testing.T) { testGraph(t, c) })
	t.Run("status", func(t *testing.T) { testStatus(t, c) })
	t.Run("control characters", func(t *testing.T) { testControlCharacters(t, c) })
}

func deployment(ns, name string, labels, annotations map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/" + name + ":1.0", Command: []string{"/app"}}}}}}}
}

func service(ns, name string, selector map[string]string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{{Port: 80}}}}
}

func job(ns, name string) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "j", Image: "busybox"}}}}}}
}

// testGraph: one namespace holds a cycle (a and b wait for each other's
// Service), a satisfiable chain (web waits for mariadb's Service and a Job;
// report for a Job its CronJob creates), unsatisfiable dependencies (orphan
// waits for a Service that selects nothing and a Job nobody makes) and an
// openstack-helm pod from the installed-base fixture.
func testGraph(t *testing.T, c *cluster) {
	ns := c.env.Namespace(t)
	svc := func(name string) map[string]string {
		return map[string]string{"entrypoint.io/dependency-service": name}
	}
	mariadb := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "mariadb", Namespace: ns}, Spec: appsv1.StatefulSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "mariadb"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "mariadb"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "mariadb"}}}}}}
	nightly := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: ns}, Spec: batchv1.CronJobSpec{
		Schedule: "0 0 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: job(ns, "x").Spec}}}
	c.create(t,
		deployment(ns, "a", map[string]string{"app": "a"}, svc("b")), service(ns, "a", map[string]string{"app": "a"}),
		deployment(ns, "b", map[string]string{"app": "b"}, svc("a")), service(ns, "b", map[string]string{"app": "b"}),
		deployment(ns, "web", map[string]string{"app": "web"}, map[string]string{
			"entrypoint.io/dependency-service": "mariadb", "entrypoint.io/dependency-job": "db-migrate"}),
		service(ns, "mariadb", map[string]string{"app": "mariadb"}), job(ns, "db-migrate"),
		deployment(ns, "report", map[string]string{"app": "report"}, map[string]string{"entrypoint.io/dependency-job": "nightly-29000000"}),
		nightly,
		deployment(ns, "orphan", map[string]string{"app": "orphan"}, map[string]string{
			"entrypoint.io/dependency-service": "cache", "entrypoint.io/dependency-job": "missing-job"}),
		service(ns, "cache", map[string]string{"app": "cache"}),
		installedBasePod(t, ns, "keystone-api", "keystone-api-abc12", map[string]string{"application": "keystone"}),
		job(ns, "keystone-db-sync"),
	)
	if _, err := c.env.Client.AppsV1().StatefulSets(ns).Create(context.Background(), mariadb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"tree", "dot", "mermaid", "json"} {
		out, errOut, code := c.kubectl(t, ns, "graph", "-o", format)
		if code != 1 {
			t.Errorf("graph -o %s: exit status %d, want 1 (a cycle, unsatisfiable dependencies); stderr: %s", format, code, errOut)
		}
		golden(t, "graph-"+format, out+"--- stderr\n"+errOut)
	}
	// Without the cycle and the unsatisfiable ones: exit status 0.
	clean := c.env.Namespace(t)
	c.create(t, deployment(clean, "web", map[string]string{"app": "web"}, svc("db")), service(clean, "db", map[string]string{"app": "db"}),
		deployment(clean, "db", map[string]string{"app": "db"}, nil))
	out, errOut, code := c.kubectl(t, clean, "graph")
	if code != 0 {
		t.Errorf("graph of a satisfiable namespace: exit status %d, want 0; stderr: %s", code, errOut)
	}
	golden(t, "graph-clean", out+"--- stderr\n"+errOut)

	// The newer kinds: a cycle through a rollout and a CEL expression naming a
	// Deployment; ConfigMaps, claims and CRDs that exist or not.
	kinds := c.env.Namespace(t)
	c.create(t,
		deployment(kinds, "api", map[string]string{"app": "api"}, map[string]string{
			"entrypoint.io/dependency-rollout":   "deployment/db",
			"entrypoint.io/dependency-configmap": "settings/region,missing",
			"entrypoint.io/dependency-pvc":       "data",
			"entrypoint.io/dependency-crd":       "widgets.example.com",
		}),
		deployment(kinds, "db", map[string]string{"app": "db"}, map[string]string{
			"entrypoint.io/dependency-cel": `[{"apiVersion":"apps/v1","kind":"Deployment","name":"api","expression":"object.status.readyReplicas > 0"}]`,
		}),
	)
	if _, err := c.env.Client.CoreV1().ConfigMaps(kinds).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = c.kubectl(t, kinds, "graph", "-o", "json")
	if code != 1 {
		t.Errorf("graph of the newer kinds: exit status %d, want 1; stderr: %s", code, errOut)
	}
	var g struct {
		Nodes []struct {
			ID, Kind, Unsatisfiable string
			InCycle                 bool
		}
		Cycles []struct{ Message string }
	}
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatalf("graph -o json: %v\n%s", err, out)
	}
	wantCycle := "deployment NS/api waits for rollout NS/deployment/db, rolled out by deployment NS/db, " +
		"which waits for cel apps/v1 Deployment NS/api, satisfied by deployment NS/api"
	if len(g.Cycles) != 1 || g.Cycles[0].Message != wantCycle {
		t.Errorf("cycles %+v; want one: %s", g.Cycles, wantCycle)
	}
	unsatisfiable, kindOf := map[string]bool{}, map[string]string{}
	for _, n := range g.Nodes {
		kindOf[n.ID] = n.Kind
		if n.Unsatisfiable != "" {
			unsatisfiable[n.ID] = true
		}
	}
	if want := map[string]bool{"configmap NS/missing": true, "pvc NS/data": true, "crd widgets.example.com": true}; !maps.Equal(unsatisfiable, want) {
		t.Errorf("unsatisfiable %v; want %v (configmap NS/settings exists)", unsatisfiable, want)
	}
	if kindOf["cel apps/v1 Deployment NS/api"] != "cel" || kindOf["rollout NS/deployment/db"] != "rollout" {
		t.Errorf("node kinds %v", kindOf)
	}
}

func testWhy(t *testing.T, c *cluster) {
	ns := c.env.Namespace(t)
	web := injectedPod(t, ns, "web", map[string]string{"app": "web"}, map[string]string{
		"entrypoint.io/dependency-service": "mariadb",
		"entrypoint.io/dependency-job":     "db-migrate",
		"entrypoint.io/dependency-tcp":     "cache:11211",
	})
	api := injectedPod(t, ns, "api", map[string]string{"app": "api"}, map[string]string{"entrypoint.io/dependency-service": "mariadb"})
	// The kinds of objects: a ConfigMap with its key, one without, a rollout
	// (envtest runs no Deployment controller: it never completes).
	objectsPod := injectedPod(t, ns, "objects", nil, map[string]string{
		"entrypoint.io/dependency-configmap": "settings/region,settings/zone",
		"entrypoint.io/dependency-rollout":   "deployment/web",
		"entrypoint.io/dependency-pvc":       "data",
	})
	if _, err := c.env.Client.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"region": "eu"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	keystone := installedBasePod(t, ns, "keystone-api", "keystone-api-abc12", map[string]string{"application": "keystone"})
	c.create(t,
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "mariadb", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 3306}}}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "db-migrate", Namespace: ns}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "m", Image: "busybox"}}}}}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1.0"}}}}}},
		web, api, keystone, objectsPod,
		deployment(ns, "nopods", map[string]string{"app": "nopods"}, map[string]string{"entrypoint.io/dependency-service": "mariadb,cache"}),
		deployment(ns, "denied", map[string]string{"app": "denied"}, map[string]string{"entrypoint.io/dependency-service": "Not_A_Name"}),
	)
	c.setCondition(t, ns, "web", corev1.ConditionFalse, keapi.ReasonWaiting,
		"waiting for service "+ns+"/mariadb: no endpoints; job "+ns+"/db-migrate: 0 active, 0 succeeded, 0 failed")

	steps := []struct {
		name string
		args []string
		code int
		// before runs first.
		before func()
	}{
		{name: "why-waiting", args: []string{"why", "web"}, code: 1},
		{name: "why-deployment", args: []string{"why", "deployment/web"}, code: 1},
		{name: "why-installed-base", args: []string{"why", "pod/keystone-api-abc12"}, code: 1},
		{name: "why-api-waiting-json", args: []string{"why", "api", "-o", "json"}, code: 1},
		{name: "why-api-ready", args: []string{"why", "api"}, code: 0, before: func() { c.env.ReadyEndpointSlice(t, ns, "mariadb") }},
		{name: "why-short-name", args: []string{"why", "deploy/web"}, code: 1},
		{name: "why-objects", args: []string{"why", "objects"}, code: 1},
		{name: "why-not-found", args: []string{"why", "nothing"}, code: 2},
		{name: "why-no-pods", args: []string{"why", "deployment/nopods"}, code: 1},
		{name: "why-no-pods-denied", args: []string{"why", "deployment/denied"}, code: 1},
		{name: "why-unknown-type", args: []string{"why", "frobs/web"}, code: 2},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		out, errOut, code := c.kubectl(t, ns, s.args...)
		if code != s.code {
			t.Errorf("%s: exit status %d, want %d; stderr: %s", s.name, code, s.code, errOut)
		}
		golden(t, s.name, out+"--- stderr\n"+errOut)
	}
}
