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
// The ceiling, measured beside it: right before and right after the 1,000- and
// the 10,000-pod scenarios, with no controller running, the same pods are
// created in a fresh namespace, given the Waiting condition the controller gives
// a pod that waits (untimed: the controller's pods carry it when released, and
// a patch costs the API server more on a larger object), and released by a
// trivial client-go client that sends exactly the controller's patch (controller.GateRemovalPatch) with the
// controller's client limits and controller.DefaultWorkers workers, and nothing
// else. Its rate (pods over first patch → last pod seen released) is the API
// server's for these writes; the controller's release rate is reported as a
// ratio of the faster of the two (ctrl/raw).
//
// Leader hand-over under load (BenchmarkGate/handover): two controller
// processes with leader election on one Lease, 10,000 gated pods on 100
// Services made ready at once; once half are seen released the leader (the
// Lease's holder, the first process) is SIGKILLed. The other must take the
// Lease when it expires (entrypoint-webhook's defaults: a 15 s Lease) and
// release the rest. It fails unless every pod
// is released, none is seen gated again, none holds the gate in the API server,
// the API server accepted at most one write per pod, and the Lease names the
// new leader; it reports the time from the SIGKILL to the new leader and to the
// last release. TestLeaderHandover checks the same on 1,000 pods, untimed, with
// a 4 s Lease (--leader-elect-lease-duration and the two other Lease flags), so
// that it runs in make test (about 30 s).
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
// (default: entrypoint-webhook's own defaults). GATE_PROFILE_DIR, when set, receives
// CPU profiles of the API server and the controller (--pprof-bind-address) taken
// while the pods are released, and of the API server during the raw runs
// (GATE_PROFILE_SECONDS long, default 10): go tool pprof -top <file>.
package benchgate
