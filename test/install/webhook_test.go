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
// build`) runs with exactly the args of the rendered Deployment, as the chart's
// ServiceAccount (a real token, the chart's RBAC), POD_NAMESPACE as the downward API
// would set it. Only --kubeconfig is added: there is no in-cluster config here.
// Then an annotated pod is mutated and an unannotated one is not, and the dependency
// controller, leader-elected, does its work with the chart's RBAC alone.
func TestWebhookRunsWithTheChartsFlags(t *testing.T) {
	env := controlPlane(t)
	bin := filepath.Join(makeBinaries(t), "entrypoint-webhook")
	ctx := context.Background()
	const ns = "ke-chart-flags"

	port, healthPort, metricsPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
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
	t.Cleanup(func() {
		_ = env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, mwc.GetName(), metav1.DeleteOptions{})
	})

	deploy := find(t, objs, "Deployment")
	containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	if hostNetwork, _, _ := unstructured.NestedBool(deploy.Object, "spec", "template", "spec", "hostNetwork"); !hostNetwork {
		t.Errorf("the Deployment does not use the host network")
	}
	sa, _, _ := unstructured.NestedString(deploy.Object, "spec", "template", "spec", "serviceAccountName")

	saConfig := serviceAccountConfig(t, env, ns, sa)
	assertAccess(t, saConfig, ns, mwc.GetName())
	dir := t.TempDir()
	kubeconfig := testenv.Kubeconfig(t, saConfig, dir)
	var logs testenv.Buffer // the process writes it while the test reads it
	cmd := exec.Command(bin, append(args, "--kubeconfig="+kubeconfig)...)
	cmd.Env = append(os.Environ(), "POD_NAMESPACE="+ns)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("entrypoint-webhook %s\n%s", strings.Join(args, " "), logs.String())
		}
	})

	// Ready: serving, with a certificate in its Secret and the caBundle patched.
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", healthPort)
	testenv.Eventually(t, 30*time.Second, "entrypoint-webhook to be ready at "+readyz, func() bool {
		select {
		case err := <-exited:
			t.Fatalf("entrypoint-webhook exited: %v\n%s", err, logs.String())
		default:
		}
		resp, err := http.Get(readyz) //nolint:noctx // a probe
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	live, err := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mwc.GetName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(live.Webhooks[0].ClientConfig.CABundle) == 0 {
		t.Errorf("the webhook did not set the caBundle of %s", mwc.GetName())
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

	assertMetricsAccess(t, env, objs, fmt.Sprintf("https://127.0.0.1:%d/metrics", metricsPort))
	assertControllerWorks(t, env, ns, podNS, mutated, &logs)

	plain, err := pods.Create(ctx, pod(map[string]string{"team": "a"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Spec.InitContainers) != 0 || plain.Spec.Containers[0].Command[0] != "/app/server" || plain.Annotations["entrypoint.io/status"] != "" {
		t.Errorf("an unannotated pod was changed: %+v", plain.Spec)
	}
}

// assertAccess checks the webhook ServiceAccount's permissions in self-signed mode
// with registry lookup and no pull-secret namespace: its own Secret and webhook
// configuration by name, and nothing around them (no Secret of any other namespace);
// the controller's, which TestControllerRBACOnAPIServer covers, only in outline.
func assertAccess(t *testing.T, cfg *rest.Config, ns, mwcName string) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		attr authorizationv1.ResourceAttributes
		want bool
	}{
		{authorizationv1.ResourceAttributes{Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations", Verb: "update", Name: mwcName}, true},
		{authorizationv1.ResourceAttributes{Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations", Verb: "update", Name: "someone-elses"}, false},
		{authorizationv1.ResourceAttributes{Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations", Verb: "list"}, false},
		{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "get", Namespace: ns, Name: "kubernetes-entrypoint-webhook-tls"}, true},
		{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "update", Namespace: ns, Name: "kubernetes-entrypoint-webhook-tls"}, true},
		{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "create", Namespace: ns}, false},
		{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "create", Namespace: "default"}, false},
		{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "get", Namespace: ns, Name: "other"}, false},
		{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "update", Namespace: ns, Name: "other"}, false},
		{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "delete", Namespace: ns, Name: "kubernetes-entrypoint-webhook-tls"}, false},
		{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "get", Namespace: "any", Name: "pull-secret"}, false},
		{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "list", Namespace: "any"}, false},
		{authorizationv1.ResourceAttributes{Resource: "serviceaccounts", Verb: "get", Namespace: "any", Name: "default"}, false},
		// The controller's leader election, in the webhook's namespace only.
		{authorizationv1.ResourceAttributes{Group: "coordination.k8s.io", Resource: "leases", Verb: "create", Namespace: ns}, true},
		{authorizationv1.ResourceAttributes{Group: "coordination.k8s.io", Resource: "leases", Verb: "create", Namespace: "any"}, false},
		{authorizationv1.ResourceAttributes{Resource: "pods", Verb: "patch", Namespace: "any", Name: "x"}, true},
		{authorizationv1.ResourceAttributes{Resource: "pods", Verb: "delete", Namespace: "any", Name: "x"}, false},
	} {
		review, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(context.Background(),
			&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &c.attr}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if review.Status.Allowed != c.want {
			t.Errorf("the webhook's ServiceAccount may %s %s %s/%s: %v, want %v", c.attr.Verb, c.attr.Resource, c.attr.Namespace, c.attr.Name, review.Status.Allowed, c.want)
		}
	}
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
func assertMetricsAccess(t *testing.T, env *testenv.Env, objs []*unstructured.Unstructured, url string) {
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
		if tc.want == http.StatusOK && !strings.Contains(string(body), "kubernetes_entrypoint_injections_total") {
			t.Errorf("the metrics have no kubernetes_entrypoint_injections_total: %.500s", body)
		}
	}
}
