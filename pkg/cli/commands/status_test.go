package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	keapi "github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// controlledBy is an owner reference to obj as its controller.
func controlledBy(kind string, obj metav1.Object) []metav1.OwnerReference {
	apiVersion := "apps/v1"
	if kind == "Job" || kind == "CronJob" {
		apiVersion = "batch/v1"
	}
	return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: obj.GetName(), UID: obj.GetUID(), Controller: ptr.To(true)}}
}

// workloadPods is a namespace as the controllers leave it, without kubelet nor
// controllers running: Deployment api (ReplicaSets api-1 and api-2, a rollout
// under way) with three injected pods, two waiting; CronJob nightly, whose Job
// nightly-1 has a pod in a cycle and a finished one; a bare gated pod the
// controller has not judged; Deployment many, whose condition names more
// blockers than fit, one of them with an escape sequence in its name; and
// Deployment done, whose pod is ready.
func workloadPods(t *testing.T, c *cluster, ns string) {
	t.Helper()
	ctx := context.Background()
	cs := c.env.Client
	labels := map[string]string{"app": "api"}
	annotations := map[string]string{"entrypoint.io/dependency-service": "db", "entrypoint.io/dependency-job": "migrate"}
	mkDeployment := func(name string, labels map[string]string) *appsv1.Deployment {
		d, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment(ns, name, labels, annotations), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	mkReplicaSet := func(name string, d *appsv1.Deployment) *appsv1.ReplicaSet {
		rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, OwnerReferences: controlledBy("Deployment", d)},
			Spec: appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template}}
		rs, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	mkPod := func(name string, labels map[string]string, owners []metav1.OwnerReference) {
		pod := injectedPod(t, ns, name, labels, annotations)
		pod.OwnerReferences = owners
		c.create(t, pod)
	}
	api := mkDeployment("api", labels)
	rs1, rs2 := mkReplicaSet("api-1", api), mkReplicaSet("api-2", api)
	mkPod("api-1-a", labels, controlledBy("ReplicaSet", rs1))
	mkPod("api-2-b", labels, controlledBy("ReplicaSet", rs2))
	mkPod("api-2-c", labels, controlledBy("ReplicaSet", rs2))
	c.setCondition(t, ns, "api-1-a", corev1.ConditionFalse, keapi.ReasonWaiting,
		"waiting for service "+ns+"/db: no such Service; job "+ns+"/migrate: no such Job")
	c.setCondition(t, ns, "api-2-b", corev1.ConditionFalse, keapi.ReasonWaiting, "waiting for service "+ns+"/db: no such Service")
	c.setCondition(t, ns, "api-2-c", corev1.ConditionTrue, keapi.ReasonReady, "all 2 dependencies that need no node are ready")

	cron, err := cs.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: ns},
		Spec: batchv1.CronJobSpec{Schedule: "0 0 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: job(ns, "x").Spec}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	j := job(ns, "nightly-1")
	j.OwnerReferences = controlledBy("CronJob", cron)
	j, err = cs.BatchV1().Jobs(ns).Create(ctx, j, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The API server gave the Job its selector, and the template its labels.
	mkPod("nightly-1-x", j.Spec.Template.Labels, controlledBy("Job", j))
	c.setCondition(t, ns, "nightly-1-x", corev1.ConditionFalse, keapi.ReasonCycle,
		"dependency cycle: job "+ns+"/nightly-1, job "+ns+"/nightly-1; waiting for job "+ns+"/nightly-1: 1 active, 0 succeeded, 0 failed")
	mkPod("nightly-1-done", j.Spec.Template.Labels, controlledBy("Job", j))
	c.setCondition(t, ns, "nightly-1-done", corev1.ConditionFalse, keapi.ReasonWaiting, "waiting for job "+ns+"/other: no such Job")
	done, err := cs.CoreV1().Pods(ns).Get(ctx, "nightly-1-done", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done.Status.Phase = corev1.PodSucceeded
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, done, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	c.create(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "lonely", Namespace: ns, Labels: map[string]string{inject.LabelManaged: "true"}},
		Spec: corev1.PodSpec{SchedulingGates: []corev1.PodSchedulingGate{{Name: inject.SchedulingGate}},
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1.0"}}}})

	many := mkDeployment("many", map[string]string{"app": "many"})
	mkPod("many-1-a", map[string]string{"app": "many"}, controlledBy("ReplicaSet", mkReplicaSet("many-1", many)))
	var items []string
	for i := range 5 {
		items = append(items, fmt.Sprintf("service %s/backend-with-a-long-name-%d: no endpoints", ns, i))
	}
	items = append(items, "configmap "+ns+"/evil\x1b[31mred: no such ConfigMap")
	c.setCondition(t, ns, "many-1-a", corev1.ConditionFalse, "Waiting\x1b[2J", "waiting for "+strings.Join(items, "; ")+"; and 3 more")

	ready := mkDeployment("done", map[string]string{"app": "done"})
	mkPod("done-1-a", map[string]string{"app": "done"}, controlledBy("ReplicaSet", mkReplicaSet("done-1", ready)))
	c.setCondition(t, ns, "done-1-a", corev1.ConditionTrue, keapi.ReasonReady, "all 2 dependencies that need no node are ready")
}

func testStatus(t *testing.T, c *cluster) {
	ns := c.env.Namespace(t)
	workloadPods(t, c, ns)
	empty := c.env.Namespace(t)

	steps := []struct {
		name, ns string
		args     []string
		code     int
	}{
		{name: "status", ns: ns, args: []string{"status"}, code: 1},
		{name: "status-json", ns: ns, args: []string{"status", "-o", "json"}, code: 1},
		{name: "status-nothing-waits", ns: empty, args: []string{"status"}, code: 0},
		{name: "why-deployment-summary", ns: ns, args: []string{"why", "deployment/api"}, code: 1},
		{name: "why-deployment-verbose", ns: ns, args: []string{"why", "deploy/api", "-v"}, code: 1},
		{name: "why-cronjob-summary", ns: ns, args: []string{"why", "cronjob/nightly"}, code: 1},
	}
	for _, s := range steps {
		out, errOut, code := c.kubectl(t, s.ns, s.args...)
		if s.ns == empty {
			out, errOut = strings.ReplaceAll(out, empty, "EMPTY"), strings.ReplaceAll(errOut, empty, "EMPTY")
		}
		if code != s.code {
			t.Errorf("%s: exit status %d, want %d; stderr: %s", s.name, code, s.code, errOut)
		}
		golden(t, s.name, out+"--- stderr\n"+errOut)
	}

	// -A: the NAMESPACE column, and the rows of this namespace among those of
	// the other tests'.
	out, errOut, code := c.kubectl(t, ns, "status", "-A")
	if code != 1 {
		t.Errorf("status -A: exit status %d, want 1; stderr: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "NAMESPACE  ") {
		t.Errorf("status -A: no NAMESPACE column:\n%s", out)
	}
	for _, w := range []string{"cronjob/nightly", "deployment/api", "deployment/many", "pod/lonely"} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			found = found || strings.HasPrefix(line, "NS ") && strings.Contains(line, " "+w+" ")
		}
		if !found {
			t.Errorf("status -A: no row for %s of NS:\n%s", w, out)
		}
	}

	// why -o json on a workload: the summary, with every pod's report.
	out, _, code = c.kubectl(t, ns, "why", "deployment/api", "-o", "json")
	var summary struct {
		Workload      string
		Pods, Blocked int
		Blockers      []struct {
			Name string
			Pods int
		}
		Conditions []struct {
			Reason string
			Pods   int
		}
		Reports []struct{ Pod string }
	}
	if err := json.Unmarshal([]byte(out), &summary); err != nil {
		t.Fatalf("why deployment/api -o json: %v\n%s", err, out)
	}
	if got := fmt.Sprintf("%s %d/%d %v %v %d %d", summary.Workload, summary.Blocked, summary.Pods, summary.Blockers, summary.Conditions, len(summary.Reports), code); got !=
		"deployment NS/api 3/3 [{service NS/db 3} {job NS/migrate 3}] [{Ready 1} {Waiting 2}] 3 1" {
		t.Errorf("why deployment/api -o json: %s", got)
	}

	// -o json: every workload with its counts.
	out, _, _ = c.kubectl(t, ns, "status", "-o", "json")
	var rows []struct {
		Workload      string
		Waiting, Pods int
		Reasons       []string
		Blockers      []struct {
			Name string
			Pods int
		}
		Unnamed int
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r.Workload] = fmt.Sprintf("%d/%d %v %d+%d", r.Waiting, r.Pods, r.Reasons, len(r.Blockers), r.Unnamed)
	}
	want := map[string]string{
		"deployment/api":  "2/3 [Waiting] 2+0",
		"cronjob/nightly": "1/1 [Cycle] 1+0",
		"pod/lonely":      "1/1 [-] 0+0",
		"deployment/many": "1/1 [Waiting\x1b[2J] 6+3",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("status -o json: got %v, want %v", got, want)
	}
}
