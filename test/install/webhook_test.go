package install

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
)

// The chart installed as on a single node whose API server reaches no Service:
// self-signed TLS, the webhook on the host network registered by URL on 127.0.0.1.
// Every rendered object is applied for real; entrypoint-webhook (built by `make
// build`) runs twice, as the chart's two Deployments do: with exactly the args of the
// webhook's Deployment as the webhook's ServiceAccount, and with exactly those of the
// controller's Deployment as the controller's ServiceAccount (real tokens, the
// chart's RBAC and admission policy), POD_NAMESPACE and MEMORY_LIMIT as the downward
// API would set them. Only --kubeconfig is added: there is no in-cluster config here.
// Then an annotated pod is mutated and an unannotated one is not, and the dependency
// controller, leader-elected in its own process, does its work with its own RBAC
// alone, through the policy.
func TestWebhookRunsWithTheChartsFlags(t *testing.T) {
	env := controlPlane(t)
	bin := filepath.Join(makeBinaries(t), "entrypoint-webhook")
	ctx := context.Background()
	const ns = "ke-chart-flags"

	port, healthPort, metricsPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	controllerHealthPort, controllerMetricsPort := testenv.FreePort(t), testenv.FreePort(t)
	values := map[string]any{
		"replicaCount": 1,
		"tls":          map[string]any{"mode": "self-signed"},
		"webhook": map[string]any{
			"url":         fmt.Sprintf("https://127.0.0.1:%d/mutate-v1-pod", port),
			"port":        port,
			"hostNetwork": true,
		},
		"metrics":     map[string]any{"port": metricsPort},
		"healthProbe": map[string]any{"port": healthPort},
		"controller": map[string]any{
			"hostNetwork": true, "healthProbePort": controllerHealthPort, "metricsPort": controllerMetricsPort,
		},
	}
	objs := parseObjects(t, mustRender(t, ns, values).Manifest)
	createNamespace(t, env, ns)
	a := newApplier(t, env.Config)
	for _, o := range objs {
		if _, err := a.apply(ctx, o, true); err != nil {
			t.Fatalf("applying %s: %v", objectKey(o), err)
		}
	}
	mwc := find(t, objs, "MutatingWebhookConfiguration")
	var policy *unstructured.Unstructured // the pods' policy; the workloads' is its -workloads
	for _, o := range objs {
		if o.GetKind() == "ValidatingAdmissionPolicy" && !strings.HasSuffix(o.GetName(), "-workloads") {
			policy = o
		}
	}
	if policy == nil {
		t.Fatal("the chart renders no ValidatingAdmissionPolicy for pods")
	}
	t.Cleanup(func() {
		_ = env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, mwc.GetName(), metav1.DeleteOptions{})
		for _, name := range []string{policy.GetName(), policy.GetName() + "-workloads"} {
			_ = env.Client.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{})
			_ = env.Client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
		}
	})

	deploy, controllerDeploy := deployment(objs, "-webhook"), deployment(objs, "-controller")
	if deploy == nil || controllerDeploy == nil {
		t.Fatal("the chart renders no webhook Deployment or no controller Deployment")
	}
	for _, d := range []*unstructured.Unstructured{deploy, controllerDeploy} {
		if hostNetwork, _, _ := unstructured.NestedBool(d.Object, "spec", "template", "spec", "hostNetwork"); !hostNetwork {
			t.Errorf("%s does not use the host network", objectKey(d))
		}
	}
	args := container(t, deploy).Args
	saConfig := serviceAccountConfig(t, env, ns, serviceAccountOf(deploy).Name)
	controllerConfig := serviceAccountConfig(t, env, ns, serviceAccountOf(controllerDeploy).Name)
	assertAccess(t, saConfig, controllerConfig, ns, mwc.GetName())
	// The controller works through its admission policy, once enforced.
	awaitPolicy(t, env, controllerConfig, policy.GetName())

	logs, exited := runDeployment(t, bin, deploy, saConfig, ns)
	controllerLogs, controllerExited := runDeployment(t, bin, controllerDeploy, controllerConfig, ns)

	// Ready: serving, with a certificate in its Secret and the caBundle patched;
	// the controller's process is up.
	for _, p := range []struct {
		url    string
		exited <-chan error
		logs   *testenv.Buffer
	}{
		{fmt.Sprintf("http://127.0.0.1:%d/readyz", healthPort), exited, logs},
		{fmt.Sprintf("http://127.0.0.1:%d/readyz", controllerHealthPort), controllerExited, controllerLogs},
	} {
		testenv.Eventually(t, 30*time.Second, "entrypoint-webhook to be ready at "+p.url, func() bool {
			select {
			case err := <-p.exited:
				t.Fatalf("entrypoint-webhook exited: %v\n%s", err, p.logs.String())
			default:
			}
			resp, err := http.Get(p.url) //nolint:noctx // a probe
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	live, err := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mwc.GetName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(live.Webhooks[0].ClientConfig.CABundle) == 0 {
		t.Errorf("the webhook did not set the caBundle of %s", mwc.GetName())
	}
	// Each process set Go's memory limit from its container's limit.
	for _, p := range []struct {
		deploy *unstructured.Unstructured
		logs   *testenv.Buffer
	}{{deploy, logs}, {controllerDeploy, controllerLogs}} {
		c := container(t, p.deploy)
		limit := c.Resources.Limits.Memory().Value()
		if want := strconv.FormatInt(limit-limit/10, 10); !strings.Contains(p.logs.String(), "Go memory limit set") || !strings.Contains(p.logs.String(), want) {
			t.Errorf("%s: no log line of Go's memory limit set to %s bytes", objectKey(p.deploy), want)
		}
	}

	podNS := env.Namespace(t)
	pods := env.Client.CoreV1().Pods(podNS)
	pod := func(annotations map[string]string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Annotations: annotations},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: "registry.example/app:1", Command: []string{"/app/server"}, Args: []string{"--port", "8080"},
			}}},
		}
	}
	var mutated *corev1.Pod
	testenv.Eventually(t, 20*time.Second, "an annotated pod to be mutated", func() bool {
		p, err := pods.Create(ctx, pod(map[string]string{"entrypoint.io/dependency-service": "mariadb"}), metav1.CreateOptions{})
		if err != nil {
			// The API server may not use the new caBundle yet.
			if strings.Contains(err.Error(), "x509") || strings.Contains(err.Error(), "tls") {
				return false
			}
			t.Fatalf("creating an annotated pod: %v", err)
		}
		mutated = p
		return len(p.Spec.InitContainers) > 0
	})
	wantImage := ""
	for _, arg := range args {
		if v, ok := strings.CutPrefix(arg, "--image="); ok {
			wantImage = v
		}
	}
	init := mutated.Spec.InitContainers[0]
	if init.Name != "kubernetes-entrypoint-install" || init.Image != wantImage {
		t.Errorf("injected init container %s with image %s, want kubernetes-entrypoint-install with %s", init.Name, init.Image, wantImage)
	}
	if c := mutated.Spec.Containers[0]; len(c.Command) != 1 || !strings.HasSuffix(c.Command[0], "/kubernetes-entrypoint") ||
		strings.Join(c.Args, " ") != "-- /app/server --port 8080" {
		t.Errorf("container not wrapped: command %q args %q", c.Command, c.Args)
	}
	if mutated.Annotations["entrypoint.io/status"] == "" {
		t.Errorf("no entrypoint.io/status annotation on the mutated pod")
	}

	// The worked example's pod template (examples/deployment.yaml) is mutated too.
	data, err := os.ReadFile(filepath.Join(repoRoot, "examples", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	example := find(t, parseObjects(t, string(data)), "Deployment")
	var template corev1.PodTemplateSpec
	tmpl, _, _ := unstructured.NestedMap(example.Object, "spec", "template")
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &template); err != nil {
		t.Fatal(err)
	}
	template.GenerateName = example.GetName() + "-"
	examplePod, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: template.ObjectMeta, Spec: template.Spec}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating the example's pod: %v", err)
	}
	dependencies := map[string]string{}
	for _, e := range examplePod.Spec.Containers[0].Env {
		if strings.HasPrefix(e.Name, "DEPENDENCY_") {
			dependencies[e.Name] = e.Value
		}
	}
	if len(examplePod.Spec.InitContainers) == 0 || dependencies["DEPENDENCY_SERVICE"] != podNS+":mariadb" || dependencies["DEPENDENCY_JOBS"] == "" {
		t.Errorf("the example's pod was not injected as documented: init containers %d, dependencies %v", len(examplePod.Spec.InitContainers), dependencies)
	}

	assertMetricsAccess(t, env, objs, fmt.Sprintf("https://127.0.0.1:%d/metrics", metricsPort), "kubernetes_entrypoint_injections_total")
	assertControllerWorks(t, env, ns, podNS, mutated, logs, controllerLogs)
	assertMetricsAccess(t, env, objs, fmt.Sprintf("https://127.0.0.1:%d/metrics", controllerMetricsPort), "entrypoint_controller_release_latency_seconds")

	plain, err := pods.Create(ctx, pod(map[string]string{"team": "a"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Spec.InitContainers) != 0 || plain.Spec.Containers[0].Command[0] != "/app/server" || plain.Annotations["entrypoint.io/status"] != "" {
		t.Errorf("an unannotated pod was changed: %+v", plain.Spec)
	}
	assertAdoption(t, env, podNS)
}

// assertAdoption creates a pod whose init container runs the original
// kubernetes-entrypoint image, in a namespace labelled entrypoint.io/adopt=true
// and in podNS, which is not: the chart's adopt.entrypoint.io webhook (its CEL
// matchConditions and namespaceSelector, through the API server) adopts the
// first and leaves the second alone.
func assertAdoption(t *testing.T, env *testenv.Env, podNS string) {
	t.Helper()
	ctx := context.Background()
	adoptNS, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "adopt-", Labels: map[string]string{"entrypoint.io/adopt": "true"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.CoreV1().Namespaces().Delete(ctx, adoptNS.Name, metav1.DeleteOptions{}) })
	contract := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "keystone-api-"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "quay.io/airshipit/kubernetes-entrypoint:v1", Command: []string{"kubernetes-entrypoint"},
				Env: []corev1.EnvVar{{Name: "DEPENDENCY_SERVICE", Value: "mariadb"}, {Name: "DEPENDENCY_DAEMONSET", Value: ""}, {Name: "COMMAND", Value: "echo done"}}}},
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1", Command: []string{"/app/server"}}},
		},
	}
	for _, tc := range []struct {
		ns      string
		adopted bool
	}{{adoptNS.Name, true}, {podNS, false}} {
		got, err := env.Client.CoreV1().Pods(tc.ns).Create(ctx, contract.DeepCopy(), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating a pod of the original image's contract in %s: %v", tc.ns, err)
		}
		status := got.Annotations["entrypoint.io/status"]
		gated := slices.ContainsFunc(got.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == "entrypoint.io/dependencies" })
		service := got.Spec.InitContainers[0].Env[0].Value
		adopted := strings.Contains(status, `"mode":"adopted"`) && gated && service == "" && got.Labels["entrypoint.io/managed"] == "true"
		if adopted != tc.adopted || len(got.Spec.InitContainers) != 1 || got.Spec.Containers[0].Command[0] != "/app/server" {
			t.Errorf("pod in %s: adopted %v (status %q, gated %v, DEPENDENCY_SERVICE %q), %d init containers; want adopted %v and no resolver",
				tc.ns, adopted, status, gated, service, len(got.Spec.InitContainers), tc.adopted)
		}
	}
}

// assertAccess checks the webhook ServiceAccount's permissions in self-signed mode
// with registry lookup and no pull-secret namespace: its own Secret and webhook
// configuration by name, and nothing around them (no Secret of any other namespace),
// no write on pods and no Lease; and, in outline (TestControllerRBACOnAPIServer
// covers them), the controller ServiceAccount's: its Lease, pod patches, and nothing
// of the webhook's.
func assertAccess(t *testing.T, cfg, controllerCfg *rest.Config, ns, mwcName string) {
	t.Helper()
	res := func(group, resource, verb, ns, name string) authorizationv1.ResourceAttributes {
		return authorizationv1.ResourceAttributes{Group: group, Resource: resource, Verb: verb, Namespace: ns, Name: name}
	}
	assertAccessReviews(t, "the webhook's ServiceAccount", kubernetes.NewForConfigOrDie(cfg), []access{
		{res("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "update", "", mwcName), true},
		{res("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "update", "", "someone-elses"), false},
		{res("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "list", "", ""), false},
		{res("", "secrets", "get", ns, "kubernetes-entrypoint-webhook-tls"), true},
		{res("", "secrets", "update", ns, "kubernetes-entrypoint-webhook-tls"), true},
		{res("", "secrets", "create", ns, ""), false},
		{res("", "secrets", "create", "default", ""), false},
		{res("", "secrets", "get", ns, "other"), false},
		{res("", "secrets", "update", ns, "other"), false},
		{res("", "secrets", "delete", ns, "kubernetes-entrypoint-webhook-tls"), false},
		{res("", "secrets", "get", "any", "pull-secret"), false},
		{res("", "secrets", "list", "any", ""), false},
		{res("", "serviceaccounts", "get", "any", "default"), false},
		// The controller's, in its own Deployment.
		{res("coordination.k8s.io", "leases", "create", ns, ""), false},
		{res("", "pods", "patch", "any", "x"), false},
		{res("", "pods", "list", "", ""), true},
		{res("", "pods", "delete", "any", "x"), false},
	})
	assertAccessReviews(t, "the controller's ServiceAccount", kubernetes.NewForConfigOrDie(controllerCfg), []access{
		{res("coordination.k8s.io", "leases", "create", ns, ""), true},
		{res("coordination.k8s.io", "leases", "create", "any", ""), false},
		{res("", "pods", "patch", "any", "x"), true},
		{res("", "pods", "delete", "any", "x"), false},
		{res("", "secrets", "get", ns, "kubernetes-entrypoint-webhook-tls"), false},
		{res("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "update", "", mwcName), false},
	})
}

// runDeployment runs entrypoint-webhook with the args of the Deployment's container,
// as the client config's identity, with POD_NAMESPACE and MEMORY_LIMIT (the
// container's memory limit in bytes) as the downward API sets them, until the test
// ends. It returns the process's log and a channel that receives its exit.
func runDeployment(t *testing.T, bin string, deploy *unstructured.Unstructured, cfg *rest.Config, ns string) (*testenv.Buffer, <-chan error) {
	t.Helper()
	c := container(t, deploy)
	kubeconfig := testenv.Kubeconfig(t, cfg, t.TempDir())
	logs := &testenv.Buffer{} // the process writes it while the test reads it
	cmd := exec.Command(bin, append(slices.Clone(c.Args), "--kubeconfig="+kubeconfig)...)
	cmd.Env = append(os.Environ(), "POD_NAMESPACE="+ns, "MEMORY_LIMIT="+strconv.FormatInt(c.Resources.Limits.Memory().Value(), 10))
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited: //nolint:errcheck // stopped by a signal: its exit status says nothing
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited //nolint:errcheck // killed: its exit status says nothing
		}
		if t.Failed() {
			t.Logf("%s: entrypoint-webhook %s\n%s", objectKey(deploy), strings.Join(c.Args, " "), logs.String())
		}
	})
	return logs, exited
}

// serviceAccountConfig is a client config that authenticates as ServiceAccount
// ns/name with a real token, so that only the chart's RBAC applies.
func serviceAccountConfig(t *testing.T, env *testenv.Env, ns, name string) *rest.Config {
	t.Helper()
	expiry := int64(3600)
	tok, err := env.Client.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token for %s/%s: %v", ns, name, err)
	}
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = tok.Status.Token
	return cfg
}

// assertMetricsAccess: the webhook's metrics, over HTTPS and HTTP/1.1, answer 401
// without a token and 200 to a ServiceAccount bound to the chart's metrics-reader
// ClusterRole (the webhook's TokenReviews and SubjectAccessReviews pass with the
// chart's RBAC), with the webhook's injection counter.
func assertMetricsAccess(t *testing.T, env *testenv.Env, objs []*unstructured.Unstructured, url, metric string) {
	t.Helper()
	ctx := context.Background()
	var reader string
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" && strings.HasSuffix(o.GetName(), "-metrics-reader") {
			reader = o.GetName()
		}
	}
	if reader == "" {
		t.Fatal("the chart renders no metrics-reader ClusterRole")
	}
	ns := env.Namespace(t)
	scraper := env.ServiceAccountConfig(t, ns, "prometheus", nil)
	if _, err := env.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scrape-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: reader},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}}, //nolint:gosec // its own self-signed metrics certificate
	}}
	host := strings.TrimSuffix(strings.TrimPrefix(url, "https://"), "/metrics")
	testenv.Eventually(t, 30*time.Second, "the metrics server to listen on "+host, func() bool {
		conn, err := net.Dial("tcp", host)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {scraper.BearerToken, http.StatusOK}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || resp.ProtoMajor != 1 {
			t.Errorf("GET %s with token %v: %s over HTTP/%d, want %d over HTTP/1.1: %.200s", url, tc.token != "", resp.Status, resp.ProtoMajor, tc.want, body)
		}
		if tc.want == http.StatusOK && !strings.Contains(string(body), metric) {
			t.Errorf("the metrics at %s have no %s: %.500s", url, metric, body)
		}
	}
}
