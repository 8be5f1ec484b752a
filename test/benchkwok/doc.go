// Package benchkwok holds the benchmark behind `make bench-kwok`: gate mode with
// a real scheduler and hundreds of nodes. It runs a control plane (envtest's etcd
// and kube-apiserver), the real kube-scheduler, kwok (which keeps BENCH_KWOK_NODES
// fake Nodes, default 500, and makes the pods bound to them Running and Ready)
// and entrypoint-webhook as the dependency controller alone (--webhook=false),
// each as a process of its own, and times, with one pod watch per scenario,
// from the moment a dependency became ready to the moment each pod is seen
// without its scheduling gate and the moment it is seen bound (spec.nodeName).
//
// Scenarios, in this order, each in a fresh namespace with a fresh scheduler,
// the previous scenario's pods deleted first:
//
//   - scheduler-alone: BENCH_KWOK_PODS (10,000) pods as the webhook leaves them
//     in gate mode but without the gate, created while no scheduler runs; then
//     the scheduler starts and binds them. Its binding rate is the limit gate
//     mode is held to (issue target: gated ready→all bound ≤ 1.2 × the
//     scheduler's first→last bind). It runs first, on an API server that has
//     held no pods yet, so that the limit is not flattered.
//   - gated: the same pods with the gate, on 100 Services whose EndpointSlices
//     are created at once.
//   - daemonset: BENCH_KWOK_PODS gated pods spread over the nodes, each pinned
//     to its node (as a DaemonSet's pods are) and waiting for the DaemonSet
//     "agent" on that node; the agent's pods are then created on every node and
//     each node's dependency is ready when its agent pod is seen Ready.
//
// For each: p50/p99/max of ready→gate removed and ready→bound, the API
// server's CPU and memory, its open watches with one pod and with all of them
// waiting. Figures are reported, never asserted: the benchmark fails only when
// something never happens, and then gives pod counts and component logs.
//
//	make bench-kwok
//	KUBEBUILDER_ASSETS=... KWOK_BINARY=... go test -run '^$' -bench Kwok -benchtime 1x -timeout 90m ./test/benchkwok/
//
// KWOK_BINARY is kwok's controller (hack/build-kwok.sh builds and caches it);
// kube-scheduler comes from KUBEBUILDER_ASSETS (hack/build-k8s.sh
// kube-scheduler). Without ENTRYPOINT_WEBHOOK_BINARY the controller is built
// into a temporary directory with the Makefile's flags.
package benchkwok
