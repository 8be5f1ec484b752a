package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/selfsigned"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook/server"
)

// childEnv makes the test binary run one webhook replica instead of the tests.
const childEnv = "KE_TEST_WEBHOOK_REPLICA"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runReplica(spec))
	}
	os.Exit(m.Run())
}

// runReplica runs entrypoint-webhook in self-signed mode as one replica would:
// spec is "<kubeconfig>,<namespace>,<port>,<check interval>".
func runReplica(spec string) int {
	parts := strings.Split(spec, ",")
	port, _ := strconv.Atoi(parts[2])
	interval, _ := time.ParseDuration(parts[3])
	cfg, err := clientcmd.BuildConfigFromFlags("", parts[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	o := options()
	o.TLSMode = server.TLSSelfSigned
	o.Host, o.Port, o.Namespace, o.TLSHosts, o.CertCheckInterval = "127.0.0.1", port, parts[1], "127.0.0.1", interval
	o.DrainTimeout = 2 * time.Second
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := server.Run(ctx, cfg, o, zap.New(zap.WriteTo(os.Stderr)).WithValues("port", port)); err != nil {
		fmt.Fprintln(os.Stderr, "replica stopped:", err)
		return 1
	}
	return 0
}

// Two replicas, two processes, with exactly the chart's self-signed RBAC, share one
// Secret and one MutatingWebhookConfiguration whose two webhooks call one replica
// each, so that every pod creation needs both to be trusted. (a) Both start at once
// from the empty Secret the chart renders; (b) a forced rotation, which both see.
// While they race: every change of the caBundle (watched) holds the CAs of one
// history only (a loser's CA never appears), a certificate a replica serves is
// always trusted by the caBundle read just after, both end up serving the same
// certificate, and pods created all along through the API server never fail.
func TestSelfSignedReplicasRace(t *testing.T) {
	env := testenv.StartT(t, envtest.Environment{})
	ctx := context.Background()
	const ownNS, secretName, configName = "entrypoint-replicas", "entrypoint-webhook-tls", "kubernetes-entrypoint"
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ownNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Secrets(ownNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretName}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ports := []int{testenv.FreePort(t), testenv.FreePort(t)}
	var hooks []admissionregistrationv1.MutatingWebhook
	for i, port := range ports {
		url := fmt.Sprintf("https://127.0.0.1:%d/mutate-v1-pod", port)
		hook := podWebhook(fmt.Sprintf("replica%d.entrypoint.io", i), url, ownNS)
		hook.ReinvocationPolicy = ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy)
		hooks = append(hooks, hook)
	}
	if _, err := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: configName}, Webhooks: hooks,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Every version of the caBundle, as the API server stores them.
	var mu sync.Mutex
	var bundles []string
	watch, err := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", configName).String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Stop()
	go func() {
		for ev := range watch.ResultChan() {
			if cfg, ok := ev.Object.(*admissionregistrationv1.MutatingWebhookConfiguration); ok {
				mu.Lock()
				for _, w := range cfg.Webhooks {
					if len(bundles) == 0 || bundles[len(bundles)-1] != string(w.ClientConfig.CABundle) {
						bundles = append(bundles, string(w.ClientConfig.CABundle))
					}
				}
				mu.Unlock()
			}
		}
	}()

	// The replicas, as the chart's ServiceAccount with the chart's rules.
	kubeconfig := testenv.Kubeconfig(t, chartServiceAccount(t, env, ownNS, secretName, configName), t.TempDir())
	const interval = time.Second
	var logs [2]testenv.Buffer
	for i, port := range ports {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%d,%s", childEnv, kubeconfig, ownNS, port, interval))
		cmd.Stdout, cmd.Stderr = &logs[i], &logs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		defer func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
			}
			if t.Failed() {
				t.Logf("replica %d (port %d):\n%s", i, port, logs[i].String())
			}
		}()
	}

	// What each replica serves, checked against the caBundle read right after.
	served := func(port int) *x509.Certificate {
		conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the served certificate
		if err != nil {
			return nil
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	var violations []string
	stopMonitor := make(chan struct{})
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		for {
			select {
			case <-stopMonitor:
				return
			case <-time.After(20 * time.Millisecond):
			}
			certs := []*x509.Certificate{served(ports[0]), served(ports[1])}
			cfg, err := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, configName, metav1.GetOptions{})
			if err != nil {
				continue
			}
			for i, c := range certs {
				if c == nil {
					continue
				}
				for _, w := range cfg.Webhooks {
					if !bundleTrusts(w.ClientConfig.CABundle, c) {
						mu.Lock()
						violations = append(violations, fmt.Sprintf("replica %d served serial %s (issuer key %x), which the caBundle of %s did not trust", i, c.SerialNumber, c.AuthorityKeyId, w.Name))
						mu.Unlock()
					}
				}
			}
		}
	}()
	defer func() {
		close(stopMonitor)
		<-monitorDone
	}()

	// (a) The first start: both serve one certificate, of the one CA ever published.
	var first *x509.Certificate
	testenv.Eventually(t, 60*time.Second, "both replicas to serve the same certificate", func() bool {
		a, b := served(ports[0]), served(ports[1])
		first = a
		return a != nil && b != nil && a.Equal(b)
	})
	mu.Lock()
	if cas := distinctCAs(bundles); len(cas) != 1 {
		t.Errorf("first start: the caBundle held %d different CAs over time, want 1 (a racing replica published its own): %v", len(cas), cas)
	}
	mu.Unlock()

	// Pods created through the API server, both webhooks called for each, all along.
	podNS := env.Namespace(t)
	pods := env.Client.CoreV1().Pods(podNS)
	create := func() error {
		_, err := pods.Create(ctx, annotatedPod(map[string]string{"entrypoint.io/dependency-service": "db"}), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}
	testenv.Eventually(t, 30*time.Second, "the API server to trust both replicas", func() bool { return create() == nil })
	var failures []string
	created := 0
	stopPods := make(chan struct{})
	podsDone := make(chan struct{})
	go func() {
		defer close(podsDone)
		for {
			select {
			case <-stopPods:
				return
			default:
			}
			if err := create(); err != nil {
				failures = append(failures, err.Error())
			}
			created++
			time.Sleep(10 * time.Millisecond)
		}
	}()

	// (b) A forced rotation, seen by both replicas at their next check.
	annotateSecret(t, env, ownNS, secretName, selfsigned.AnnotationRotate, "now")
	asked := time.Now()
	testenv.Eventually(t, 60*time.Second, "both replicas to serve one certificate of a new CA", func() bool {
		a, b := served(ports[0]), served(ports[1])
		return a != nil && b != nil && a.Equal(b) && string(a.AuthorityKeyId) != string(first.AuthorityKeyId)
	})
	rotated := time.Since(asked)
	time.Sleep(2 * interval) // pods keep coming while the replicas settle
	close(stopPods)
	<-podsDone

	if len(failures) > 0 {
		t.Errorf("%d of %d pod creations failed during the rotation; first: %s", len(failures), created, failures[0])
	}
	t.Logf("forced rotation: both replicas served the new CA's certificate %s after the annotation (check interval %s); %d pods created through both replicas from before the annotation to two intervals after, %d failed",
		rotated.Round(time.Millisecond), interval, created, len(failures))
	mu.Lock()
	defer mu.Unlock()
	if cas := distinctCAs(bundles); len(cas) != 2 {
		t.Errorf("the caBundle held %d different CAs over time, want 2 (the first and one new; a racing replica published its own): %v", len(cas), cas)
	}
	if len(violations) > 0 {
		t.Errorf("%d times a replica served a certificate the caBundle did not trust; first: %s", len(violations), violations[0])
	}
	secret, err := env.Client.CoreV1().Secrets(ownNS).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if secret.Annotations[selfsigned.AnnotationRotated] != "now" || len(secret.Data["ca-next.crt"]) != 0 {
		t.Errorf("after the rotation the Secret has annotations %v and a pending CA of %d bytes", secret.Annotations, len(secret.Data["ca-next.crt"]))
	}
}

// chartServiceAccount is a client config for a ServiceAccount with exactly the
// rules the chart gives the webhook in self-signed mode.
func chartServiceAccount(t *testing.T, env *testenv.Env, ns, secret, config string) *rest.Config {
	t.Helper()
	ctx := context.Background()
	cfg := env.ServiceAccountConfig(t, ns, "webhook", []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{secret}, Verbs: []string{"get", "update"}},
	})
	if _, err := env.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook-" + ns},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"},
			ResourceNames: []string{config}, Verbs: []string{"get", "update"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "webhook-" + ns},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "webhook", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func bundleTrusts(bundle []byte, c *x509.Certificate) bool {
	for _, ca := range pemCerts(bundle) {
		if c.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

// pemCerts reads the certificates of a PEM bundle; none when it holds a bad one.
func pemCerts(bundle []byte) []*x509.Certificate {
	certs, _ := certutil.ParseCertsPEM(bundle)
	return certs
}

// distinctCAs lists the serial numbers of every CA any of the bundles held.
func distinctCAs(bundles []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, b := range bundles {
		for _, c := range pemCerts([]byte(b)) {
			if s := c.SerialNumber.String(); !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}
