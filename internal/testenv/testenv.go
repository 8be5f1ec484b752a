// Package testenv starts a real etcd and kube-apiserver (controller-runtime's envtest)
// for integration tests. The binaries come from KUBEBUILDER_ASSETS, which `make test`
// sets to the cache that hack/build-k8s.sh fills. Without it, tests that need the
// control plane skip themselves (see Start and StartT); with it set, they must run.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Env is a running control plane.
type Env struct {
	env    *envtest.Environment
	Config *rest.Config // cluster-admin
	Client kubernetes.Interface
}

// AssetsVar names the directory holding etcd and kube-apiserver. `make test` sets it
// to the cache that `make envtest-assets` fills.
const AssetsVar = "KUBEBUILDER_ASSETS"

// ErrNoAssets is returned by Start when AssetsVar is unset or empty.
var ErrNoAssets = errors.New(AssetsVar + " is not set")

// howToGetAssets is the hint every skip and error gives.
const howToGetAssets = "`make test` builds them and runs these tests; `make envtest-assets` only builds them, " +
	"into ~/.cache/kubernetes-entrypoint/k8s-<version>, the directory to set " + AssetsVar + " to"

// Start starts etcd and kube-apiserver. Call Stop when done. It is meant for
// TestMain (and for programs such as hack/demo-envtest); inside a test use StartT.
//
// Only an unset AssetsVar counts as "no control plane here": in a test binary,
// Start then prints one line saying so and how to get the binaries, and ends the
// process with status 0, so a plain `go test ./...` passes on a machine without
// them. Outside a test binary it returns ErrNoAssets. An AssetsVar that is set but
// names a directory without working binaries is an error, never a skip: `make test`
// sets it, and there a broken cache must fail.
func Start(opts envtest.Environment) (*Env, error) {
	if os.Getenv(AssetsVar) == "" {
		if testing.Testing() {
			fmt.Println(skipLine())
			os.Exit(0)
		}
		return nil, fmt.Errorf("%w: %s", ErrNoAssets, howToGetAssets)
	}
	// envtest logs through controller-runtime's global logger; without one it
	// prints a warning with a stack trace.
	ctrllog.SetLogger(logr.Discard())
	e := opts
	cfg, err := e.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest (etcd and kube-apiserver from %s=%s; %s): %w", AssetsVar, os.Getenv(AssetsVar), howToGetAssets, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		_ = e.Stop()
		return nil, fmt.Errorf("a client for envtest: %w", err)
	}
	return &Env{env: &e, Config: cfg, Client: cs}, nil
}

// StartT starts a control plane for one test (or benchmark) and stops it when the
// test ends. Without AssetsVar the test is skipped, saying how to get the binaries;
// with AssetsVar set, any failure to start fails the test.
func StartT(t testing.TB, opts envtest.Environment) *Env {
	t.Helper()
	SkipWithoutAssets(t)
	env, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stopping envtest: %v", err)
		}
	})
	return env
}

// SkipWithoutAssets skips t when AssetsVar is unset, for tests that share a
// control plane started elsewhere.
func SkipWithoutAssets(t testing.TB) {
	t.Helper()
	if os.Getenv(AssetsVar) == "" {
		t.Skip(skipLine())
	}
}

// skipLine is the one line a skipped package or test prints.
func skipLine() string {
	pkg := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	return fmt.Sprintf("%s: SKIPPED: needs etcd and kube-apiserver, and %s is not set: %s", pkg, AssetsVar, howToGetAssets)
}

// Stop stops the control plane.
func (e *Env) Stop() error { return e.env.Stop() }

// Namespace creates a fresh namespace for one test and deletes it afterwards.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	ns, err := e.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = e.Client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// ServiceAccountConfig creates a ServiceAccount in ns bound to a Role with rules and
// returns a client config that authenticates as it with a real token.
func (e *Env) ServiceAccountConfig(t testing.TB, ns, name string, rules []rbacv1.PolicyRule) *rest.Config {
	t.Helper()
	ctx := context.Background()
	if _, err := e.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating service account: %v", err)
	}
	if _, err := e.Client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating role: %v", err)
	}
	if _, err := e.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating role binding: %v", err)
	}
	expiry := int64(3600)
	tok, err := e.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for service account %s/%s: %v", ns, name, err)
	}
	cfg := rest.AnonymousClientConfig(e.Config)
	cfg.BearerToken = tok.Status.Token
	return cfg
}

// Kubeconfig writes cfg as a kubeconfig file in dir, for processes under test.
func Kubeconfig(t testing.TB, cfg *rest.Config, dir string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
	}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("writing kubeconfig: %v", err)
	}
	return path
}

// Eventually polls cond until it returns true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// KubeconfigBytes is an admin kubeconfig for the control plane.
func (e *Env) KubeconfigBytes() []byte { return e.env.KubeConfig }

// WebhookInstallOptions tells where envtest expects the webhook server (host,
// port, serving certificates) when it was started with webhook configurations.
func (e *Env) WebhookInstallOptions() *envtest.WebhookInstallOptions {
	return &e.env.WebhookInstallOptions
}

// ReadyEndpointSlice gives service one EndpointSlice with one ready endpoint.
func (e *Env) ReadyEndpointSlice(t testing.TB, ns, service string) {
	t.Helper()
	_, err := e.Client.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{GenerateName: service + "-", Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.2.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating an EndpointSlice for service %s/%s: %v", ns, service, err)
	}
}

// Buffer is a bytes.Buffer that a process's output and a test may use at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreePort is a TCP port on 127.0.0.1 that nothing listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
