// Package e2e runs the whole path on a real single-node cluster (internal/localcluster):
// the project's two images are built (internal/release) and imported, the Helm chart is installed with the Helm
// SDK as on this machine (self-signed TLS, the webhook on the host network registered by
// URL on 127.0.0.1), and annotated workloads are created; the real API server calls the
// real webhook, the real kubelet runs the injected init container and the resolver, which
// waits on the real API server and then execs the application.
//
//	make e2e    (go test -tags e2e -count=1 -v ./test/e2e/; needs root)
//
// The cluster lives in $KE_CLUSTER_DIR (default /tmp/ke-cluster); TestMain brings it up
// and always down again, also when a test fails or panics or the run is interrupted.
//
// Every test file carries the build tag e2e: `go test ./...` does not run them.
//
// With the build tag faults as well, the same TestMain runs the fault scenarios instead
// (TestFault*, faults_*_test.go): the API server stopped and started again, the kubelet
// restarted, the webhook killed during a rollout, a forced CA rotation, the webhook's two
// replicas restarted one at a time. There the cluster runs with
// localcluster.Options.HostOnPodNetwork and the webhook runs on the pod network,
// registered through its Service, which the API server resolves to a ready endpoint.
//
//	make faults (go test -tags e2e,faults -run '^TestFault' ./test/e2e/; needs root)
//
// It ends with one line: faults: N scenarios, N passed, early starts 0, lost pods 0.
// `make test` runs make e2e, then make faults.
package e2e
