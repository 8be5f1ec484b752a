package imageconfig

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// TestPullSecretsForbiddenByRBAC runs the lookup as a ServiceAccount of a real
// API server, the way the webhook runs where the chart grants no Secret read
// in the pod's namespace.
func TestPullSecretsForbiddenByRBAC(t *testing.T) {
	env := testenv.StartT(t, envtest.Environment{})
	ctx := context.Background()
	ns := env.Namespace(t)

	private := newRegistry(t, basicAuth)
	private.push(t, "private/app:1", v1.Config{Entrypoint: appEntrypoint, Cmd: appCmd})
	public := newRegistry(t, nil)
	public.push(t, "app:1", v1.Config{Cmd: []string{"run"}})

	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, dockerConfigSecret(ns, "regcred", private.host), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta:       metav1.ObjectMeta{Name: "builder"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	clientFor := func(cfg *rest.Config) kubernetes.Interface {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	// The webhook's identity without, and with, the grant the chart's
	// registryLookup.pullSecretNamespaces renders.
	denied := clientFor(env.ServiceAccountConfig(t, ns, "webhook-denied", nil))
	granted := clientFor(env.ServiceAccountConfig(t, ns, "webhook-granted", []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"secrets", "serviceaccounts"}, Verbs: []string{"get"},
	}}))

	lookup := func(client kubernetes.Interface) *Lookup {
		return New(Options{Client: client, Timeout: 20 * time.Second, InsecureRegistries: []string{private.host, public.host}})
	}
	imageRef := func(image, sa string, secrets ...string) inject.ImageRef {
		return inject.ImageRef{Image: image, Namespace: ns, ServiceAccount: sa, ImagePullSecrets: secrets}
	}
	privateImage := private.host + "/private/app:1"
	hint := []string{
		fmt.Sprintf("the webhook may not read Secrets and ServiceAccounts in namespace %q", ns),
		fmt.Sprintf("add %q to the chart value registryLookup.pullSecretNamespaces (a RoleBinding granting get on secrets and serviceaccounts there)", ns),
		"or set annotation entrypoint.io/command.<container>",
		"system:serviceaccount:" + ns + ":webhook-denied",
		"the registry answered 401 Unauthorized",
	}

	t.Run("pod's pull secret, not readable", func(t *testing.T) {
		_, err := lookup(denied).ImageConfig(ctx, imageRef(privateImage, "", "regcred"))
		wantErr(t, err, hint...)
	})
	t.Run("ServiceAccount's pull secret, not readable", func(t *testing.T) {
		_, err := lookup(denied).ImageConfig(ctx, imageRef(privateImage, "builder"))
		wantErr(t, err, hint...)
	})
	t.Run("public image, secrets not readable", func(t *testing.T) {
		got, err := lookup(denied).ImageConfig(ctx, imageRef(public.host+"/app:1", "builder", "regcred"))
		if err != nil {
			t.Fatalf("a public image needs no pull secret: %v", err)
		}
		wantConfig(t, got, nil, []string{"run"})
	})
	t.Run("pod's pull secret, readable", func(t *testing.T) {
		wantConfig(t, mustConfig(t, lookup(granted), imageRef(privateImage, "", "regcred")), appEntrypoint, appCmd)
	})
	t.Run("ServiceAccount's pull secret, readable", func(t *testing.T) {
		wantConfig(t, mustConfig(t, lookup(granted), imageRef(privateImage, "builder")), appEntrypoint, appCmd)
	})
	t.Run("readable, but no pull secret for the registry", func(t *testing.T) {
		_, err := lookup(granted).ImageConfig(ctx, imageRef(privateImage, ""))
		wantErr(t, err, "the registry answered 401 Unauthorized", "add the pull secret to the pod or its ServiceAccount")
	})
}

// TestBudgetCoversPullSecrets: an API server that does not answer costs the
// lookup's budget, no more, and the error says where the time went.
func TestBudgetCoversPullSecrets(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(api.Close)
	client, err := kubernetes.NewForConfig(&rest.Config{Host: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	tr := newRegistry(t, nil)
	tr.push(t, "app:1", v1.Config{Cmd: []string{"run"}})
	r := ref(tr.host + "/app:1")
	r.ImagePullSecrets = []string{"regcred"}

	const budget = 500 * time.Millisecond
	start := time.Now()
	_, err = tr.lookup(Options{Client: client, Timeout: budget}).ImageConfig(context.Background(), r)
	elapsed := time.Since(start)
	wantErr(t, err, "timed out after 500ms while reading the pod's pull secrets", "check that the API server answers the webhook")
	if elapsed > budget+time.Second {
		t.Errorf("took %s, want about the budget of %s", elapsed, budget)
	}
	if reqs := tr.requests(); len(reqs) != 0 {
		t.Errorf("the registry was asked %q after the budget was spent", reqs)
	}
}
