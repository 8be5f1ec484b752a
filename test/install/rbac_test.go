package install

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
)

// No install reads Secrets cluster-wide unless asked: no ClusterRole of any chart
// combination, nor of the kustomize build, grants anything on secrets, but the
// controller's where the combination opts in with controller.secretDependencies;
// and the opt-in registryLookup.clusterWideSecretRead is what turns it on for the
// webhook.
func TestNoClusterWideSecretReadByDefault(t *testing.T) {
	installs := map[string][]*unstructured.Unstructured{
		"kustomize build config/default":     parseObjects(t, kustomizeBuild(t, kustomizeDir)),
		"kustomize build config/self-signed": parseObjects(t, kustomizeBuild(t, filepath.Join(repoRoot, "config", "self-signed"))),
	}
	secretDependencies := map[string]bool{}
	for _, name := range combinations {
		values := readValues(t, name)
		installs["chart "+name] = parseObjects(t, mustRender(t, releaseNamespace, values).Manifest)
		secretDependencies["chart "+name], _, _ = unstructured.NestedBool(values, "controller", "secretDependencies")
	}
	for install, objs := range installs {
		for _, o := range objs {
			if o.GetKind() != "ClusterRole" || !grantsSecrets(o) {
				continue
			}
			if secretDependencies[install] && strings.HasSuffix(o.GetName(), "-controller") {
				continue // asked for; TestSecretDependencyValues checks the verbs
			}
			t.Errorf("%s: ClusterRole %s grants access to Secrets in every namespace", install, o.GetName())
		}
	}
	optIn := parseObjects(t, mustRender(t, releaseNamespace, map[string]any{
		"registryLookup": map[string]any{"clusterWideSecretRead": true},
	}).Manifest)
	found := false
	for _, o := range optIn {
		found = found || (o.GetKind() == "ClusterRole" && grantsSecrets(o))
	}
	if !found {
		t.Error("registryLookup.clusterWideSecretRead=true renders no ClusterRole that reads Secrets")
	}
}

// grantsSecrets: a rule of the core group (or of every group) on secrets or on
// every resource.
func grantsSecrets(role *unstructured.Unstructured) bool {
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	for _, r := range rules {
		groups, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "apiGroups")
		if !slices.Contains(groups, "") && !slices.Contains(groups, "*") {
			continue
		}
		resources, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "resources")
		for _, res := range resources {
			if res == "secrets" || res == "*" {
				return true
			}
		}
	}
	return false
}

// registryLookup.pullSecretNamespaces, applied for real with the chart's ServiceAccount:
// the webhook reads a Secret and a ServiceAccount in a listed namespace, and is
// refused in another one. The kustomize sample config/samples/pull-secrets grants
// the kustomize install's ServiceAccount the same, in the namespace it is set to.
func TestPullSecretNamespaces(t *testing.T) {
	env := controlPlane(t)
	ctx := context.Background()
	listed, other, sampled := env.Namespace(t), env.Namespace(t), env.Namespace(t)
	for _, ns := range []string{listed, other, sampled} {
		if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "regcred"}, StringData: map[string]string{"x": "y"},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// envtest runs no controller that would create the ServiceAccount default.
		if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Name: "app"},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	a := newApplier(t, env.Config)

	// The chart, as a release of its own so that its cluster-scoped names are too.
	const releaseNS = "ke-pull-secrets"
	createNamespace(t, env, releaseNS)
	objs := parseObjects(t, mustRender(t, releaseNS, map[string]any{
		"fullnameOverride": "ke-pull-secrets",
		"registryLookup":   map[string]any{"pullSecretNamespaces": []any{listed}},
	}).Manifest)
	sa := serviceAccountOf(deployment(objs, "-webhook")).Name
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			if _, err := a.apply(ctx, o, true); err != nil {
				t.Fatalf("applying %s: %v", objectKey(o), err)
			}
		}
	}
	chartSA := kubernetes.NewForConfigOrDie(serviceAccountConfig(t, env, releaseNS, sa))
	assertSecretAccess(t, "the chart's webhook", chartSA, map[string]bool{listed: true, other: false, sampled: false})

	// The kustomize sample, set to the namespace `sampled` as its comment says.
	const kustNS = "kubernetes-entrypoint"
	createNamespace(t, env, kustNS)
	kustomized := parseObjects(t, kustomizeBuild(t, kustomizeDir))
	for _, o := range kustomized {
		if o.GetKind() == "ServiceAccount" {
			if _, err := a.apply(ctx, o, true); err != nil {
				t.Fatalf("applying %s: %v", objectKey(o), err)
			}
		}
	}
	sa = serviceAccountOf(deployment(kustomized, "-webhook")).Name
	sample := parseObjects(t, kustomizeBuild(t, repoRoot+"/config/samples/pull-secrets"))
	if len(sample) != 2 {
		t.Fatalf("config/samples/pull-secrets builds %d objects, want a Role and a RoleBinding", len(sample))
	}
	for _, o := range sample {
		if o.GetNamespace() != "my-apps" {
			t.Errorf("the sample puts %s in namespace %q, want its kustomization's my-apps", objectKey(o), o.GetNamespace())
		}
		if o.GetKind() == "RoleBinding" {
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			if ns, _, _ := unstructured.NestedString(subjects[0].(map[string]any), "namespace"); ns != kustNS {
				t.Errorf("the sample binds a ServiceAccount of namespace %q, want config/default's %q", ns, kustNS)
			}
		}
		o.SetNamespace(sampled)
		if _, err := a.apply(ctx, o, true); err != nil {
			t.Fatalf("applying %s: %v", objectKey(o), err)
		}
	}
	kustSA := kubernetes.NewForConfigOrDie(serviceAccountConfig(t, env, kustNS, sa))
	assertSecretAccess(t, "the kustomize install's webhook", kustSA, map[string]bool{sampled: true, listed: false, other: false})
}

// assertSecretAccess gets the Secret regcred and the ServiceAccount app in each
// namespace, expecting success or Forbidden, and never a list of Secrets.
func assertSecretAccess(t *testing.T, who string, cs kubernetes.Interface, allowed map[string]bool) {
	t.Helper()
	ctx := context.Background()
	for ns, want := range allowed {
		var secretErr, saErr error
		// A binding just created may take a moment to apply.
		testenv.Eventually(t, 10*time.Second, who+" to read namespace "+ns+" as expected", func() bool {
			_, saErr = cs.CoreV1().ServiceAccounts(ns).Get(ctx, "app", metav1.GetOptions{})
			_, secretErr = cs.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{})
			return (saErr == nil) == want && (secretErr == nil) == want || !want
		})
		for what, err := range map[string]error{"Secret regcred": secretErr, "ServiceAccount app": saErr} {
			switch {
			case want && err != nil:
				t.Errorf("%s cannot get %s in namespace %s: %v", who, what, ns, err)
			case !want && !apierrors.IsForbidden(err):
				t.Errorf("%s gets %s in namespace %s, want Forbidden (error %v)", who, what, ns, err)
			}
		}
		if _, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("%s may list the Secrets of namespace %s (error %v)", who, ns, err)
		}
	}
}
