package install

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/api"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/controller"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// leaderElectionLease is the Lease entrypoint-webhook's controller replicas elect a
// leader with; the chart's Role names it.
const leaderElectionLease = controller.LeaseName

// controllerRules are all the dependency controller may do, with
// controller.secretDependencies or not, and with metrics (its /metrics
// authenticates with TokenReviews) or not; the read-only rules of
// controller.customResourceRules come after them.
func controllerRules(secrets, metrics bool) []rbacv1.PolicyRule {
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"pods/status"}, Verbs: []string{"patch"}},
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets"}, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"get"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs", "cronjobs"}, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims", "configmaps"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}},
		{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"apiregistration.k8s.io"}, Resources: []string{"apiservices"}, Verbs: []string{"list", "watch"}},
	}
	if secrets {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list", "watch"}})
	}
	rules = append(rules,
		rbacv1.PolicyRule{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		subjectAccessReviewsRule,
	)
	if metrics {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}})
	}
	return rules
}

// leaderElectionRules: create on Leases (no name is known before), the rest on its own.
var leaderElectionRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
	{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{leaderElectionLease}, Verbs: []string{"get", "update"}},
}

var (
	// namespacesRule: the webhook reads the gate-mode label of namespaces, controller or not.
	namespacesRule = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}}
	// cycleDetectorRule: the webhook's cycle detector follows the injected pods
	// and the Services, wherever the controller runs.
	cycleDetectorRule = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods", "services"}, Verbs: []string{"list", "watch"}}
	// subjectAccessReviewsRule: the webhook and the controller both ask what a
	// pod's ServiceAccount may read (and who may scrape their /metrics).
	subjectAccessReviewsRule = rbacv1.PolicyRule{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}}
)

// controllerSettings are the controller values an install was made with, and what
// they must render.
type controllerSettings struct {
	enabled, separate, leaderElect, gateAll, secrets bool
	// metrics.enabled (the controller authenticates its scrapers).
	metrics     bool
	replicas    int64
	qps, burst  string
	customRules []rbacv1.PolicyRule
	// allowed is the controller's --allowed-custom-resources, from customRules.
	allowed string
}

var defaultController = controllerSettings{enabled: true, separate: true, leaderElect: true, metrics: true, replicas: 1, qps: "1000", burst: "2000"}

// Each chart combination and kustomize build renders exactly the controller's rules
// its settings ask for, bound to the ServiceAccount of the Deployment that runs the
// controller (its own, or the webhook's in one process), and the matching flags on
// each Deployment; the webhook's ServiceAccount, when the controller runs apart,
// writes no pod and holds no Lease: a rule missing, broader, left over or bound to
// the wrong ServiceAccount, or a flag out of step, fails here.
func TestControllerRBACAndFlags(t *testing.T) {
	custom := []rbacv1.PolicyRule{
		{APIGroups: []string{"example.com"}, Resources: []string{"databases", "caches"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"mq.example.org"}, Resources: []string{"queues"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"cache.example.net"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch"}},
	}
	with := func(f func(*controllerSettings)) controllerSettings {
		s := defaultController
		f(&s)
		return s
	}
	want := map[string]controllerSettings{
		"default":       defaultController,
		"self-signed":   defaultController,
		"issuer-ignore": defaultController,
		"single-node":   with(func(s *controllerSettings) { s.leaderElect = false }),
		"bindings": with(func(s *controllerSettings) {
			s.gateAll, s.customRules = true, custom
			s.allowed = "databases.example.com,caches.example.com,queues.mq.example.org,*.cache.example.net"
		}),
		"resources": {separate: true, leaderElect: true, replicas: 1, qps: "50", burst: "100"},
		"one-process": with(func(s *controllerSettings) {
			s.separate, s.secrets, s.allowed = false, true, "databases.example.com"
			s.customRules = []rbacv1.PolicyRule{{APIGroups: []string{"example.com"}, Resources: []string{"databases"}, Verbs: []string{"get", "list", "watch"}}}
		}),
		"controller": with(func(s *controllerSettings) { s.secrets, s.replicas, s.qps, s.burst = true, 2, "200", "400" }),
	}
	installs := map[string][]*unstructured.Unstructured{
		"kustomize build config/default":     parseObjects(t, kustomizeBuild(t, kustomizeDir)),
		"kustomize build config/self-signed": parseObjects(t, kustomizeBuild(t, filepath.Join(repoRoot, "config", "self-signed"))),
	}
	settings := map[string]controllerSettings{
		"kustomize build config/default":     defaultController,
		"kustomize build config/self-signed": defaultController,
	}
	if len(want) != len(combinations) {
		t.Fatalf("settings for %d combinations, there are %d: add the new one here", len(want), len(combinations))
	}
	for _, name := range combinations {
		installs["chart "+name] = parseObjects(t, mustRender(t, releaseNamespace, readValues(t, name)).Manifest)
		settings["chart "+name] = want[name]
	}
	for install, objs := range installs {
		t.Run(install, func(t *testing.T) {
			assertControllerInstall(t, objs, settings[install])
		})
	}
}

// deployment returns the install's Deployment whose name ends in suffix, or nil.
func deployment(objs []*unstructured.Unstructured, suffix string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == "Deployment" && strings.HasSuffix(o.GetName(), suffix) {
			return o
		}
	}
	return nil
}

// container is the first container of a Deployment: its args and env.
func container(t *testing.T, deploy *unstructured.Unstructured) corev1.Container {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		t.Fatalf("%s has no container", objectKey(deploy))
	}
	var c corev1.Container
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(containers[0].(map[string]any), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// serviceAccountOf is the ServiceAccount a Deployment's pods run as, as a subject.
func serviceAccountOf(deploy *unstructured.Unstructured) rbacv1.Subject {
	sa, _, _ := unstructured.NestedString(deploy.Object, "spec", "template", "spec", "serviceAccountName")
	return rbacv1.Subject{Kind: "ServiceAccount", Name: sa, Namespace: deploy.GetNamespace()}
}

// boundRules are the rules of every role the install binds to subject, by
// "ClusterRole /name" or "Role namespace/name".
func boundRules(t *testing.T, objs []*unstructured.Unstructured, subject rbacv1.Subject) map[string][]rbacv1.PolicyRule {
	t.Helper()
	roles := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" || o.GetKind() == "Role" {
			roles[objectKey(o)] = o
		}
	}
	bound := map[string][]rbacv1.PolicyRule{}
	for _, o := range objs {
		if o.GetKind() != "ClusterRoleBinding" && o.GetKind() != "RoleBinding" {
			continue
		}
		var b rbacv1.RoleBinding // a ClusterRoleBinding has the same fields, bar the namespace
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &b); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(b.Subjects, subject) {
			continue
		}
		key := b.RoleRef.Kind + " /" + b.RoleRef.Name
		if b.RoleRef.Kind == "Role" {
			key = "Role " + o.GetNamespace() + "/" + b.RoleRef.Name
		}
		role := roles[key]
		if role == nil {
			t.Errorf("%s binds %s to %s, which the install does not have", objectKey(o), subject.Name, key)
			continue
		}
		bound[key] = policyRules(t, role)
	}
	return bound
}

// writesPods says whether a rule lets its holder change pods or their subresources.
func writesPods(r rbacv1.PolicyRule) bool {
	if !slices.Contains(r.APIGroups, "") && !slices.Contains(r.APIGroups, "*") {
		return false
	}
	onPods := slices.ContainsFunc(r.Resources, func(res string) bool { return res == "pods" || strings.HasPrefix(res, "pods/") || res == "*" })
	writes := slices.ContainsFunc(r.Verbs, func(v string) bool { return !slices.Contains([]string{"get", "list", "watch"}, v) })
	return onPods && writes
}

func assertControllerInstall(t *testing.T, objs []*unstructured.Unstructured, want controllerSettings) {
	t.Helper()
	webhookDeploy, controllerDeploy := deployment(objs, "-webhook"), deployment(objs, "-controller")
	if webhookDeploy == nil {
		t.Fatal("no webhook Deployment (*-webhook)")
	}
	separate := want.enabled && want.separate
	if (controllerDeploy != nil) != separate {
		t.Fatalf("a Deployment of the controller's own: %v, want %v", controllerDeploy != nil, separate)
	}
	runner := webhookDeploy // the Deployment that runs the controller
	if separate {
		runner = controllerDeploy
	}
	webhookSA, controllerSA := serviceAccountOf(webhookDeploy), serviceAccountOf(runner)
	if separate && webhookSA == controllerSA {
		t.Errorf("the webhook and the controller run as one ServiceAccount, %s", webhookSA.Name)
	}

	controllerRole, leaseRole := "", ""
	for key, rules := range boundRules(t, objs, controllerSA) {
		switch {
		case strings.HasPrefix(key, "ClusterRole ") && strings.HasSuffix(key, "-controller"):
			controllerRole = key
			if wantRules := append(controllerRules(want.secrets, want.metrics), want.customRules...); !reflect.DeepEqual(rules, wantRules) {
				t.Errorf("%s has the rules\n%s\nwant\n%s", key, toJSON(rules), toJSON(wantRules))
			}
		case strings.HasPrefix(key, "Role ") && strings.HasSuffix(key, "-controller-leader-election"):
			leaseRole = key
			if !reflect.DeepEqual(rules, leaderElectionRules) {
				t.Errorf("%s has the rules\n%s\nwant\n%s", key, toJSON(rules), toJSON(leaderElectionRules))
			}
		case separate:
			// The controller's own ServiceAccount has the controller's roles only.
			t.Errorf("the controller's ServiceAccount %s is bound to %s too: %s", controllerSA.Name, key, toJSON(rules))
		}
		// Whatever the role, the controller's grants stay where they belong.
		for _, r := range rules {
			if slices.Contains(r.Resources, "leases") && !strings.HasPrefix(key, "Role ") {
				t.Errorf("%s grants Leases cluster-wide: %s", key, toJSON(r))
			}
			if slices.Contains(r.Resources, "pods") && (slices.Contains(r.Verbs, "update") || slices.Contains(r.Verbs, "delete") || slices.Contains(r.Verbs, "*")) {
				t.Errorf("%s lets the controller's ServiceAccount change or delete pods beyond a patch: %s", key, toJSON(r))
			}
		}
	}
	if (controllerRole != "") != want.enabled {
		t.Errorf("controller enabled %v, but the controller's ClusterRole bound to %s is %q", want.enabled, controllerSA.Name, controllerRole)
	}
	if wantLease := want.enabled && want.leaderElect; (leaseRole != "") != wantLease {
		t.Errorf("leader election %v, but the Lease Role bound to %s is %q", wantLease, controllerSA.Name, leaseRole)
	}

	// The webhook's own ClusterRole: Namespaces, SubjectAccessReviews, and the
	// cycle detector's read where the controller runs (here or apart); when the
	// controller runs apart, no write on pods and no Lease.
	webhookRole := false
	for key, rules := range boundRules(t, objs, webhookSA) {
		has := func(r rbacv1.PolicyRule) bool {
			return slices.ContainsFunc(rules, func(x rbacv1.PolicyRule) bool { return reflect.DeepEqual(x, r) })
		}
		if strings.HasPrefix(key, "ClusterRole ") && strings.HasSuffix(key, "-webhook") {
			webhookRole = true
			if !has(namespacesRule) {
				t.Errorf("%s does not let the webhook read Namespaces (their label entrypoint.io/gate): %s", key, toJSON(rules))
			}
			if !has(subjectAccessReviewsRule) {
				t.Errorf("%s does not let the webhook create SubjectAccessReviews: %s", key, toJSON(rules))
			}
			if has(cycleDetectorRule) != want.enabled {
				t.Errorf("%s lets the webhook list and watch pods and Services: %v, want %v (the cycle detector runs with the controller)", key, has(cycleDetectorRule), want.enabled)
			}
		}
		if !separate {
			continue
		}
		for _, r := range rules {
			if writesPods(r) || slices.Contains(r.Resources, "leases") {
				t.Errorf("%s gives the webhook's ServiceAccount %s, though the controller runs apart: %s", key, webhookSA.Name, toJSON(r))
			}
		}
	}
	if !webhookRole {
		t.Errorf("no ClusterRole *-webhook bound to the webhook's ServiceAccount %s", webhookSA.Name)
	}

	// The flags, on each Deployment.
	args := container(t, webhookDeploy).Args
	wantArgs := []string{"--kube-api-qps=" + want.qps, "--kube-api-burst=" + want.burst}
	switch {
	case separate:
		wantArgs = append(wantArgs, "--controller=false", "--controller-separate=true")
	case want.enabled:
		wantArgs = append(wantArgs, "--controller=true", fmt.Sprintf("--leader-elect=%v", want.leaderElect))
	default:
		wantArgs = append(wantArgs, "--controller=false")
	}
	for _, a := range wantArgs {
		if !slices.Contains(args, a) {
			t.Errorf("the webhook's args lack %s: %q", a, args)
		}
	}
	if separate && slices.ContainsFunc(args, func(a string) bool {
		return strings.HasPrefix(a, "--leader-elect") || strings.HasPrefix(a, "--allowed-custom-resources")
	}) {
		t.Errorf("the webhook has the controller's flags, though the controller runs apart: %q", args)
	}
	if got := slices.Contains(args, "--gate-all-namespaces"); got != want.gateAll {
		t.Errorf("--gate-all-namespaces in the webhook's args: %v, want %v (%q)", got, want.gateAll, args)
	}
	if got := slices.Contains(args, "--secret-dependencies"); got != (want.enabled && want.secrets) {
		t.Errorf("--secret-dependencies in the webhook's args: %v, want %v (%q)", got, want.enabled && want.secrets, args)
	}
	if separate {
		cargs := container(t, controllerDeploy).Args
		wantArgs := []string{"--webhook=false", "--controller=true", fmt.Sprintf("--leader-elect=%v", want.leaderElect),
			"--kube-api-qps=" + want.qps, "--kube-api-burst=" + want.burst}
		for _, a := range wantArgs {
			if !slices.Contains(cargs, a) {
				t.Errorf("the controller's args lack %s: %q", a, cargs)
			}
		}
		if got := slices.Contains(cargs, "--secret-dependencies"); got != want.secrets {
			t.Errorf("--secret-dependencies in the controller's args: %v, want %v (%q)", got, want.secrets, cargs)
		}
		if slices.Contains(cargs, "--gate-all-namespaces") || slices.Contains(cargs, "--controller-separate=true") {
			t.Errorf("the controller has the webhook's flags: %q", cargs)
		}
		if replicas, _, _ := nestedNumber(controllerDeploy.Object, "spec", "replicas"); replicas != want.replicas {
			t.Errorf("the controller's Deployment has %d replicas, want %d", replicas, want.replicas)
		}
		args = cargs
	}
	// The controller's allow-list of custom resources, on whichever Deployment
	// runs it, follows its RBAC rules.
	allowed := ""
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--allowed-custom-resources="); ok {
			allowed = v
		}
	}
	if allowed != want.allowed {
		t.Errorf("--allowed-custom-resources=%q, want %q", allowed, want.allowed)
	}

	// Go's memory limit comes from each container's own limit, never GOMEMLIMIT.
	for _, d := range []*unstructured.Unstructured{webhookDeploy, controllerDeploy} {
		if d == nil {
			continue
		}
		c := container(t, d)
		i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "MEMORY_LIMIT" })
		if i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.ResourceFieldRef == nil || c.Env[i].ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
			t.Errorf("%s: no MEMORY_LIMIT from the downward API's limits.memory: %+v", objectKey(d), c.Env)
		}
		if slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" }) {
			t.Errorf("%s sets GOMEMLIMIT", objectKey(d))
		}
		if c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s has no memory limit", objectKey(d))
		}
	}
}

func policyRules(t *testing.T, role *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	var r rbacv1.ClusterRole // a Role has the same rules
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(role.Object, &r); err != nil {
		t.Fatalf("%s: %v", objectKey(role), err)
	}
	return r.Rules
}

// access is one SelfSubjectAccessReview and the answer it must get.
type access struct {
	attr authorizationv1.ResourceAttributes
	want bool
}

// assertAccessReviews asks the API server, as cs, whether each attribute is allowed.
// The RBAC authorizer learns of a binding just created through its informer: answers
// are asked again for up to 10 s before a difference counts.
func assertAccessReviews(t *testing.T, who string, cs kubernetes.Interface, cases []access) {
	t.Helper()
	var wrong []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		wrong = nil
		for _, c := range cases {
			review, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(),
				&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &c.attr}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if review.Status.Allowed != c.want {
				a := c.attr
				wrong = append(wrong, fmt.Sprintf("%s may %s %s%s in namespace %q name %q: %v, want %v %s", who, a.Verb, a.Resource, subresource(a),
					a.Namespace, a.Name, review.Status.Allowed, c.want, review.Status.Reason))
			}
		}
		if len(wrong) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, w := range wrong {
		t.Error(w)
	}
}

func subresource(a authorizationv1.ResourceAttributes) string {
	s := ""
	if a.Group != "" {
		s = "." + a.Group
	}
	if a.Subresource != "" {
		s += "/" + a.Subresource
	}
	return s
}

// The controller's RBAC, applied for real and used with the controller
// ServiceAccount's own token: everything the controller does is allowed, and the
// neighbouring verbs, resources, namespaces and names are refused. The webhook's
// ServiceAccount, apart from it, reads what the cycle detector follows and writes no
// pod; with the controller in its process, it has the controller's rights; with the
// controller off, it keeps only the webhook's own.
func TestControllerRBACOnAPIServer(t *testing.T) {
	env := controlPlane(t)
	ctx := context.Background()
	a := newApplier(t, env.Config)

	// install applies the release's ServiceAccounts and RBAC, and returns clients
	// as the webhook's and as the controller's ServiceAccount (the same one
	// without a Deployment of the controller's own).
	install := func(name string, controller map[string]any) (webhook, ctrl kubernetes.Interface) {
		createNamespace(t, env, name)
		objs := parseObjects(t, mustRender(t, name, map[string]any{"fullnameOverride": name, "controller": controller}).Manifest)
		for _, o := range objs {
			switch o.GetKind() {
			case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
				if _, err := a.apply(ctx, o, true); err != nil {
					t.Fatalf("applying %s: %v", objectKey(o), err)
				}
			}
		}
		webhookSA := serviceAccountOf(deployment(objs, "-webhook")).Name
		controllerSA := webhookSA
		if d := deployment(objs, "-controller"); d != nil {
			controllerSA = serviceAccountOf(d).Name
		}
		return kubernetes.NewForConfigOrDie(serviceAccountConfig(t, env, name, webhookSA)),
			kubernetes.NewForConfigOrDie(serviceAccountConfig(t, env, name, controllerSA))
	}
	res := func(group, resource, sub, verb, ns, name string) authorizationv1.ResourceAttributes {
		return authorizationv1.ResourceAttributes{Group: group, Resource: resource, Subresource: sub, Verb: verb, Namespace: ns, Name: name}
	}

	const on = "ke-controller-rbac"
	webhook, cs := install(on, map[string]any{"customResourceRules": []any{
		map[string]any{"apiGroups": []any{"example.com"}, "resources": []any{"databases"}},
		map[string]any{"apiGroups": []any{"cache.example.net"}, "resources": []any{"*"}},
	}})
	var cases []access
	for _, verb := range []string{"get", "list", "watch", "patch"} {
		cases = append(cases, access{res("", "pods", "", verb, "apps", "p"), true})
	}
	for _, verb := range []string{"create", "update", "delete", "deletecollection"} {
		cases = append(cases, access{res("", "pods", "", verb, "apps", "p"), false})
	}
	cases = append(cases,
		access{res("", "pods", "", "list", "", ""), true}, // the informer lists every namespace
		access{res("", "pods", "status", "patch", "apps", "p"), true},
		access{res("", "pods", "status", "update", "apps", "p"), false},
		access{res("", "pods", "eviction", "create", "apps", "p"), false},
		access{res("", "pods", "exec", "create", "apps", "p"), false},
		access{res("", "pods", "binding", "create", "apps", "p"), false},
		access{res("", "services", "", "list", "", ""), true},
		access{res("", "services", "", "watch", "", ""), true},
		access{res("", "services", "", "patch", "apps", "db"), false},
		access{res("", "endpoints", "", "list", "", ""), false},
		access{res("discovery.k8s.io", "endpointslices", "", "list", "", ""), true},
		access{res("discovery.k8s.io", "endpointslices", "", "watch", "", ""), true},
		access{res("discovery.k8s.io", "endpointslices", "", "update", "apps", "db-x"), false},
		access{res("batch", "jobs", "", "list", "", ""), true},
		access{res("batch", "jobs", "", "watch", "", ""), true},
		access{res("batch", "jobs", "", "delete", "apps", "migrate"), false},
		access{res("apps", "daemonsets", "", "list", "", ""), true},
		access{res("apps", "deployments", "", "watch", "", ""), true},
		access{res("apps", "statefulsets", "", "list", "", ""), true},
		// The workloads of waiting pods: their annotation entrypoint.io/waiting
		// (admission-policy.yaml keeps it to that), never more.
		access{res("apps", "deployments", "", "get", "apps", "api"), true},
		access{res("apps", "deployments", "", "patch", "apps", "api"), true},
		access{res("apps", "deployments", "", "update", "apps", "api"), false},
		access{res("apps", "deployments", "", "delete", "apps", "api"), false},
		access{res("apps", "deployments", "scale", "patch", "apps", "api"), false},
		access{res("apps", "deployments", "status", "patch", "apps", "api"), false},
		access{res("apps", "statefulsets", "", "patch", "apps", "db"), true},
		access{res("apps", "daemonsets", "", "patch", "apps", "ovs"), true},
		access{res("apps", "replicasets", "", "get", "apps", "api-7c9d8"), true},
		access{res("apps", "replicasets", "", "patch", "apps", "api-7c9d8"), false},
		access{res("apps", "replicasets", "", "list", "", ""), false},
		access{res("batch", "jobs", "", "patch", "apps", "migrate"), true},
		access{res("batch", "cronjobs", "", "get", "apps", "backup"), true},
		access{res("batch", "cronjobs", "", "patch", "apps", "backup"), true},
		access{res("batch", "cronjobs", "", "list", "", ""), false},
		access{res("batch", "cronjobs", "", "create", "apps", ""), false},
		access{res("", "persistentvolumeclaims", "", "watch", "", ""), true},
		access{res("", "configmaps", "", "list", "", ""), true},
		access{res("", "configmaps", "", "update", "apps", "c"), false},
		access{res("apiextensions.k8s.io", "customresourcedefinitions", "", "watch", "", ""), true},
		access{res("apiextensions.k8s.io", "customresourcedefinitions", "", "update", "", "x.example.com"), false},
		access{res("apiregistration.k8s.io", "apiservices", "", "list", "", ""), true},
		access{res("", "secrets", "", "list", "", ""), false},
		access{res("", "secrets", "", "watch", "", ""), false},
		access{res("", "events", "", "create", "apps", ""), true},
		access{res("", "events", "", "patch", "apps", "e"), true},
		access{res("events.k8s.io", "events", "", "create", "apps", ""), true},
		access{res("events.k8s.io", "events", "", "patch", "apps", "e"), true},
		access{res("", "events", "", "delete", "apps", "e"), false},
		// Namespaces and Nodes are the webhook's, not the controller's.
		access{res("", "namespaces", "", "list", "", ""), false},
		access{res("", "nodes", "", "list", "", ""), false},
		access{res("authorization.k8s.io", "subjectaccessreviews", "", "create", "", ""), true},
		access{res("authentication.k8s.io", "tokenreviews", "", "create", "", ""), true},
		access{res("coordination.k8s.io", "leases", "", "create", on, ""), true},
		access{res("coordination.k8s.io", "leases", "", "get", on, leaderElectionLease), true},
		access{res("coordination.k8s.io", "leases", "", "update", on, leaderElectionLease), true},
		access{res("coordination.k8s.io", "leases", "", "delete", on, leaderElectionLease), false},
		access{res("coordination.k8s.io", "leases", "", "update", on, "someone-elses"), false},
		access{res("coordination.k8s.io", "leases", "", "get", on, "someone-elses"), false},
		access{res("coordination.k8s.io", "leases", "", "list", on, ""), false},
		access{res("coordination.k8s.io", "leases", "", "create", "apps", ""), false},
		access{res("coordination.k8s.io", "leases", "", "update", "kube-system", leaderElectionLease), false},
		access{res("example.com", "databases", "", "get", "apps", "db"), true},
		access{res("example.com", "databases", "", "list", "", ""), true},
		access{res("example.com", "databases", "", "watch", "", ""), true},
		access{res("example.com", "databases", "", "update", "apps", "db"), false},
		access{res("example.com", "databases", "status", "patch", "apps", "db"), false},
		access{res("example.com", "caches", "", "get", "apps", "c"), false},
		access{res("cache.example.net", "sessions", "", "list", "", ""), true},
		access{res("cache.example.net", "sessions", "", "delete", "apps", "s"), false},
		access{res("", "secrets", "", "get", "apps", "s"), false},
		access{res("", "configmaps", "", "get", "apps", "c"), true}, // one ConfigMap by name
		access{res("", "configmaps", "", "delete", "apps", "c"), false},
	)
	assertAccessReviews(t, "the controller's ServiceAccount", cs, cases)
	// The webhook apart from the controller: it follows pods and Services for
	// cycle warnings, and writes nothing of the controller's.
	assertAccessReviews(t, "the webhook's ServiceAccount, the controller apart", webhook, []access{
		{res("", "namespaces", "", "list", "", ""), true},
		{res("", "namespaces", "", "watch", "", ""), true},
		{res("", "nodes", "", "watch", "", ""), true},
		{res("", "pods", "", "list", "", ""), true},
		{res("", "pods", "", "watch", "", ""), true},
		{res("", "services", "", "list", "", ""), true},
		{res("", "services", "", "watch", "", ""), true},
		{res("authorization.k8s.io", "subjectaccessreviews", "", "create", "", ""), true},
		{res("", "pods", "", "get", "apps", "p"), false},
		{res("", "pods", "", "patch", "apps", "p"), false},
		{res("", "pods", "status", "patch", "apps", "p"), false},
		{res("", "pods", "", "delete", "apps", "p"), false},
		{res("", "events", "", "create", "apps", ""), false},
		{res("", "configmaps", "", "list", "", ""), false},
		{res("discovery.k8s.io", "endpointslices", "", "list", "", ""), false},
		{res("example.com", "databases", "", "get", "apps", "db"), false},
		{res("coordination.k8s.io", "leases", "", "create", on, ""), false},
		{res("coordination.k8s.io", "leases", "", "update", on, leaderElectionLease), false},
	})

	// The controller in the webhook's process: one ServiceAccount with both.
	const one = "ke-controller-one-process"
	webhook, _ = install(one, map[string]any{"separate": false})
	assertAccessReviews(t, "the webhook's ServiceAccount with the controller in its process", webhook, []access{
		{res("", "pods", "", "patch", "apps", "p"), true},
		{res("", "pods", "status", "patch", "apps", "p"), true},
		{res("", "namespaces", "", "list", "", ""), true},
		{res("coordination.k8s.io", "leases", "", "update", one, leaderElectionLease), true},
		{res("", "pods", "", "delete", "apps", "p"), false},
	})

	const off = "ke-controller-off"
	webhook, _ = install(off, map[string]any{"enabled": false})
	assertAccessReviews(t, "the webhook's ServiceAccount without the controller", webhook, []access{
		{res("", "namespaces", "", "list", "", ""), true},
		{res("", "namespaces", "", "watch", "", ""), true},
		{res("", "pods", "", "get", "apps", "p"), false},
		{res("", "pods", "", "list", "", ""), false},
		{res("", "pods", "", "patch", "apps", "p"), false},
		{res("", "pods", "status", "patch", "apps", "p"), false},
		{res("", "services", "", "list", "", ""), false},
		{res("", "events", "", "create", "apps", ""), false},
		{res("coordination.k8s.io", "leases", "", "create", off, ""), false},
	})

	// controller.secretDependencies: list and watch on Secrets, for the informer
	// that keeps their keys; still no get (no single value read) and no change;
	// and nothing on Secrets for the webhook.
	const secrets = "ke-controller-secrets"
	webhook, cs = install(secrets, map[string]any{"secretDependencies": true})
	assertAccessReviews(t, "the webhook's ServiceAccount with controller.secretDependencies", webhook, []access{
		{res("", "secrets", "", "list", "", ""), false},
		{res("", "secrets", "", "watch", "", ""), false},
	})
	assertAccessReviews(t, "the controller's ServiceAccount with controller.secretDependencies", cs, []access{
		{res("", "secrets", "", "list", "", ""), true},
		{res("", "secrets", "", "watch", "", ""), true},
		{res("", "secrets", "", "get", "apps", "s"), false},
		{res("", "secrets", "", "update", "apps", "s"), false},
	})
}

// controller.secretDependencies renders the flag and the Secret rule together,
// and resolverRBAC.secrets adds get, never list or watch, to the resolver's role.
func TestSecretDependencyValues(t *testing.T) {
	for _, tt := range []struct {
		name           string
		values         map[string]any
		flag           bool
		controllerRule []string // verbs on secrets in the controller's ClusterRole
		resolverRule   []string // verbs on secrets in the resolver's ClusterRole
	}{
		{name: "defaults"},
		{name: "controller", values: map[string]any{"controller": map[string]any{"secretDependencies": true}},
			flag: true, controllerRule: []string{"list", "watch"}},
		{name: "resolver", values: map[string]any{"resolverRBAC": map[string]any{"secrets": true}}, resolverRule: []string{"get"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			objs := parseObjects(t, mustRender(t, releaseNamespace, tt.values).Manifest)
			// Both Deployments: the webhook gates on Secrets only if the
			// controller watches them.
			for _, suffix := range []string{"-webhook", "-controller"} {
				args := container(t, deployment(objs, suffix)).Args
				if got := slices.Contains(args, "--secret-dependencies"); got != tt.flag {
					t.Errorf("--secret-dependencies in the args of *%s: %v, want %v", suffix, got, tt.flag)
				}
			}
			for _, o := range objs {
				if o.GetKind() != "ClusterRole" {
					continue
				}
				var verbs []string
				for _, r := range policyRules(t, o) {
					if slices.Contains(r.Resources, "secrets") {
						verbs = append(verbs, r.Verbs...)
					}
				}
				want := []string(nil)
				switch {
				case strings.HasSuffix(o.GetName(), "-controller"):
					want = tt.controllerRule
				case strings.HasSuffix(o.GetName(), "-resolver"):
					want = tt.resolverRule
				}
				if !slices.Equal(verbs, want) {
					t.Errorf("ClusterRole %s: verbs on secrets %v, want %v", o.GetName(), verbs, want)
				}
			}
		})
	}
}

// assertControllerWorks: entrypoint-webhook, running with the chart's args as the
// chart's ServiceAccounts, runs the dependency controller with only the chart's RBAC
// (and through its admission policy). It wins the Lease, sets the condition on the
// injected pod waiting for mariadb, and releases a gated pod once its Service has a
// ready endpoint, with Events; and no process's log has a request refused.
func assertControllerWorks(t *testing.T, env *testenv.Env, ns, podNS string, waiting *corev1.Pod, logs ...*testenv.Buffer) {
	t.Helper()
	ctx := context.Background()
	pods := env.Client.CoreV1().Pods(podNS)
	condition := func(name string) (*corev1.PodCondition, *corev1.Pod) {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == api.ConditionType {
				return &p.Status.Conditions[i], p
			}
		}
		return nil, p
	}

	wantWaiting := "service " + podNS + "/mariadb"
	var cond *corev1.PodCondition
	testenv.Eventually(t, time.Minute, "the controller to set "+string(api.ConditionType)+" False/Waiting naming "+wantWaiting+" on "+waiting.Name, func() bool {
		cond, _ = condition(waiting.Name)
		return cond != nil && cond.Status == corev1.ConditionFalse && cond.Reason == api.ReasonWaiting && strings.Contains(cond.Message, wantWaiting)
	})
	lease, err := env.Client.CoordinationV1().Leases(ns).Get(ctx, leaderElectionLease, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("the controller holds no Lease %s/%s: %v %+v", ns, leaderElectionLease, err, lease)
	}

	gated, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "gated-", Annotations: map[string]string{
			"entrypoint.io/dependency-service": "db", inject.AnnotationGate: "true",
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1", Command: []string{"/app/server"}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a gated pod: %v", err)
	}
	if !slices.ContainsFunc(gated.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == inject.SchedulingGate }) {
		t.Fatalf("the webhook did not gate a pod annotated entrypoint.io/gate: \"true\": gates %v", gated.Spec.SchedulingGates)
	}
	testenv.Eventually(t, time.Minute, "the controller to report the gated pod Waiting", func() bool {
		cond, _ = condition(gated.Name)
		return cond != nil && cond.Reason == api.ReasonWaiting
	})
	if _, err := env.Client.CoreV1().Services(podNS).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "db"}, Ports: []corev1.ServicePort{{Port: 5432}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.ReadyEndpointSlice(t, podNS, "db")
	var p *corev1.Pod
	testenv.Eventually(t, time.Minute, "the controller to remove the gate and report Ready", func() bool {
		cond, p = condition(gated.Name)
		return len(p.Spec.SchedulingGates) == 0 && cond != nil && cond.Status == corev1.ConditionTrue && cond.Reason == api.ReasonReady
	})
	testenv.Eventually(t, 30*time.Second, "an Event about the gated pod", func() bool {
		list, err := env.Client.EventsV1().Events(podNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(list.Items, func(e eventsv1.Event) bool { return e.Regarding.Name == gated.Name })
	})
	for _, log := range logs {
		for _, line := range strings.Split(log.String(), "\n") {
			if l := strings.ToLower(line); strings.Contains(l, "forbidden") || strings.Contains(l, "cannot list") || strings.Contains(l, "cannot watch") ||
				strings.Contains(l, "validatingadmissionpolicy") {
				t.Errorf("entrypoint-webhook was refused a request with the chart's RBAC or by its admission policy: %s", line)
			}
		}
	}
}
