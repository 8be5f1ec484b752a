package install

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/kube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/selfsigned"
)

// The self-signed mode's Secret is rendered empty and filled by the webhook: a real
// `helm upgrade` (Helm's SDK, three-way merge) keeps what the webhook wrote in it,
// the operator's rotate annotation, and the caBundle, because no manifest mentions
// them; `helm uninstall` removes the Secret with the release.
func TestHelmUpgradeKeepsTheCertificate(t *testing.T) {
	env := controlPlane(t)
	ctx := context.Background()
	const release, ns = "ke-upgrade", "ke-upgrade"
	kubeconfig := testenv.Kubeconfig(t, env.Config, t.TempDir())
	cfg := new(action.Configuration)
	if err := cfg.Init(kube.GetConfig(kubeconfig, "", ns), ns, "secret", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	values := func(interval string) map[string]any {
		return map[string]any{
			"fullnameOverride": release, "replicaCount": 1,
			"tls": map[string]any{"mode": "self-signed", "selfSigned": map[string]any{"checkInterval": interval}},
		}
	}
	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace, install.CreateNamespace, install.Timeout = release, ns, true, time.Minute
	if _, err := install.RunWithContext(ctx, loadChart(t), values("10m")); err != nil {
		t.Fatalf("helm install: %v", err)
	}
	t.Cleanup(func() { _, _ = action.NewUninstall(cfg).Run(release) })

	secretName, configName := release+"-webhook-tls", release
	secrets := env.Client.CoreV1().Secrets(ns)
	if s, err := secrets.Get(ctx, secretName, metav1.GetOptions{}); err != nil || len(s.Data) != 0 {
		t.Fatalf("after install the Secret is %v (error %v), want it empty", s, err)
	}
	// The webhook's first check fills the Secret and the caBundle.
	m, err := selfsigned.New(selfsigned.Options{
		Client: env.Client, Log: logr.Discard(), Namespace: ns, SecretName: secretName, WebhookConfigName: configName,
		Hosts: []string{release + "-webhook." + ns + ".svc"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(ctx); err != nil {
		t.Fatal(err)
	}
	annotateSecretTo(t, env, ns, secretName, selfsigned.AnnotationRotate, "operator")
	before, err := secrets.Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	for _, interval := range []string{"5m", "5m"} { // a change, then none
		upgrade := action.NewUpgrade(cfg)
		upgrade.Namespace, upgrade.Timeout = ns, time.Minute
		if _, err := upgrade.RunWithContext(ctx, release, loadChart(t), values(interval)); err != nil {
			t.Fatalf("helm upgrade: %v", err)
		}
		after, err := secrets.Get(ctx, secretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"tls.crt", "tls.key", "ca.crt", "ca.key", "ca-current.crt"} {
			if string(after.Data[key]) != string(before.Data[key]) || len(after.Data[key]) == 0 {
				t.Errorf("helm upgrade changed %s of the Secret (%d bytes before, %d after)", key, len(before.Data[key]), len(after.Data[key]))
			}
		}
		if after.Annotations[selfsigned.AnnotationRotate] != "operator" {
			t.Errorf("helm upgrade dropped the annotation %s: %v", selfsigned.AnnotationRotate, after.Annotations)
		}
		mwc, err := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, configName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(mwc.Webhooks[0].ClientConfig.CABundle) != string(before.Data["ca.crt"]) {
			t.Error("helm upgrade changed the caBundle the webhook wrote")
		}
	}
	if _, err := action.NewUninstall(cfg).Run(release); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	if _, err := secrets.Get(ctx, secretName, metav1.GetOptions{}); err == nil {
		t.Error("helm uninstall left the Secret behind")
	}
}

func annotateSecretTo(t *testing.T, env *testenv.Env, ns, name, key, value string) {
	t.Helper()
	ctx := context.Background()
	s, err := env.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[key] = value
	if _, err := env.Client.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
