package controller

import (
	"context"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// clusterIdentity is a ServiceAccount bound cluster-wide to rules, as the chart
// binds the webhook's.
func clusterIdentity(t *testing.T, ns string, rules []rbacv1.PolicyRule) *rest.Config {
	t.Helper()
	ctx := context.Background()
	name := "controller-" + ns
	if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "controller"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "controller", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = env.Client.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
	})
	expiry := int64(3600)
	tok, err := env.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "controller",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = tok.Status.Token
	return cfg
}

// With the least RBAC the controller needs for services (no Jobs), a pod waiting
// for a Service is released, and one waiting for a Job is told why the controller
// cannot decide: the condition names the missing permission.
func TestLeastRBACAndAForbiddenKind(t *testing.T) {
	ns := env.Namespace(t)
	cfg := clusterIdentity(t, ns, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"pods/status"}, Verbs: []string{"patch"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	})
	startControllerAs(t, cfg, nil)
	createPod(t, managedPod(t, ns, "web", map[string]string{"DEPENDENCY_SERVICE": "db"}, inject.SchedulingGate))
	createPod(t, managedPod(t, ns, "worker", map[string]string{"DEPENDENCY_JOBS": "migrate"}, inject.SchedulingGate))
	readySlice(t, ns, "db")
	waitPod(t, ns, "web", "released", func(p *corev1.Pod) bool { return gateIndex(p) < 0 })
	waitPod(t, ns, "worker", "the missing permission named", hasCondition(corev1.ConditionFalse, ReasonWaiting,
		"waiting for job "+ns+"/migrate: cannot watch jobs.batch: Forbidden"))
	p := waitPod(t, ns, "web", "condition Ready", hasCondition(corev1.ConditionTrue, ReasonReady, ""))
	if gateIndex(p) >= 0 {
		t.Error("gate back on the released pod")
	}
}
