// Package benchgate holds the benchmark behind `make bench-gate`: gate mode at
// scale. It runs the built entrypoint-webhook as the dependency controller alone
// (--webhook=false, its own process) against a real kube-apiserver (envtest, no
// nodes, no scheduler), creates pods the way the webhook leaves them in gate mode
// (managed label, scheduling gate, the gated dependency in the status
// annotation), makes their Services ready and times, with one pod watch, the
// moment each pod is seen without the gate.
//
// Scenarios, each in a fresh namespace with a fresh controller process: the
// same N pods waiting on one Service gated and as N resolver processes (the API
// server's watches, goroutines, memory and requests; run first, before the
// 10,000 pods inflate the API server's heap), one pod on one Service 50 times
// (latency), 1,000 pods on one Service, 10,000 pods on 100 Services. For each:
// the controller's peak RSS and CPU, the API server's open watches before and
// while the pods wait, its requests per released pod, and the watches it
// closed for not keeping up.
//
// Like test/bench, the figures are reported, never asserted: the benchmark fails
// only when gate mode does not work, e.g. a pod still gated minutes after its
// Service became ready, and then says what it saw.
//
//	make bench-gate
//	KUBEBUILDER_ASSETS=... go test -run '^$' -bench Gate -benchtime 1x ./test/benchgate/
//
// Without ENTRYPOINT_WEBHOOK_BINARY and ENTRYPOINT_BINARY the controller and the
// resolver are built into a temporary directory with the Makefile's flags.
// GATE_RESOLVERS (default 300) sets N of the comparison; GATE_KUBE_API_QPS and
// GATE_KUBE_API_BURST the controller's --kube-api-qps and --kube-api-burst
// (default: entrypoint-webhook's own defaults).
package benchgate
