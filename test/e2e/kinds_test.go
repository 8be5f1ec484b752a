//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// One gated pod waits for a ConfigMap key, a CRD, a CEL expression over a
// ConfigMap and a quorum of two ready endpoints. Each is made ready in turn; the
// gate stays and the condition names exactly what still blocks until the last one,
// then the controller removes the gate and the app runs.
func TestNewKindsGated(t *testing.T) {
	defer noPanic(t)
	ns := bareNamespace(t, "e2e-kinds")
	ctx := context.Background()
	const appOutput = "web: runs after all five"
	t.Cleanup(func() {
		if t.Failed() {
			dumpGate(t, ns)
		}
	})
	// Unique per namespace: CRDs are cluster-scoped, and a rerun must not find
	// the one of an earlier run.
	group := ns + ".e2e.example.com"
	crdName := "widgets." + group

	app := appDeployment("web", map[string]string{
		"entrypoint.io/dependency-configmap": "settings/region",
		"entrypoint.io/dependency-crd":       crdName,
		"entrypoint.io/dependency-cel":       `[{"apiVersion":"v1","kind":"ConfigMap","name":"phase","expression":"object.data.phase == 'ready'"}]`,
		"entrypoint.io/dependency-service":   "db#2",
		inject.AnnotationGate:                "true",
	}, container("web", "print", appOutput))
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, app, metav1.CreateOptions{})
	must(t, err)

	var podName string
	eventually(t, "the gated pod's condition", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := onlyPod(ctx, ns, "web")
		if p == nil || err != nil {
			return false, err
		}
		podName = p.Name
		return podCondition(p, api.ConditionType) != nil, nil
	})
	// blocks waits until the condition names each of want and none of gone, with
	// the gate still on the pod.
	blocks := func(step string, want, gone []string) {
		t.Helper()
		var last string
		eventually(t, step, time.Minute, func(ctx context.Context) (bool, error) {
			p, err := cs.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if !hasGate(p) {
				t.Fatalf("%s: the gate went while the condition said %q", step, last)
			}
			c := podCondition(p, api.ConditionType)
			if c == nil || c.Status != corev1.ConditionFalse {
				return false, nil
			}
			last = c.Message
			for _, w := range want {
				if !strings.Contains(c.Message, w) {
					return false, nil
				}
			}
			for _, g := range gone {
				if strings.Contains(c.Message, g) {
					return false, nil
				}
			}
			return true, nil
		})
		t.Logf("%s: %s", step, last)
	}
	cmBlocker := "configmap " + ns + "/settings/region"
	crdBlocker := "crd " + crdName
	celBlocker := "cel v1 ConfigMap " + ns + "/phase"
	svcBlocker := "service " + ns + "/db"
	blocks("nothing exists", []string{cmBlocker + ": not found", crdBlocker + ": not found", celBlocker + ": not found", svcBlocker}, nil)

	configMap := func(name string, data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}
	}
	settings, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap("settings", map[string]string{"zone": "a"}), metav1.CreateOptions{})
	must(t, err)
	blocks("the ConfigMap without the key", []string{cmBlocker + ": no key region"}, []string{cmBlocker + ": not found"})
	settings.Data["region"] = "eu-west"
	_, err = cs.CoreV1().ConfigMaps(ns).Update(ctx, settings, metav1.UpdateOptions{})
	must(t, err)
	blocks("the key added", []string{crdBlocker, celBlocker, svcBlocker}, []string{cmBlocker})

	ext, err := apiextensions.NewForConfig(restConfig)
	must(t, err)
	_, err = ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, widgetCRD(group), metav1.CreateOptions{})
	must(t, err)
	t.Cleanup(func() {
		_ = ext.ApiextensionsV1().CustomResourceDefinitions().Delete(context.Background(), crdName, metav1.DeleteOptions{})
	})
	blocks("the CRD established", []string{celBlocker, svcBlocker}, []string{crdBlocker})

	phase, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap("phase", map[string]string{"phase": "pending"}), metav1.CreateOptions{})
	must(t, err)
	blocks("the expression false", []string{celBlocker + `: "object.data.phase == 'ready'" is false`, svcBlocker}, []string{celBlocker + ": not found"})
	phase.Data["phase"] = "ready"
	_, err = cs.CoreV1().ConfigMaps(ns).Update(ctx, phase, metav1.UpdateOptions{})
	must(t, err)
	blocks("the expression true", []string{svcBlocker}, []string{celBlocker})

	// A quorum of two: one ready endpoint is not enough.
	db, svc := database("db")
	_, err = cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	must(t, err)
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, db, metav1.CreateOptions{})
	must(t, err)
	blocks("one of two endpoints ready", []string{svcBlocker + ": 1 of 2 required endpoints ready"}, nil)

	db, err = cs.AppsV1().Deployments(ns).Get(ctx, "db", metav1.GetOptions{})
	must(t, err)
	db.Spec.Replicas = ptr.To[int32](2)
	_, err = cs.AppsV1().Deployments(ns).Update(ctx, db, metav1.UpdateOptions{})
	must(t, err)
	eventually(t, "the gate removed once two endpoints are ready", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return !hasGate(p), nil
	})
	eventually(t, "the app runs", 2*time.Minute, func(ctx context.Context) (bool, error) {
		return appPrinted(podLogs(ctx, ns, podName, "web"), appOutput), nil
	})
}

// widgetCRD is a namespaced CRD of the group, served at once (the API server
// marks it Established by itself).
func widgetCRD(group string) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
}

// The resolver reads a Secret by name with the narrowest grant there is (get on
// that one Secret), waits for its key, and then, when the Job it also waits for
// fails, ends with exit code 4 naming the Job, without ever starting the app; the
// Secret's value is nowhere in its log.
func TestSecretThenFailedJob(t *testing.T) {
	defer noPanic(t)
	ns := namespace(t, "e2e-secret-job")
	ctx := context.Background()
	const appOutput = "web: must never run"
	const value = "s3cr3t-value-never-logged"

	_, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "read-db-creds"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"db-creds"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{})
	must(t, err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "read-db-creds"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "read-db-creds"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "app", Namespace: ns}},
	}, metav1.CreateOptions{})
	must(t, err)

	// A bare pod that never restarts: its one run's exit code and log are what
	// this test reads.
	tmpl := appDeployment("web", map[string]string{
		"entrypoint.io/dependency-secret": "db-creds/password",
		"entrypoint.io/dependency-job":    "migrate",
	}, container("web", "print", appOutput)).Spec.Template
	const podName = "web"
	pod := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
	pod.Name = podName
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	_, err = cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	must(t, err)
	eventually(t, "the app's container runs the resolver", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return containerRunning(p, "web"), nil
	})
	logs := func(ctx context.Context) string { return podLogs(ctx, ns, podName, "web") }
	eventually(t, "the resolver names the missing Secret", 30*time.Second, func(ctx context.Context) (bool, error) {
		return strings.Contains(logs(ctx), "secret "+ns+"/db-creds"), nil
	})

	secret, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db-creds"},
		StringData: map[string]string{"user": "web"},
	}, metav1.CreateOptions{})
	must(t, err)
	eventually(t, "the resolver says the key is missing", 30*time.Second, func(ctx context.Context) (bool, error) {
		return strings.Contains(logs(ctx), "no key password"), nil
	})
	secret.StringData = map[string]string{"password": value}
	_, err = cs.CoreV1().Secrets(ns).Update(ctx, secret, metav1.UpdateOptions{})
	must(t, err)

	job := migrationJob("migrate", "0")
	job.Spec.Template.Spec.Containers[0].Args = []string{"no-such-mode"} // testapp exits 2
	_, err = cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	must(t, err)

	var exit *corev1.ContainerStateTerminated
	eventually(t, "the resolver exits 4 on the failed Job", 2*time.Minute, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, podName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, s := range p.Status.ContainerStatuses {
			if s.Name != "web" {
				continue
			}
			if s.State.Terminated != nil {
				exit = s.State.Terminated
				return true, nil
			}
		}
		return false, nil
	})
	if exit.ExitCode != 4 {
		t.Errorf("the resolver exited %d (%s), want 4", exit.ExitCode, exit.Reason)
	}
	l := logs(ctx)
	if !strings.Contains(l, "job "+ns+"/migrate failed") {
		t.Errorf("the resolver's log does not name the failed Job:\n%s", l)
	}
	if !strings.Contains(l, "no key password") {
		t.Errorf("the resolver's log lost its earlier waiting line:\n%s", l)
	}
	if appPrinted(l, appOutput) {
		t.Errorf("the app ran although its Job failed:\n%s", l)
	}
	if strings.Contains(l, value) {
		t.Errorf("the Secret's value is in the resolver's log:\n%s", l)
	}
	t.Logf("logs of the resolver:\n%s", l)
}

// An optional dependency: the app starts after optional-after although the Service
// it waits for never appears, and a Warning Event says what it started without.
func TestOptionalDependency(t *testing.T) {
	defer noPanic(t)
	ns := namespace(t, "e2e-optional")
	ctx := context.Background()
	const appOutput = "web: started without its cache"

	app := appDeployment("web", map[string]string{
		"entrypoint.io/dependency-service": "cache",
		"entrypoint.io/optional-after":     "5s",
	}, container("web", "print", appOutput))
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, app, metav1.CreateOptions{})
	must(t, err)
	var podName string
	eventually(t, "the app runs without its dependency", 2*time.Minute, func(ctx context.Context) (bool, error) {
		p, err := onlyPod(ctx, ns, "web")
		if p == nil || err != nil {
			return false, err
		}
		podName = p.Name
		return appPrinted(podLogs(ctx, ns, p.Name, "web"), appOutput), nil
	})
	eventually(t, "a Warning Event names the missing Service", 30*time.Second, func(ctx context.Context) (bool, error) {
		events, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + podName})
		if err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if e.Type == corev1.EventTypeWarning && e.Reason == "StartedWithoutDependencies" && strings.Contains(e.Message, "service "+ns+"/cache") {
				t.Logf("event: %s", e.Message)
				return true, nil
			}
		}
		return false, nil
	})
}

// A Job deleted by its TTL after it succeeded still counts in gate mode: a gated app
// waiting for it is released; the Job is deleted by kube-controller-manager's TTL
// controller; a second gated app created after that is released too, by the
// completion the controller remembers, once it is 30 s old, and its condition says so.
func TestJobDeletedByTTLGated(t *testing.T) {
	defer noPanic(t)
	ns := bareNamespace(t, "e2e-ttl")
	ctx := context.Background()
	t.Cleanup(func() {
		if t.Failed() {
			dumpGate(t, ns)
		}
	})
	gatedApp := func(name string) string {
		t.Helper()
		_, err := cs.AppsV1().Deployments(ns).Create(ctx, appDeployment(name, map[string]string{
			"entrypoint.io/dependency-job": "init",
			inject.AnnotationGate:          "true",
		}, container("web", "print", name+": runs")), metav1.CreateOptions{})
		must(t, err)
		var podName string
		eventually(t, name+" waits gated", time.Minute, func(ctx context.Context) (bool, error) {
			p, err := onlyPod(ctx, ns, name)
			if p == nil || err != nil {
				return false, err
			}
			podName = p.Name
			c := podCondition(p, api.ConditionType)
			return hasGate(p) && c != nil && c.Status == corev1.ConditionFalse, nil
		})
		return podName
	}
	released := func(name, pod string, timeout time.Duration) *corev1.PodCondition {
		t.Helper()
		var cond *corev1.PodCondition
		eventually(t, name+" released and running", timeout, func(ctx context.Context) (bool, error) {
			p, err := cs.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			cond = podCondition(p, api.ConditionType)
			return !hasGate(p) && appPrinted(podLogs(ctx, ns, pod, "web"), name+": runs"), nil
		})
		return cond
	}

	first := gatedApp("first")
	job := migrationJob("init", "1")
	job.Spec.TTLSecondsAfterFinished = ptr.To[int32](0)
	_, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	must(t, err)
	released("first", first, 2*time.Minute)
	eventually(t, "the TTL controller deletes the Job", 2*time.Minute, func(ctx context.Context) (bool, error) {
		_, err := cs.BatchV1().Jobs(ns).Get(ctx, "init", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})

	second := gatedApp("second")
	c := released("second", second, 2*time.Minute)
	if c == nil || !strings.Contains(c.Message, "job "+ns+"/init succeeded at") || !strings.Contains(c.Message, "(deleted since)") {
		t.Errorf("the second app's condition does not name the remembered completion: %+v", c)
	}
	if c != nil {
		t.Logf("second app's condition: %s", c.Message)
	}
}
