package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// workload is one init container environment that an openstack-helm chart renders
// for the original image (pkg/resolve/spec/testdata), and the ServiceAccount its
// pod runs as.
type workload struct {
	Chart          string                     `json:"chart"`
	Name           string                     `json:"name"`
	Env            map[string]json.RawMessage `json:"env"`
	ServiceAccount string                     `json:"serviceAccount"`
}

const node = "node-1"

// Every environment of the installed base runs unchanged, as a process, against a
// cluster where what it waits for becomes ready, each as its own ServiceAccount
// with exactly the Role helm-toolkit renders for it (helmToolkitRules): get and
// list, never watch, and only get on a custom resource. Every resolver must wait
// while nothing exists, then exit 0 (init-container mode: no COMMAND).
func TestInstalledBaseResolves(t *testing.T) {
	raw, err := os.ReadFile("../../pkg/resolve/spec/testdata/openstack-helm-init-env.json")
	if err != nil {
		t.Fatal(err)
	}
	var workloads []workload
	if err := json.Unmarshal(raw, &workloads); err != nil {
		t.Fatal(err)
	}
	if len(workloads) != 47 {
		t.Fatalf("fixture holds %d workloads, want 47", len(workloads))
	}
	const ns = "openstack"
	ctx := context.Background()
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}) })
	installConnectionCRD(t)

	envs := make([][]string, len(workloads))
	specs := make([]*spec.Spec, len(workloads))
	made := map[string]bool{}
	once := func(key string, f func()) {
		if !made[key] {
			made[key] = true
			f()
		}
	}
	for i, w := range workloads {
		podName := fmt.Sprintf("%s-%d-abc12", w.Name, i) // names repeat across kinds
		vars := map[string]string{}
		for k, v := range w.Env {
			var s string
			if json.Unmarshal(v, &s) == nil {
				vars[k] = s
				continue
			}
			var ref struct{ FieldRef string }
			if err := json.Unmarshal(v, &ref); err != nil {
				t.Fatalf("%s: env %s: %v", w.Name, k, err)
			}
			switch ref.FieldRef {
			case "metadata.name":
				vars[k] = podName
			case "metadata.namespace":
				vars[k] = ns
			default:
				t.Fatalf("%s: env %s: unexpected fieldRef %q", w.Name, k, ref.FieldRef)
			}
		}
		s, err := spec.FromEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
		if err != nil {
			t.Fatalf("%s/%s: %v", w.Chart, w.Name, err)
		}
		createReadyPod(t, ns, podName, map[string]string{"workload": w.Name}, nil)
		specs[i] = s
		for k, v := range vars {
			envs[i] = append(envs[i], k+"="+v)
		}
	}

	// The default poll interval, as in a real pod.
	procs := make([]*process, len(workloads))
	for i, w := range workloads {
		rules := helmToolkitRules(specs[i], ns)
		for other := range rules {
			if other != ns {
				t.Fatalf("%s/%s: dependencies in namespace %s; this test grants Roles in %s only", w.Chart, w.Name, other, ns)
			}
		}
		kubeconfig := testenv.Kubeconfig(t, env.ServiceAccountConfig(t, ns, w.ServiceAccount, rules[ns]), t.TempDir())
		procs[i] = startResolver(t, append(envs[i], "KUBECONFIG="+kubeconfig))
	}
	// Nothing they wait for exists yet: every resolver with dependencies must wait.
	time.Sleep(time.Second)
	for i, w := range workloads {
		select {
		case <-procs[i].done:
			if hasDependencies(specs[i]) {
				t.Fatalf("%s/%s exited (%d) before its dependencies existed; stderr:\n%s", w.Chart, w.Name, procs[i].cmd.ProcessState.ExitCode(), procs[i].stderr.String())
			}
		default:
		}
	}
	// Now make ready everything any of them waits for.
	for _, s := range specs {
		for _, r := range s.Services {
			once("svc/"+r.String(), func() {
				if _, err := env.Client.CoreV1().Services(r.Namespace).Create(ctx, &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: r.Name}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
				}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				env.ReadyEndpointSlice(t, r.Namespace, r.Name)
			})
		}
		for _, r := range s.Jobs {
			once("job/"+r.String(), func() { setJobStatus(t, createJob(t, r.Namespace, r.Name, nil), true) })
		}
		for _, r := range s.DaemonSets {
			once("ds/"+r.String(), func() { createDaemonSetWithReadyPod(t, r.Namespace, r.Name) })
		}
		for _, r := range s.Pods {
			once("pods/"+r.String(), func() { createReadyPod(t, r.Namespace, "", r.Labels, nil) })
		}
		for _, r := range s.CustomResources {
			once("cr/"+r.String(), func() { createReadyConnection(t, r) })
		}
	}
	for i, w := range workloads {
		code := procs[i].exitCode(t)
		stderr := procs[i].stderr.String()
		if code != 0 {
			t.Errorf("%s/%s: exit code %d, want 0; stderr:\n%s", w.Chart, w.Name, code, stderr)
			continue
		}
		// The Role allows no watch: each one with dependencies in the API polled.
		if hasDependencies(specs[i]) && !strings.Contains(stderr, "watch not allowed; polling instead") {
			t.Errorf("%s/%s: resolved without polling, under a Role without watch; stderr:\n%s", w.Chart, w.Name, stderr)
		}
		// Nor list on a custom resource: read by name.
		if len(specs[i].CustomResources) > 0 && !strings.Contains(stderr, "list not allowed; reading it by name instead") {
			t.Errorf("%s/%s: no fallback to get by name logged; stderr:\n%s", w.Chart, w.Name, stderr)
		}
	}
	kinds := make([]string, 0, len(made))
	for k := range made {
		kinds = append(kinds, strings.SplitN(k, "/", 2)[0])
	}
	sort.Strings(kinds)
	t.Logf("%d environments resolved against %d objects (%s)", len(workloads), len(made), strings.Join(compact(kinds), ", "))
}

// helmToolkitRules is the Role, by namespace, that helm-toolkit's
// kubernetes_pod_rbac_serviceaccount and kubernetes_pod_rbac_roles snippets render
// for a workload's dependencies (openstack-helm, helm-toolkit/templates/snippets):
// get and list on services, endpoints and endpointslices in each namespace of a
// service; on jobs and pods for jobs, daemonsets and pods for a daemonset, pods for
// pods, in the workload's own namespace; and get alone on each custom resource's
// plural (its kind, lower case, plus s) in the custom resource's namespace.
func helmToolkitRules(s *spec.Spec, own string) map[string][]rbacv1.PolicyRule {
	resources := map[string][]string{}
	add := func(ns string, rs ...string) {
		for _, r := range rs {
			if !slices.Contains(resources[ns], r) {
				resources[ns] = append(resources[ns], r)
			}
		}
	}
	for _, r := range s.Services {
		add(r.Namespace, "services", "endpoints", "endpointslices")
	}
	if len(s.Jobs) > 0 {
		add(own, "jobs", "pods")
	}
	if len(s.DaemonSets) > 0 {
		add(own, "daemonsets", "pods")
	}
	if len(s.Pods) > 0 {
		add(own, "pods")
	}
	rules := map[string][]rbacv1.PolicyRule{}
	for ns, rs := range resources {
		rules[ns] = append(rules[ns], rbacv1.PolicyRule{
			APIGroups: []string{"", "extensions", "batch", "apps", "discovery.k8s.io"}, Verbs: []string{"get", "list"}, Resources: rs,
		})
	}
	for _, cr := range s.CustomResources {
		group, _, _ := strings.Cut(cr.APIVersion, "/")
		rules[cr.Namespace] = append(rules[cr.Namespace], rbacv1.PolicyRule{
			APIGroups: []string{group}, Verbs: []string{"get"}, Resources: []string{strings.ToLower(cr.Kind) + "s"},
		})
	}
	return rules
}

func hasDependencies(s *spec.Spec) bool {
	return len(s.Services)+len(s.Jobs)+len(s.DaemonSets)+len(s.Pods)+len(s.CustomResources)+len(s.Containers) > 0
}

func compact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// createReadyPod creates a Ready pod on the test node; an empty name generates one.
func createReadyPod(t *testing.T, ns, name string, labels map[string]string, owner *metav1.OwnerReference) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if name == "" {
		pod.GenerateName = "pod-"
	}
	if owner != nil {
		pod.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	created, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status.Phase = corev1.PodRunning
	created.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if _, err := env.Client.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func createDaemonSetWithReadyPod(t *testing.T, ns, name string) {
	t.Helper()
	labels := map[string]string{"daemonset": name}
	ds, err := env.Client.AppsV1().DaemonSets(ns).Create(context.Background(), &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	createReadyPod(t, ns, "", labels, &metav1.OwnerReference{
		APIVersion: "apps/v1", Kind: "DaemonSet", Name: name, UID: ds.UID, Controller: ptr.To(true),
	})
}

var connections = schema.GroupVersionResource{Group: "mariadb.osh.openstack.org", Version: "v1alpha1", Resource: "connections"}

func installConnectionCRD(t *testing.T) {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "connections.mariadb.osh.openstack.org"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: connections.Group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "connections", Singular: "connection", Kind: "Connection", ListKind: "ConnectionList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1alpha1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{crd}}); err != nil {
		t.Fatal(err)
	}
}

func createReadyConnection(t *testing.T, r spec.CustomResourceRef) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	var conditions []any
	for _, c := range r.Conditions {
		conditions = append(conditions, map[string]any{"type": c.Type, "status": c.Status})
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": r.APIVersion, "kind": r.Kind,
		"metadata": map[string]any{"name": r.Name, "namespace": r.Namespace},
		"status":   map[string]any{"conditions": conditions},
	}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The CRD may take a moment to be served after it is established.
		_, err = dyn.Resource(connections).Namespace(r.Namespace).Create(context.Background(), obj, metav1.CreateOptions{})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
}
