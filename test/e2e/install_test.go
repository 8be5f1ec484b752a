//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/kube"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/inject"
)

// installChart installs charts/kubernetes-entrypoint with the Helm SDK, with the values
// this machine needs, and waits until the webhook mutates pods.
func installChart(ctx context.Context) error {
	began := time.Now()
	port, err := freePort()
	if err != nil {
		return err
	}
	healthPort, err := freePort()
	if err != nil {
		return err
	}
	var env []any
	for k, v := range apiServerEnv() {
		env = append(env, map[string]any{"name": k, "value": v})
	}
	values := map[string]any{
		"image": map[string]any{
			"repository": strings.SplitN(projectImage, ":", 2)[0],
			"tag":        strings.SplitN(projectImage, ":", 2)[1],
			"pullPolicy": "Never",
		},
		"replicaCount": 1,
		"tls":          map[string]any{"mode": "self-signed"},
		"webhook": map[string]any{
			// The API server calls the webhook on loopback, where it listens on the
			// host network: nothing routes Service or node addresses here.
			"url":         fmt.Sprintf("https://127.0.0.1:%d/mutate-v1-pod", port),
			"port":        port,
			"hostNetwork": true,
			"extraEnv":    env,
			"extraArgs":   []any{"--zap-log-level=debug"},
		},
		"injection":   map[string]any{"imagePullPolicy": "Never"},
		"metrics":     map[string]any{"enabled": false},
		"healthProbe": map[string]any{"port": healthPort},
		// For containers without a command: the test registry on loopback.
		"registryLookup":      map[string]any{"enabled": true, "timeout": "5s"},
		"podDisruptionBudget": map[string]any{"enabled": false},
	}

	ch, err := loader.Load(filepath.Join(cluster.Repo(), "charts", "kubernetes-entrypoint"))
	if err != nil {
		return err
	}
	cfg := new(action.Configuration)
	getter := kube.GetConfig(cluster.KubeconfigPath(), "", releaseNamespace)
	if err := cfg.Init(getter, releaseNamespace, "secret", func(format string, v ...any) {}); err != nil {
		return fmt.Errorf("helm: %w", err)
	}
	install := action.NewInstall(cfg)
	install.ReleaseName = releaseName
	install.Namespace = releaseNamespace
	install.CreateNamespace = true
	install.Timeout = 2 * time.Minute
	rel, err := install.RunWithContext(ctx, ch, values)
	if err != nil {
		return fmt.Errorf("helm install: %w", err)
	}
	cluster.Logf("helm installed %s %s (chart %s) in %s; webhook on 127.0.0.1:%d",
		rel.Name, rel.Info.Status, rel.Chart.Metadata.Version, time.Since(began).Round(time.Millisecond), port)
	resolverClusterRole = releaseName + "-resolver"
	if _, err := cs.RbacV1().ClusterRoles().Get(ctx, resolverClusterRole, metav1.GetOptions{}); err != nil {
		return fmt.Errorf("the chart's resolver ClusterRole: %w", err)
	}
	return waitWebhook(ctx, began)
}

// waitWebhook creates an annotated pod with server-side dry run until the webhook
// mutates it: then the webhook runs, serves TLS with a certificate the API server
// trusts (the self-signed mode wrote the caBundle), and its configuration is active.
func waitWebhook(ctx context.Context, began time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "webhook-probe",
			Annotations: map[string]string{"entrypoint.io/dependency-service": "nothing"},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: appImage, Command: []string{"/usr/local/bin/testapp"}}}},
	}
	var last string
	for {
		pod, err := cs.CoreV1().Pods("default").Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		switch {
		case err != nil:
			last = err.Error()
		case len(pod.Spec.InitContainers) > 0 && pod.Spec.InitContainers[0].Name == inject.InitContainerName:
			cluster.Logf("the webhook mutates pods, %s after the install began", time.Since(began).Round(time.Millisecond))
			return nil
		default:
			last = "the pod was admitted unchanged"
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the webhook does not mutate pods: %s\n%s", last, webhookDiagnostics())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// webhookDiagnostics is the webhook pods' state and logs.
func webhookDiagnostics() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, err := cs.CoreV1().Pods(releaseNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s: %s %+v\n", p.Name, p.Status.Phase, p.Status.ContainerStatuses)
		logs, _ := cs.CoreV1().Pods(releaseNamespace).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		b.Write(logs)
	}
	if b.Len() == 0 {
		fmt.Fprintf(&b, "no webhook pod in %s; kubelet log in %s", releaseNamespace, filepath.Join(cluster.Path("logs"), "kubelet.log"))
	}
	return b.String()
}
