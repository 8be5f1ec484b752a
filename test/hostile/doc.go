// Package hostile holds the hostile-input benchmark behind `make bench-hostile` and
// the test that keeps its denials short in CI. Each case is a raw AdmissionReview
// fed through the webhook's real handler stack (controller-runtime's
// admission.Webhook and pkg/webhook's PodInjector), so decoding is included.
//
// The benchmark runs every case in a fresh child process (the test binary again,
// the case chosen by an environment variable) and reports the request's time, the
// response's size and the child's peak RSS next to that of an idle child. The
// registry case is served by an in-process registry whose image config is declared
// and streamed as 256 MiB, never held in memory.
//
// A second benchmark creates the same pods through a real API server (envtest)
// with the webhook registered as config/webhook does, serving in a child process.
//
// A third, BenchmarkHostileController, sends the dependency controller pods it
// must refuse or keep gated: pods created with the managed label and a status
// annotation of their author's, which the webhook never saw. Each case runs in a
// fresh entrypoint-webhook process (the controller alone, against envtest; the
// binary from ENTRYPOINT_WEBHOOK_BINARY, else built), and reports the process's
// peak RSS at rest and once every pod has its condition, and the time until
// then. TestHostileController runs two of its cases, smaller, in CI.
//
//	make bench-hostile
//	KUBEBUILDER_ASSETS=... go test -run '^$' -bench Hostile -benchtime 1x ./test/hostile/
package hostile
