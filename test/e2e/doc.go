// Package e2e runs the whole path on a real single-node cluster (internal/localcluster):
// the project's image is built and imported, the Helm chart is installed with the Helm
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
// Every test file carries the build tag e2e: `make test` and `go test ./...` do not run
// them.
package e2e
