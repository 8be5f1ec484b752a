package server_test

import (
	"context"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/testenv"
)

// BenchmarkPodCreate measures pod CREATE latency through the real API server, in
// one run, interleaved so that all share the machine's noise: annotated pods that
// the webhook mutates; the very pod the webhook produces, created directly without
// annotations (the matchConditions keep it from the webhook), so that the
// difference is the webhook's own cost and not the bigger pod's; and small
// unannotated pods. Then, with the webhook configuration deleted, the same small
// pods with no webhook registered at all, for the matchConditions' cost.
func BenchmarkPodCreate(b *testing.B) {
	const n = 1000
	env := testenv.StartT(b, envtest.Environment{
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{"../../../config/webhook"}},
	})
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
	// The pod the webhook makes, as a user could have written it by hand.
	_, injected := create(deps)
	premutated := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "premutated-"},
		Spec:       injected.Spec,
	}
	premutated.Spec.NodeName = ""
	createPremutated := func() time.Duration {
		start := time.Now()
		if _, err := pods.Create(ctx, premutated, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	b.ResetTimer()
	var with, same, skipped, without []time.Duration
	for range n {
		d, pod := create(deps)
		if len(pod.Spec.InitContainers) == 0 {
			b.Fatal("an annotated pod was not mutated")
		}
		with = append(with, d)
		same = append(same, createPremutated())
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
	m50, m99 := report("premutated", "the injected pod created directly", same)
	s50, s99 := report("skipped", "small unannotated, webhook registered", skipped)
	n50, n99 := report("nowebhook", "small unannotated, no webhook", without)
	b.Logf("added by the webhook call to an annotated pod: p50 %+.2f ms, p99 %+.2f ms; matchConditions cost to other pods: p50 %+.2f ms, p99 %+.2f ms",
		ms(w50-m50), ms(w99-m99), ms(s50-n50), ms(s99-n99))
	if sum, count := webhookServerLatency(b); count > 0 {
		b.Logf("inside the webhook server (controller-runtime's histogram): %d requests, mean %.3f ms", count, sum/float64(count)*1000)
		b.ReportMetric(sum/float64(count)*1000, "server-mean-ms")
	}
	b.ReportMetric(ms(w50-m50), "added-p50-ms")
	b.ReportMetric(ms(w99-m99), "added-p99-ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// webhookServerLatency reads controller-runtime's histogram of the time the
// webhook server spent per request: the sum in seconds and the count.
func webhookServerLatency(b *testing.B) (float64, uint64) {
	b.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	var count uint64
	for _, f := range families {
		if f.GetName() != "controller_runtime_webhook_latency_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetHistogram().GetSampleSum()
			count += m.GetHistogram().GetSampleCount()
		}
	}
	return sum, count
}
