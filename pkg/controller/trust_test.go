package controller

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testpods"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/access"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/kube"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// The attacks of the controller as a trust boundary, each on the real API
// server: whoever creates a pod may make the controller read only what the
// pod's ServiceAccount may read, and learns no value.

// capturedLog keeps every log line of a controller, to look for values in it.
type capturedLog struct {
	mu    sync.Mutex
	lines []string
}

func (c *capturedLog) logger(t *testing.T) logr.Logger {
	return funcr.New(func(prefix, args string) {
		c.mu.Lock()
		c.lines = append(c.lines, prefix+" "+args)
		c.mu.Unlock()
		t.Log(prefix, args)
	}, funcr.Options{Verbosity: 1})
}

func (c *capturedLog) contains(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// noLeak fails when value appears in the pod's condition, its Events or the
// controller's log.
func noLeak(t *testing.T, ns, pod, value string, logs *capturedLog) {
	t.Helper()
	p, err := env.Client.CoreV1().Pods(ns).Get(context.Background(), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(conditionsOf(p), value) {
		t.Errorf("the pod's conditions hold the value %q: %s", value, conditionsOf(p))
	}
	events, err := env.Client.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "regarding.name=" + pod})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if strings.Contains(e.Note, value) {
			t.Errorf("Event %s holds the value %q: %s", e.Reason, value, e.Note)
		}
	}
	if logs != nil && logs.contains(value) {
		t.Errorf("the controller's log holds the value %q", value)
	}
}

// withServiceAccount names the pod's ServiceAccount.
func withServiceAccount(p *corev1.Pod, sa string) *corev1.Pod {
	p.Spec.ServiceAccountName = sa
	return p
}

func watching(r *Reconciler, gvr schema.GroupVersionResource) bool {
	r.kinds.mu.Lock()
	defer r.kinds.mu.Unlock()
	_, ok := r.kinds.kinds[gvr]
	return ok
}

// grantGet lets ns's... ServiceAccount sa of saNS get the named objects of
// resource in ns.
func grantGet(t *testing.T, ns, resource, name, saNS, sa string) {
	t.Helper()
	ctx := context.Background()
	roleName := "read-" + name
	if _, err := env.Client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: roleName},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{resource}, ResourceNames: []string{name}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: roleName},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: roleName},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: saNS}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A tenant's pod names another namespace's ConfigMap with the right guess of a
// value, by a custom-resource field and by a CEL expression. Until the pod's
// ServiceAccount may get that ConfigMap, the gate stays, the condition says
// which RBAC is missing and nothing of the object, no ConfigMap is watched for
// it, and the value appears nowhere; once a RoleBinding grants get, the pod is
// released.
func TestConfusedDeputyCrossNamespace(t *testing.T) {
	const secretValue = "s3cret-value-of-victim"
	for _, tc := range []struct{ name, kind, items string }{
		{"custom resource", spec.EnvCustomResources, `[{"apiVersion":"v1","kind":"ConfigMap","namespace":"%s","name":"creds","fields":[{"key":"data.password","value":"` + secretValue + `"}]}]`},
		{"cel", spec.EnvCEL, `[{"apiVersion":"v1","kind":"ConfigMap","namespace":"%s","name":"creds","expression":"object.data.password == '` + secretValue + `'"}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &capturedLog{}
			startControllerWith(t, env.Config, nil, func(o *Options) {
				o.Log = logs.logger(t)
				o.Access = access.NewChecker(env.Client.AuthorizationV1().SubjectAccessReviews(), access.Options{DeniedFor: time.Second})
			})
			victim, tenant := env.Namespace(t), env.Namespace(t)
			ctx := context.Background()
			if _, err := env.Client.CoreV1().ConfigMaps(victim).Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: "creds"}, Data: map[string]string{"password": secretValue},
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			createPod(t, withServiceAccount(managedPod(t, tenant, "app", map[string]string{tc.kind: fmt.Sprintf(tc.items, victim)}, inject.SchedulingGate), "app"))
			deleteAfter(t, tenant, "app")
			missing := fmt.Sprintf(`serviceaccount %s/app may not get configmaps "creds" in %s: grant it get on configmaps with a Role in %s`, tenant, victim, victim)
			waitPod(t, tenant, "app", "the missing RBAC named", hasCondition(corev1.ConditionFalse, ReasonWaiting, missing))
			// Refused for a while (several reviews): never released.
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				p, err := env.Client.CoreV1().Pods(tenant).Get(ctx, "app", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if gateIndex(p) < 0 {
					t.Fatalf("released with a right guess and no right to read: %s", conditionsOf(p))
				}
			}
			noLeak(t, tenant, "app", secretValue, logs)

			grantGet(t, victim, "configmaps", "creds", tenant, "app")
			waitPod(t, tenant, "app", "released once the pod may get the ConfigMap", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
			noLeak(t, tenant, "app", secretValue, logs)
		})
	}
}

// A dependency on the pod's own namespace needs no RBAC: the ServiceAccount may
// read nothing, and the pod is judged and released. A wrong value is named by
// its field alone.
func TestSameNamespaceNeedsNoRBAC(t *testing.T) {
	const actual = "actual-mode-value"
	logs := &capturedLog{}
	startControllerWith(t, env.Config, nil, func(o *Options) { o.Log = logs.logger(t) })
	ns := env.Namespace(t)
	ctx := context.Background()
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"mode": actual},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	createPod(t, withServiceAccount(managedPod(t, ns, "app", map[string]string{
		spec.EnvCustomResources: `[{"apiVersion":"v1","kind":"ConfigMap","name":"settings","fields":[{"key":"data.mode","value":"on"}]}]`,
	}, inject.SchedulingGate), "nobody"))
	deleteAfter(t, ns, "app")
	waitPod(t, ns, "app", "the field named without its value", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		"configmap "+ns+"/settings (v1): field data.mode does not match"))
	noLeak(t, ns, "app", actual, logs)

	cm.Data["mode"] = "on"
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, ns, "app", "released", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
}

// Kinds off the allow-list are never read, whoever asks: a Node by custom
// resource and Namespaces by CEL get a refusal, and no informer.
func TestKindsOffTheAllowList(t *testing.T) {
	r := startController(t, nil)
	ns := env.Namespace(t)
	createPod(t, managedPod(t, ns, "app", map[string]string{
		spec.EnvCustomResources: `[{"apiVersion":"v1","kind":"Node","name":"node-1","fields":[{"key":"metadata.name","value":"node-1"}]}]`,
		spec.EnvCEL:             `[{"apiVersion":"v1","kind":"Namespace","name":"kube-system","expression":"has(object.metadata.labels)"}]`,
	}, inject.SchedulingGate))
	deleteAfter(t, ns, "app")
	waitPod(t, ns, "app", "both refused", func(p *corev1.Pod) bool {
		return hasCondition(corev1.ConditionFalse, ReasonWaiting, "kind Node (nodes) is not one the dependency controller may read")(p) &&
			hasCondition(corev1.ConditionFalse, ReasonWaiting, "kind Namespace (namespaces) is not one")(p)
	})
	for _, gvr := range []schema.GroupVersionResource{{Version: "v1", Resource: "nodes"}, {Version: "v1", Resource: "namespaces"}} {
		if watching(r, gvr) {
			t.Errorf("the controller watches %s for a pod", gvr.Resource)
		}
	}
}

// A forged pod with 5,000 services (the webhook denies past spec.MaxItems) is
// judged not at all: TooManyDependencies, nothing indexed, nothing watched.
func TestForgedPodTooManyDependencies(t *testing.T) {
	r := startControllerWith(t, env.Config, nil, func(o *Options) { o.Dependencies = inject.Dependencies })
	ns := env.Namespace(t)
	services := make([]string, 5000)
	for i := range services {
		services[i] = fmt.Sprintf("svc-%d", i)
	}
	createPod(t, testpods.Forged(ns, "forged", map[string]string{spec.EnvServices: strings.Join(services, ",")}))
	deleteAfter(t, ns, "forged")
	waitPod(t, ns, "forged", "TooManyDependencies", hasCondition(corev1.ConditionFalse, ReasonTooManyDependencies,
		"5000 dependency items, more than 100"))
	if n := len(r.waiters.kinds()); n != 0 || watching(r, endpointSlicesResource) {
		t.Fatalf("the forged pod is indexed (%d kinds) or watched", n)
	}
}

// A forged pod naming another namespace's object asks only what its own
// ServiceAccount may read, as an injected one.
func TestForgedPodIsAuthorizedToo(t *testing.T) {
	startControllerWith(t, env.Config, nil, func(o *Options) { o.Dependencies = inject.Dependencies })
	victim, tenant := env.Namespace(t), env.Namespace(t)
	readySlice(t, victim, "db")
	createPod(t, testpods.Forged(tenant, "forged", map[string]string{spec.EnvServices: victim + ":db"}))
	deleteAfter(t, tenant, "forged")
	waitPod(t, tenant, "forged", "refused for lack of list on endpointslices", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		fmt.Sprintf("serviceaccount %s/default may not list endpointslices.discovery.k8s.io in %s", tenant, victim)))
}

// ConfigMaps are cached keys only: with large ConfigMaps in the cluster, the
// informer a pod starts holds none of their values.
func TestConfigMapsCachedKeysOnly(t *testing.T) {
	r := startController(t, nil)
	ns := env.Namespace(t)
	ctx := context.Background()
	big := strings.Repeat("v", 512<<10)
	for i := 0; i < 8; i++ {
		if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("big-%d", i)}, Data: map[string]string{"blob": big},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	createPod(t, managedPod(t, ns, "app", map[string]string{spec.EnvConfigMaps: "missing/key"}, inject.SchedulingGate))
	deleteAfter(t, ns, "app")
	waitPod(t, ns, "app", "judged", hasCondition(corev1.ConditionFalse, ReasonWaiting, "configmap "+ns+"/missing"))
	ki := r.kinds.get(kube.ConfigMapsResource)
	held, seen := 0, 0
	for _, item := range ki.informer.GetStore().List() {
		cm := item.(interface{ UnstructuredContent() map[string]any }).UnstructuredContent()
		data, _ := cm["data"].(map[string]any)
		for _, v := range data {
			seen++
			held += len(fmt.Sprint(v))
		}
	}
	if seen < 8 || held != 0 {
		t.Fatalf("the ConfigMap informer holds %d bytes of values over %d keys, want 0 bytes over at least 8", held, seen)
	}
}

// Control characters a pod's author put in its dependencies (a field key, a
// condition type) reach the condition escaped.
func TestConditionEscapesControlCharacters(t *testing.T) {
	startController(t, nil)
	ns := env.Namespace(t)
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createPod(t, managedPod(t, ns, "app", map[string]string{
		spec.EnvCustomResources: `[{"apiVersion":"v1","kind":"ConfigMap","name":"x","fields":[{"key":"data.a\u001b[2J\u202e","value":"1"}],` +
			`"conditions":[{"type":"Re\r\u009bady"}]}]`,
	}, inject.SchedulingGate))
	deleteAfter(t, ns, "app")
	p := waitPod(t, ns, "app", "a condition", hasCondition(corev1.ConditionFalse, ReasonWaiting, "is absent"))
	msg := findCondition(p).Message
	if !safetext.Safe(msg) || !strings.Contains(msg, `field data.a\x1b[2J\u202e is absent`) || !strings.Contains(msg, `condition Re\r\u009bady is absent`) {
		t.Fatalf("condition message %q is not escaped", msg)
	}
}

// Forged pods with hostile regular expressions (the webhook refuses them) are
// refused by the controller too, before anything is compiled: four such pods
// cost it little memory (compiling them once took a controller from idle to
// +929 MiB).
func TestForgedPodHostileRegex(t *testing.T) {
	startControllerWith(t, env.Config, nil, func(o *Options) { o.Dependencies = inject.Dependencies })
	ns := env.Namespace(t)
	call := `object.data.x.matches("(?:abcdefghijklmnopqrstuvwxyz0123456789){1000}")`
	expression := strings.Repeat(call+" || ", 5) + call
	items := make([]string, spec.MaxCELItems)
	for i := range items {
		items[i] = fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","name":"c%d","expression":%q}`, i, expression)
	}
	for i := range items {
		// The objects exist, so that the expressions would be evaluated.
		if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("c%d", i)}, Data: map[string]string{"x": "abc"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 4; i++ {
		name := fmt.Sprintf("forged-%d", i)
		createPod(t, testpods.Forged(ns, name, map[string]string{spec.EnvCEL: "[" + strings.Join(items, ",") + "]"}))
		deleteAfter(t, ns, name)
	}
	for i := 0; i < 4; i++ {
		waitPod(t, ns, fmt.Sprintf("forged-%d", i), "the expression refused", hasCondition(corev1.ConditionFalse, ReasonWaiting,
			"regular expression of over 36,002 instructions, more than 1,000"))
	}
	runtime.ReadMemStats(&after)
	const bound = 128 << 20
	if grew := after.TotalAlloc - before.TotalAlloc; grew > bound {
		t.Fatalf("judging 4 hostile pods allocated %d MiB, more than %d MiB", grew>>20, bound>>20)
	} else {
		t.Logf("judging 4 hostile pods allocated %d MiB in all", grew>>20)
	}
}
