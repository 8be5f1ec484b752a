package controller

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
)

// argoCDDir holds the Argo CD health checks of the owner summary.
const argoCDDir = "../../docs/argocd"

// argoCDScripts maps each Argo CD customization key's group_kind to its file.
func argoCDScripts() map[string]string {
	return map[string]string{
		"apps_Deployment":  "deployment.lua",
		"apps_StatefulSet": "statefulset.lua",
		"apps_DaemonSet":   "daemonset.lua",
		"batch_Job":        "job.lua",
		"batch_CronJob":    "cronjob.lua",
	}
}

func argoCDScript(t *testing.T, kind string) string {
	t.Helper()
	for key, file := range argoCDScripts() {
		if _, k, _ := strings.Cut(key, "_"); k == kind {
			data, err := os.ReadFile(filepath.Join(argoCDDir, file))
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
	}
	t.Fatalf("no Argo CD health check for %s", kind)
	return ""
}

// toLua converts a decoded JSON object as Argo CD hands it to a health script:
// objects and arrays become tables (arrays indexed from 1), numbers Lua numbers.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := l.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(l, e))
		}
		return t
	case []any:
		t := l.NewTable()
		for _, e := range v {
			t.Append(toLua(l, e))
		}
		return t
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	}
	return lua.LNil
}

// health runs an Argo CD health script on obj as Argo CD does: obj a global,
// the table the script returns read for status and message.
func health(t *testing.T, script string, obj map[string]any) (status, message string) {
	t.Helper()
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		t.Fatalf("the health script failed: %v", err)
	}
	hs, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("the health script returned %s, want a table", l.Get(-1).Type())
	}
	status = lua.LVAsString(hs.RawGetString("status"))
	message = lua.LVAsString(hs.RawGetString("message"))
	return status, message
}

func TestArgoCDHealthFallback(t *testing.T) {
	meta := func(annotations map[string]any) map[string]any {
		m := map[string]any{"name": "x", "generation": int64(2)}
		if annotations != nil {
			m["annotations"] = annotations
		}
		return m
	}
	waiting := func(v string) map[string]any { return map[string]any{api.AnnotationWaiting: v, "other": "kept"} }
	readyDeployment := map[string]any{"observedGeneration": int64(2), "replicas": int64(2), "updatedReplicas": int64(2), "availableReplicas": int64(2)}
	for _, tc := range []struct {
		name, kind string
		obj        map[string]any
		status     string
		message    string
	}{
		{"deployment waiting", "Deployment", map[string]any{"metadata": meta(waiting("Waiting: 1 of 2 pods wait for service ns/db")),
			"spec": map[string]any{"replicas": int64(2)}, "status": readyDeployment}, "Progressing", "Waiting: 1 of 2 pods wait for service ns/db"},
		{"deployment in a cycle", "Deployment", map[string]any{"metadata": meta(waiting("Cycle: 2 of 2 pods wait for service ns/db")),
			"spec": map[string]any{"replicas": int64(2)}, "status": readyDeployment}, "Degraded", "Cycle: 2 of 2 pods wait for service ns/db"},
		{"deployment with too many dependencies", "Deployment", map[string]any{"metadata": meta(waiting("TooManyDependencies: 1 of 1 pods wait")),
			"spec": map[string]any{"replicas": int64(1)}}, "Degraded", "TooManyDependencies: 1 of 1 pods wait"},
		{"deployment ready", "Deployment", map[string]any{"metadata": meta(nil), "spec": map[string]any{"replicas": int64(2)}, "status": readyDeployment}, "Healthy", ""},
		{"deployment generation not observed", "Deployment", map[string]any{"metadata": meta(nil), "spec": map[string]any{"replicas": int64(2)},
			"status": map[string]any{"observedGeneration": int64(1)}}, "Progressing", "Waiting for rollout to finish: observed deployment generation less than desired generation"},
		{"deployment rolling", "Deployment", map[string]any{"metadata": meta(nil), "spec": map[string]any{"replicas": int64(3)},
			"status": map[string]any{"observedGeneration": int64(2), "updatedReplicas": int64(1)}}, "Progressing", "Waiting for rollout to finish: 1 out of 3 new replicas have been updated..."},
		{"deployment unavailable", "Deployment", map[string]any{"metadata": meta(nil), "spec": map[string]any{"replicas": int64(2)},
			"status": map[string]any{"observedGeneration": int64(2), "replicas": int64(2), "updatedReplicas": int64(2), "availableReplicas": int64(1)}}, "Progressing", "Waiting for rollout to finish: 1 of 2 updated replicas are available..."},
		{"deployment past its deadline", "Deployment", map[string]any{"metadata": meta(nil), "spec": map[string]any{"replicas": int64(2)},
			"status": map[string]any{"observedGeneration": int64(2), "conditions": []any{map[string]any{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}}}}, "Degraded", "Deployment x exceeded its progress deadline"},
		{"deployment paused", "Deployment", map[string]any{"metadata": meta(nil), "spec": map[string]any{"paused": true}}, "Suspended", "Deployment is paused"},
		{"statefulset waiting", "StatefulSet", map[string]any{"metadata": meta(waiting("NoReadyNode: 1 of 3 pods wait for daemonset ns/ovs")),
			"spec": map[string]any{"replicas": int64(3)}}, "Progressing", "NoReadyNode: 1 of 3 pods wait for daemonset ns/ovs"},
		{"statefulset ready", "StatefulSet", map[string]any{"metadata": meta(nil), "spec": map[string]any{"replicas": int64(3)},
			"status": map[string]any{"observedGeneration": int64(2), "readyReplicas": int64(3), "currentRevision": "r1", "updateRevision": "r1"}}, "Healthy", ""},
		{"statefulset not ready", "StatefulSet", map[string]any{"metadata": meta(nil), "spec": map[string]any{"replicas": int64(3)},
			"status": map[string]any{"observedGeneration": int64(2), "readyReplicas": int64(1)}}, "Progressing", "Waiting for 2 pods to be ready..."},
		{"statefulset rolling", "StatefulSet", map[string]any{"metadata": meta(nil), "spec": map[string]any{"replicas": int64(1)},
			"status": map[string]any{"observedGeneration": int64(2), "readyReplicas": int64(1), "currentRevision": "r1", "updateRevision": "r2"}}, "Progressing", "waiting for statefulset rolling update to complete"},
		{"daemonset waiting", "DaemonSet", map[string]any{"metadata": meta(waiting("Waiting: 4 of 9 pods wait for service ns/db"))}, "Progressing", "Waiting: 4 of 9 pods wait for service ns/db"},
		{"daemonset ready", "DaemonSet", map[string]any{"metadata": meta(nil),
			"status": map[string]any{"observedGeneration": int64(2), "desiredNumberScheduled": int64(3), "updatedNumberScheduled": int64(3), "numberAvailable": int64(3)}}, "Healthy", ""},
		{"daemonset unavailable", "DaemonSet", map[string]any{"metadata": meta(nil),
			"status": map[string]any{"observedGeneration": int64(2), "desiredNumberScheduled": int64(3), "updatedNumberScheduled": int64(3), "numberAvailable": int64(2)}}, "Progressing", "Waiting for daemon set x rollout to finish: 2 of 3 updated pods are available..."},
		{"job waiting", "Job", map[string]any{"metadata": meta(waiting("Waiting: 1 of 1 pods wait for job ns/migrate"))}, "Progressing", "Waiting: 1 of 1 pods wait for job ns/migrate"},
		{"job complete", "Job", map[string]any{"metadata": meta(nil), "status": map[string]any{"conditions": []any{
			map[string]any{"type": "Complete", "status": "True", "message": "done"}}}}, "Healthy", "done"},
		{"job failed", "Job", map[string]any{"metadata": meta(nil), "status": map[string]any{"conditions": []any{
			map[string]any{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}}}}, "Degraded", "BackoffLimitExceeded"},
		{"job running", "Job", map[string]any{"metadata": meta(nil), "status": map[string]any{"active": int64(1)}}, "Progressing", "Job has 1 active pods"},
		{"cronjob waiting", "CronJob", map[string]any{"metadata": meta(waiting("Cycle: 1 of 1 pods wait for job ns/a"))}, "Degraded", "Cycle: 1 of 1 pods wait for job ns/a"},
		{"cronjob suspended", "CronJob", map[string]any{"metadata": meta(nil), "spec": map[string]any{"suspend": true}}, "Suspended", "CronJob is suspended"},
		{"cronjob", "CronJob", map[string]any{"metadata": meta(nil)}, "Healthy", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, message := health(t, argoCDScript(t, tc.kind), tc.obj)
			if status != tc.status || message != tc.message {
				t.Errorf("health = %s %q, want %s %q", status, message, tc.status, tc.message)
			}
		})
	}
}

// TestArgoCDValuesSnippet: the values for Argo CD's chart carry each script
// verbatim, under its customization key, and nothing else.
func TestArgoCDValuesSnippet(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(argoCDDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Configs struct {
			CM map[string]string `json:"cm"`
		} `json:"configs"`
	}
	if err := yaml.UnmarshalStrict(data, &values); err != nil {
		t.Fatalf("docs/argocd/values.yaml: %v", err)
	}
	scripts := argoCDScripts()
	var want []string
	for key, file := range scripts {
		want = append(want, "resource.customizations.health."+key)
		script, err := os.ReadFile(filepath.Join(argoCDDir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := values.Configs.CM["resource.customizations.health."+key]; got != string(script) {
			t.Errorf("values.yaml's resource.customizations.health.%s is not %s:\n%s", key, file, got)
		}
	}
	if got := slices.Sorted(maps.Keys(values.Configs.CM)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("values.yaml's configs.cm keys: %v, want %v", got, slices.Sorted(slices.Values(want)))
	}
}

// TestArgoCDHealthOnWrittenObjects runs the health checks on workloads as the
// controller annotated them on a real API server: waiting is Progressing with
// the summary, a cycle Degraded, and once no pod waits the kind's own health
// (Healthy, with a ready status).
func TestArgoCDHealthOnWrittenObjects(t *testing.T) {
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	ctx := context.Background()
	startControllerWith(t, env.Config, fixedCycles{ns + "/job-a": "job " + ns + "/job waits for service " + ns + "/db, served by job " + ns + "/job"},
		func(o *Options) { o.OwnerWriteInterval = 100 * time.Millisecond })
	deploy := createWorkload(t, dyn, ns, "Deployment", "web")
	job := createWorkload(t, dyn, ns, "Job", "job")
	for _, p := range []struct {
		name string
		ref  metav1.OwnerReference
	}{{"web-a", deploy}, {"web-b", deploy}, {"job-a", job}} {
		createPod(t, ownedPod(t, ns, p.name, p.ref, map[string]string{"DEPENDENCY_SERVICE": "db"}))
	}

	summary := "Waiting: 2 of 2 pods wait for service " + ns + "/db"
	u := waitWaiting(t, dyn, ns, "Deployment", "web", "the summary", is(summary))
	if status, message := health(t, argoCDScript(t, "Deployment"), u.Object); status != "Progressing" || message != summary {
		t.Errorf("a waiting Deployment: health %s %q, want Progressing %q", status, message, summary)
	}
	cycle := "Cycle: 1 of 1 pods wait for service " + ns + "/db"
	u = waitWaiting(t, dyn, ns, "Job", "job", "the cycle", is(cycle))
	if status, message := health(t, argoCDScript(t, "Job"), u.Object); status != "Degraded" || message != cycle {
		t.Errorf("a Job in a cycle: health %s %q, want Degraded %q", status, message, cycle)
	}

	readySlice(t, ns, "db")
	u = waitWaiting(t, dyn, ns, "Deployment", "web", "the annotation removed", unset)
	// No controller-manager runs here: the status the Deployment controller
	// would write once its two pods are available.
	status := map[string]any{"observedGeneration": u.GetGeneration(), "replicas": int64(2), "updatedReplicas": int64(2),
		"readyReplicas": int64(2), "availableReplicas": int64(2)}
	if err := unstructured.SetNestedField(u.Object, status, "status"); err != nil {
		t.Fatal(err)
	}
	u, err = dyn.Resource(workloadResource("Deployment")).Namespace(ns).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if status, message := health(t, argoCDScript(t, "Deployment"), u.Object); status != "Healthy" {
		t.Errorf("a ready Deployment no pod of which waits: health %s %q, want Healthy", status, message)
	}
}
