package webhook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/webhook"
)

// startCache runs a controller-runtime cache for cfg until the test ends.
func startCache(t *testing.T, cfg *rest.Config) cache.Cache {
	t.Helper()
	c, err := cache.New(cfg, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cache stopped with %v", err)
		}
	})
	return c
}

// Against a real API server: labels come from the cache and follow changes; a
// namespace created a moment ago is read at once (from the API server when the
// cache lacks it); a missing or unreadable namespace is an error within the
// caller's deadline, never a hang; and the handler gates a pod of a labelled
// namespace through it.
func TestCachedNamespaces(t *testing.T) {
	env := testenv.StartT(t, envtest.Environment{})
	live, err := client.New(env.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	namespaces := webhook.CachedNamespaces{Cache: startCache(t, env.Config), Live: live}
	ctx := context.Background()

	// Read right after creation: no polling, the live fallback covers the cache's lag.
	ns, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "gated-", Labels: map[string]string{inject.NamespaceLabelGate: "true"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	labels, err := namespaces.NamespaceLabels(ctx, ns.Name)
	if err != nil || labels[inject.NamespaceLabelGate] != "true" {
		t.Fatalf("labels of a new namespace: %v, %v; want %s=true", labels, err, inject.NamespaceLabelGate)
	}

	ns.Labels[inject.NamespaceLabelGate] = "false"
	if _, err := env.Client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last map[string]string
	testenv.Eventually(t, 30*time.Second, "the cache to see the namespace's label changed to false", func() bool {
		last, err = namespaces.NamespaceLabels(ctx, ns.Name)
		if err != nil {
			t.Logf("reading namespace %s: %v", ns.Name, err)
		}
		return err == nil && last[inject.NamespaceLabelGate] == "false"
	})

	if _, err := namespaces.NamespaceLabels(ctx, "no-such-namespace"); err == nil || !strings.Contains(err.Error(), "reading namespace no-such-namespace") {
		t.Errorf("a missing namespace: err %v", err)
	}

	// A webhook without RBAC on namespaces: its informer never syncs, and the
	// lookup ends with the caller's deadline.
	own := env.Namespace(t)
	noRBAC := env.ServiceAccountConfig(t, own, "no-namespaces", nil)
	forbidden := webhook.CachedNamespaces{Cache: startCache(t, noRBAC)}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := forbidden.NamespaceLabels(short, ns.Name); err == nil {
		t.Error("a lookup without RBAC succeeded")
	}
	// With a live reader, the lookup does not wait out the deadline for a cache
	// that cannot sync: it asks the API server, whose answer says why.
	liveNoRBAC, err := client.New(noRBAC, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	forbidden.Live = liveNoRBAC
	short2, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	if _, err := forbidden.NamespaceLabels(short2, ns.Name); !apierrors.IsForbidden(err) {
		t.Errorf("a lookup without RBAC, with a live reader: %v; want the API server's Forbidden", err)
	}

	// The handler, through the cache: a pod of a gated namespace is gated.
	gated, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "gated-", Labels: map[string]string{inject.NamespaceLabelGate: "true"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newInjector(t)
	h.Config.Controller = true
	h.Namespaces = namespaces
	req := request(t, typicalPod(map[string]string{"entrypoint.io/dependency-service": "mariadb"}))
	req.Namespace = gated.Name
	resp := h.Handle(ctx, req)
	if !resp.Allowed || !gatedByPatch(t, resp) || len(resp.Warnings) > 0 {
		t.Errorf("pod of gated namespace %s: allowed %v, gated %v, warnings %q; want gated without warnings", gated.Name, resp.Allowed, gatedByPatch(t, resp), resp.Warnings)
	}
}
