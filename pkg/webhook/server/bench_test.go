package server_test

import (
	"context"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
)

// BenchmarkPodCreate measures pod CREATE latency through the real API server, in
// one run: annotated pods that the webhook mutates, unannotated pods in the same
// cluster (the matchConditions keep them from the webhook), interleaved so they
// share the machine's noise; then, with the webhook configuration deleted, the same
// unannotated pods with no webhook registered at all.
func BenchmarkPodCreate(b *testing.B) {
	const n = 1000
	env, err := testenv.Start(envtest.Environment{
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{"../../../config/webhook"}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer env.Stop()
	wio := env.WebhookInstallOptions()
	o := options()
	o.Host, o.Port, o.CertDir = wio.LocalServingHost, wio.LocalServingPort, wio.LocalServingCertDir
	start(b, env, o)
	ns := env.Namespace(b)
	ctx := context.Background()
	pods := env.Client.CoreV1().Pods(ns)
	create := func(annotations map[string]string) (time.Duration, *corev1.Pod) {
		start := time.Now()
		pod, err := pods.Create(ctx, annotatedPod(annotations), metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(start), pod
	}
	deps := map[string]string{"entrypoint.io/dependency-service": "mariadb,memcached", "entrypoint.io/dependency-job": "db-sync"}
	// Warm up, and wait until the API server uses the webhook.
	testenv.Eventually(b, 20*time.Second, "the webhook to be called", func() bool {
		_, pod := create(deps)
		return len(pod.Spec.InitContainers) > 0
	})
	for range 50 {
		create(deps)
		create(nil)
	}
	b.ResetTimer()
	var with, skipped, without []time.Duration
	for range n {
		d, pod := create(deps)
		if len(pod.Spec.InitContainers) == 0 {
			b.Fatal("an annotated pod was not mutated")
		}
		with = append(with, d)
		d, _ = create(nil)
		skipped = append(skipped, d)
	}
	if err := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, "kubernetes-entrypoint", metav1.DeleteOptions{}); err != nil {
		b.Fatal(err)
	}
	testenv.Eventually(b, 20*time.Second, "the webhook to be unregistered", func() bool {
		_, pod := create(deps)
		return len(pod.Spec.InitContainers) == 0
	})
	for range n {
		d, _ := create(nil)
		without = append(without, d)
	}
	b.StopTimer()
	report := func(unit, name string, ds []time.Duration) (p50, p99 time.Duration) {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		p50, p99 = ds[len(ds)/2], ds[len(ds)*99/100]
		b.ReportMetric(ms(p50), unit+"-p50-ms")
		b.ReportMetric(ms(p99), unit+"-p99-ms")
		b.Logf("%-40s n=%d p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms", name, len(ds),
			float64(p50.Microseconds())/1000, float64(p99.Microseconds())/1000, float64(ds[len(ds)-1].Microseconds())/1000)
		return p50, p99
	}
	w50, w99 := report("injected", "annotated, injected by the webhook", with)
	s50, s99 := report("skipped", "unannotated, webhook registered", skipped)
	n50, n99 := report("nowebhook", "unannotated, no webhook registered", without)
	b.Logf("added by the webhook to an annotated pod: p50 %+.2f ms, p99 %+.2f ms; matchConditions cost to other pods: p50 %+.2f ms, p99 %+.2f ms",
		ms(w50-s50), ms(w99-s99), ms(s50-n50), ms(s99-n99))
	b.ReportMetric(ms(w99-s99), "added-p99-ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
