// Package bench holds the benchmarks behind `make bench`: they run the built
// kubernetes-entrypoint binary as real processes against a real kube-apiserver
// (envtest) and report the figures of docs/performance.md's first table: dependency-ready to
// exec latency, API requests per waiting dependency, binary size, the overhead
// before exec without dependencies and resident memory while waiting.
//
// The numbers are reported, never asserted: a benchmark fails only when the
// measurement itself breaks, e.g. a resolver that never execs the application.
//
//	make bench
//	KUBEBUILDER_ASSETS=... go test -run '^$' -bench . -benchtime 1x ./test/bench/
//
// Without ENTRYPOINT_BINARY the resolver is built into a temporary directory with
// the Makefile's flags.
package bench
