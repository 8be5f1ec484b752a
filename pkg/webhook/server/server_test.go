package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	dto "github.com/prometheus/client_model/go"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/selfsigned"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook/server"
)

const image = "registry.example/kubernetes-entrypoint:test"

func options() server.Options {
	o := server.DefaultOptions()
	o.Image = image
	o.MetricsBindAddress = "0"
	o.HealthProbeBindAddress = "0"
	o.RegistryLookup = false
	o.LeaderElect = false // one process, no Lease
	return o
}

// start runs the webhook until the test ends and waits until it serves TLS.
func start(t testing.TB, env *testenv.Env, o server.Options) *server.Webhook {
	t.Helper()
	w, err := server.New(env.Config, o, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Manager.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook stopped with %v", err)
		}
	})
	addr := net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
	testenv.Eventually(t, 30*time.Second, "the webhook to serve TLS on "+addr, func() bool {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only checks that it serves
		if err != nil {
			return false
		}
		_ = conn.Close()
		return true
	})
	return w
}

func testLogger(t testing.TB) logr.Logger {
	return zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true)).WithName(t.Name())
}

func annotatedPod(annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "app:1", Command: []string{"/app/server"}, Args: []string{"--port", "8080"},
		}}},
	}
}

// injections sums the webhook's decision counter.
func injections(t *testing.T) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != "kubernetes_entrypoint_injections_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			total += counterValue(m)
		}
	}
	return total
}

func counterValue(m *dto.Metric) float64 { return m.GetCounter().GetValue() }

func assertInjected(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if len(pod.Spec.InitContainers) == 0 || pod.Spec.InitContainers[0].Name != "kubernetes-entrypoint-install" || pod.Spec.InitContainers[0].Image != image {
		t.Fatalf("pod %s has no injected init container: %+v", pod.Name, pod.Spec.InitContainers)
	}
	c := pod.Spec.Containers[0]
	want := []string{"--", "/app/server", "--port", "8080"}
	if len(c.Command) != 1 || !strings.HasSuffix(c.Command[0], "/kubernetes-entrypoint") || fmt.Sprint(c.Args) != fmt.Sprint(want) {
		t.Fatalf("container not wrapped: command %q args %q", c.Command, c.Args)
	}
	if pod.Annotations["entrypoint.io/status"] == "" {
		t.Errorf("no entrypoint.io/status annotation")
	}
}

func TestWebhookThroughTheAPIServer(t *testing.T) {
	env := testenv.StartT(t, envtest.Environment{
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{"../../../config/webhook"}},
	})
	wio := env.WebhookInstallOptions()
	o := options()
	o.Host, o.Port, o.CertDir = wio.LocalServingHost, wio.LocalServingPort, wio.LocalServingCertDir
	metricsAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	o.MetricsBindAddress = metricsAddr
	start(t, env, o)
	ns := env.Namespace(t)
	pods := env.Client.CoreV1().Pods(ns)
	ctx := context.Background()

	t.Run("annotated pod is mutated", func(t *testing.T) {
		var pod *corev1.Pod
		var err error
		// The API server may need a moment to use the freshly installed webhook.
		testenv.Eventually(t, 20*time.Second, "an injected pod", func() bool {
			pod, err = pods.Create(ctx, annotatedPod(map[string]string{"entrypoint.io/dependency-service": "mariadb"}), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return len(pod.Spec.InitContainers) > 0
		})
		assertInjected(t, pod)
		env := map[string]string{}
		for _, e := range pod.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		if env["DEPENDENCY_SERVICE"] != ns+":mariadb" {
			t.Errorf("DEPENDENCY_SERVICE=%q, want %q", env["DEPENDENCY_SERVICE"], ns+":mariadb")
		}
	})
	t.Run("bad annotation is refused with the message", func(t *testing.T) {
		_, err := pods.Create(ctx, annotatedPod(map[string]string{"entrypoint.io/dependency-service": "mariadb,,memcached"}), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "denied the request") || !strings.Contains(err.Error(), "entrypoint.io/dependency-service") || !strings.Contains(err.Error(), "is empty") {
			t.Fatalf("error %v, want a denial naming the annotation and the problem", err)
		}
	})
	t.Run("bad CEL expression is refused at its field path", func(t *testing.T) {
		value := `[{"apiVersion":"apps/v1","kind":"Deployment","name":"api","expression":"object.status.readyReplicas >= 2"},` +
			`{"apiVersion":"apps/v1","kind":"Deployment","name":"db","expression":"object.status.readyReplicas +"}]`
		_, err := pods.Create(ctx, annotatedPod(map[string]string{"entrypoint.io/dependency-cel": value}), metav1.CreateOptions{})
		var status apierrors.APIStatus
		if !errors.As(err, &status) || status.Status().Details == nil {
			t.Fatalf("error %v, want a denial with details", err)
		}
		const path = "metadata.annotations[entrypoint.io/dependency-cel][1].expression"
		var causes []string
		for _, c := range status.Status().Details.Causes {
			if c.Field == path && strings.Contains(c.Message, "does not compile") {
				return
			}
			causes = append(causes, c.Field+": "+c.Message)
		}
		t.Fatalf("causes %q, want one at %s saying the expression does not compile (error %v)", causes, path, err)
	})
	t.Run("5,000 services are refused with one short problem", func(t *testing.T) {
		var services strings.Builder
		for i := range 5000 {
			if i > 0 {
				services.WriteByte(',')
			}
			services.WriteString("svc-" + strconv.Itoa(i))
		}
		_, err := pods.Create(ctx, annotatedPod(map[string]string{"entrypoint.io/dependency-service": services.String()}), metav1.CreateOptions{})
		var status apierrors.APIStatus
		if !errors.As(err, &status) || status.Status().Details == nil {
			t.Fatalf("error %v, want a denial with details", err)
		}
		const want = "5,000 dependency items (5,000 in entrypoint.io/dependency-service), more than the 100 a pod may have; "
		if msg := err.Error(); !strings.Contains(msg, "denied the request") || !strings.Contains(msg, want) || len(msg) > 1024 {
			t.Fatalf("error of %d bytes %q, want a denial of at most 1 KiB saying %q", len(msg), msg, want)
		}
		const path = "metadata.annotations[entrypoint.io/dependency-service]"
		if causes := status.Status().Details.Causes; len(causes) != 1 || causes[0].Field != path {
			t.Errorf("causes %+v, want one at %s", causes, path)
		}
	})
	t.Run("a hostile regular expression is refused", func(t *testing.T) {
		call := `object.data.x.matches("(?:abcdefghijklmnopqrstuvwxyz0123456789){1000}")`
		value := `[{"apiVersion":"v1","kind":"ConfigMap","name":"c","expression":` + strconv.Quote(call+" || "+call) + `}]`
		_, err := pods.Create(ctx, annotatedPod(map[string]string{"entrypoint.io/dependency-cel": value}), metav1.CreateOptions{})
		const want = "regular expression of over 36,002 instructions, more than 1,000"
		if err == nil || !strings.Contains(err.Error(), "denied the request") || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want a denial saying %q", err, want)
		}
	})
	t.Run("a dependency in another namespace the pod may not read draws a warning", func(t *testing.T) {
		other := env.Namespace(t)
		var warnings []string
		cfg := rest.CopyConfig(env.Config)
		cfg.WarningHandler = warningFunc(func(text string) { warnings = append(warnings, text) })
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		pod, err := cs.CoreV1().Pods(ns).Create(ctx, annotatedPod(map[string]string{
			"entrypoint.io/dependency-service": other + ":db,mariadb",
		}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		assertInjected(t, pod)
		want := "service " + other + "/db: not judged until granted: serviceaccount " + ns + "/default may not list endpointslices.discovery.k8s.io in " + other
		for _, w := range warnings {
			if strings.Contains(w, "service "+ns+"/mariadb") {
				t.Errorf("warning %q about a dependency of the pod's own namespace", w)
			}
			if strings.Contains(w, want) {
				return
			}
		}
		t.Fatalf("warnings %q, want one saying %q", warnings, want)
	})
	t.Run("unannotated and opted-out pods never reach the webhook", func(t *testing.T) {
		before := injections(t)
		for _, annotations := range []map[string]string{nil, {"other.io/x": "y"}, {"entrypoint.io/inject": "false", "entrypoint.io/dependency-service": "x"}} {
			pod, err := pods.Create(ctx, annotatedPod(annotations), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(pod.Spec.InitContainers) != 0 || pod.Spec.Containers[0].Command[0] != "/app/server" {
				t.Errorf("pod with annotations %v was mutated", annotations)
			}
		}
		if after := injections(t); after != before {
			t.Errorf("the webhook was called %v times for pods its matchConditions exclude", after-before)
		}
	})
	t.Run("metrics need a token allowed to get /metrics", func(t *testing.T) {
		url := "https://" + metricsAddr + "/metrics"
		testenv.Eventually(t, 30*time.Second, "the metrics server to listen on "+metricsAddr, func() bool {
			conn, err := net.Dial("tcp", metricsAddr)
			if err == nil {
				conn.Close()
			}
			return err == nil
		})
		stranger := env.ServiceAccountConfig(t, ns, "stranger", nil)
		reader := env.ServiceAccountConfig(t, ns, "prometheus", nil)
		// What the chart's <fullname>-metrics-reader ClusterRole grants, bound to reader.
		if _, err := env.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader-" + ns},
			Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := env.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader-" + ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "metrics-reader-" + ns},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: ns}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			who   string
			token string
			code  int
		}{
			{"no token", "", http.StatusUnauthorized},
			{"a token the API server does not know", "not-a-token", http.StatusUnauthorized},
			{"a ServiceAccount without the role", stranger.BearerToken, http.StatusForbidden},
			{"a ServiceAccount with the metrics-reader role", reader.BearerToken, http.StatusOK},
		} {
			code, proto, body := httpsGet(t, url, tc.token)
			if code != tc.code {
				t.Errorf("%s: status %d, want %d (%s)", tc.who, code, tc.code, firstLine(body))
			}
			if proto != 1 {
				t.Errorf("%s: served over HTTP/%d to a client offering h2, want HTTP/1.1", tc.who, proto)
			}
			if tc.code == http.StatusOK && !strings.Contains(body, "kubernetes_entrypoint_injections_total") {
				t.Errorf("%s: the metrics have no kubernetes_entrypoint_injections_total:\n%s", tc.who, body)
			}
		}
	})
	t.Run("the webhook speaks HTTP/1.1 only unless --enable-http2", func(t *testing.T) {
		webhookURL := "https://" + net.JoinHostPort(o.Host, strconv.Itoa(o.Port)) + "/healthz-does-not-exist"
		if _, proto, _ := httpsGet(t, webhookURL, ""); proto != 1 {
			t.Errorf("the webhook server answered a client offering h2 over HTTP/%d, want HTTP/1.1", proto)
		}
		// The check can tell: with --enable-http2 the same client gets HTTP/2.
		h2 := options()
		h2.Host, h2.Port, h2.CertDir = "127.0.0.1", testenv.FreePort(t), wio.LocalServingCertDir
		h2.EnableHTTP2 = true
		start(t, env, h2)
		if _, proto, _ := httpsGet(t, "https://127.0.0.1:"+strconv.Itoa(h2.Port)+"/x", ""); proto != 2 {
			t.Errorf("with --enable-http2 the webhook server answered over HTTP/%d, want HTTP/2", proto)
		}
	})
}

// httpsGet GETs url offering h2 and http/1.1, without verifying the server, and
// returns the status, the HTTP major version and the body.
func httpsGet(t *testing.T, url, token string) (int, int, string) {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}}, //nolint:gosec // the test reads its own servers
	}}
	req, err := http.NewRequest(http.MethodGet, url, nil) //nolint:noctx // bounded by the client's timeout
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.ProtoMajor, string(body)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// servedSerial is the serial number of the certificate the webhook serves.
func servedSerial(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the served certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// The self-signed mode: the API server, given no caBundle, trusts the webhook once
// it patched its own, and again after a forced rotation.
func TestSelfSignedTLS(t *testing.T) {
	env := testenv.StartT(t, envtest.Environment{})
	ctx := context.Background()
	const ownNS = "entrypoint-system"
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ownNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	url := "https://" + addr + "/mutate-v1-pod"
	if _, err := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes-entrypoint"},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{podWebhook("pods.entrypoint.io", url, ownNS)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	o := options()
	o.TLSMode = server.TLSSelfSigned
	o.Host, o.Port = "127.0.0.1", port
	o.Namespace = ownNS
	o.TLSHosts = "127.0.0.1"
	o.CertCheckInterval = 500 * time.Millisecond
	// The chart renders the Secret, empty; the webhook may only update it.
	if _, err := env.Client.CoreV1().Secrets(ownNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.SecretName}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w := start(t, env, o)
	<-w.Certs.Ready()

	ns := env.Namespace(t)
	pods := env.Client.CoreV1().Pods(ns)
	create := func() {
		t.Helper()
		var pod *corev1.Pod
		var err error
		testenv.Eventually(t, 20*time.Second, "an injected pod", func() bool {
			pod, err = pods.Create(ctx, annotatedPod(map[string]string{"entrypoint.io/dependency-job": "db-sync"}), metav1.CreateOptions{})
			if err != nil && !strings.Contains(err.Error(), "x509") && !strings.Contains(err.Error(), "tls") {
				t.Fatalf("creating pod: %v", err)
			}
			return err == nil && len(pod.Spec.InitContainers) > 0
		})
		assertInjected(t, pod)
	}
	create()
	first := servedSerial(t, addr)

	// A forced rotation, as an operator asks for it: a new CA and certificate,
	// and the previous CA still trusted.
	caBefore := servedIssuerKey(t, addr)
	annotateSecret(t, env, ownNS, o.SecretName, selfsigned.AnnotationRotate, "1")
	testenv.Eventually(t, 30*time.Second, "a certificate of a new CA to be served", func() bool {
		return servedIssuerKey(t, addr) != caBefore
	})
	if second := servedSerial(t, addr); second == first {
		t.Fatalf("the served certificate did not change on rotation (serial %s)", first)
	}
	secret, err := env.Client.CoreV1().Secrets(ownNS).Get(ctx, o.SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(secret.Data["ca.crt"]), "BEGIN CERTIFICATE"); n != 2 {
		t.Errorf("the CA bundle holds %d certificates after rotation, want the new and the previous CA", n)
	}
	if secret.Annotations[selfsigned.AnnotationRotated] != "1" {
		t.Errorf("the handled rotation is not recorded: annotations %v", secret.Annotations)
	}
	create()
}

// servedIssuerKey identifies the CA of the certificate the webhook serves.
func servedIssuerKey(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the served certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return string(conn.ConnectionState().PeerCertificates[0].AuthorityKeyId)
}

func annotateSecret(t *testing.T, env *testenv.Env, ns, name, key, value string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := env.Client.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[key] = value
		_, err = env.Client.CoreV1().Secrets(ns).Update(context.Background(), s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// podWebhook registers the webhook at url for annotated pods on CREATE, outside
// kube-system and ownNS, as config/webhook does.
func podWebhook(name, url, ownNS string) admissionregistrationv1.MutatingWebhook {
	return admissionregistrationv1.MutatingWebhook{
		Name:                    name,
		AdmissionReviewVersions: []string{"v1"},
		ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
		}},
		MatchConditions: []admissionregistrationv1.MatchCondition{{
			Name: "has-entrypoint-annotation", Expression: "has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('entrypoint.io/'))",
		}},
		NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", ownNS},
		}}},
		FailurePolicy: ptr.To(admissionregistrationv1.Fail),
		SideEffects:   ptr.To(admissionregistrationv1.SideEffectClassNone),
	}
}

// warningFunc collects the API server's warnings.
type warningFunc func(text string)

func (f warningFunc) HandleWarningHeader(_ int, _ string, text string) { f(text) }
